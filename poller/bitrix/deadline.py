"""A requests adapter whose exchanges end by a deadline, however slowly the server answers.

Per-read socket timeouts do not bound a server that sends one byte per second. The
transport opens a `Deadline` around each exchange; the adapter's connections hand their
socket to it just before waiting for the answer, and at the deadline a watchdog timer shuts
that socket, which wakes any read still waiting. Deadlines are real time: a test's
ManualClock does not move while a socket waits.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Deadline:
    """The moment an exchange must be over; past it, the socket of the exchange is shut."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds
        self._sock: socket.socket | None = None
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` at the deadline unless `cancel()` comes first (called once headers are due)."""
        self.cancel()
        self._sock = sock
        self._timer = threading.Timer(max(0.0, self.remaining()), self._cut, (sock,))
        self._timer.daemon = True
        self._timer.start()

    def shorten_reads(self) -> None:
        """Let the next socket read wait no longer than the time left."""
        if self._sock is not None:
            with contextlib.suppress(OSError):  # already closed: the read will say so
                self._sock.settimeout(max(0.001, self.remaining()))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _cut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # under TLS too: wakes a blocked read
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


_ACTIVE: ContextVar[Deadline | None] = ContextVar("timeman_poller_deadline", default=None)


@contextlib.contextmanager
def deadline_for(seconds: float) -> Iterator[Deadline]:
    """Run one exchange under a Deadline of `seconds`; the watchdog is stopped on the way out."""
    deadline = Deadline(seconds)
    token = _ACTIVE.set(deadline)
    try:
        yield deadline
    finally:
        deadline.cancel()
        _ACTIVE.reset(token)


class _WatchedConnection(HTTPConnection):
    """Hands its socket to the running exchange's Deadline before waiting for the answer."""

    def getresponse(self) -> Any:
        deadline = _ACTIVE.get()
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        return super().getresponse()


class _WatchedTlsConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        deadline = _ACTIVE.get()
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        return super().getresponse()


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections obey the Deadline of the exchange in progress."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}
