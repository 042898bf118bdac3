"""A loopback TCP proxy that can cut a database away without stopping the shared server.

    proxy = TcpProxy(5432).start()      # 127.0.0.1:<proxy.port> -> 127.0.0.1:5432
    proxy.cut()                         # every live connection closed, new ones closed at once
    proxy.restore()                     # connections pass again
    proxy.freeze()                      # nothing forwarded, every socket kept open
    proxy.thaw()                        # bytes held meanwhile pass on

Both ends of a cut connection are closed, so PostgreSQL ends the session at once (its advisory
locks with it), as a restart of the server would. A frozen proxy is a database that stops
answering: a statement sent meanwhile waits, neither answered nor failed, and a new connection
gets no further than its TCP handshake. (The proxy's kernel still acknowledges every packet, so
TCP keepalives do not notice a freeze: only a time limit of the client's own does.) Used by the
outage tests and bench/soak.py.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    """Forward 127.0.0.1:<port> to `target_host`:`target_port`, one thread per direction."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self._flowing = threading.Event()
        self._flowing.set()
        self.accepted = 0  # connections accepted while not cut
        self.refused = 0  # connections closed at once because of a cut

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()
        return self

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Close every live connection (both ends); close each new one at once until `restore()`."""
        with self._lock:
            self._cut = True
            live, self._live = self._live, set()
        for sock in live:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False
        self.thaw()

    def freeze(self) -> None:
        """Stop forwarding bytes, either way, on every connection; keep every socket open."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.thaw()
        _close(self._listener)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut:
                self.refused += 1
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._cut:
                    self.refused += 1
                    _close(client)
                    _close(upstream)
                    continue
                self.accepted += 1
                self._live |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way; when either side ends, end both."""
        try:
            while data := source.recv(65536):
                while not self._flowing.wait(0.1):
                    if self._closed:
                        raise ConnectionAbortedError
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._live -= {source, sink}
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
