"""An HTTP server that stops as soon as it is told to, and sleeps while nobody calls.

socketserver's `serve_forever` looks for a shutdown request once per `poll_interval`, so a
`shutdown()` waits up to that long, and a shorter interval wakes an idle server more often.
Here the loop also waits on a socket pair, and `shutdown()` writes a byte to it: the stop is
prompt whatever the interval. The emulator and the metrics endpoint serve with it.
"""

from __future__ import annotations

import selectors
import socket
import threading
from contextlib import suppress
from http.server import ThreadingHTTPServer
from typing import Any


class PromptServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer whose `shutdown()` wakes its `serve_forever()` at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_writer.setblocking(False)
        self._stop_asked = False
        self._stopped = threading.Event()
        self._stopped.set()
        super().__init__(*args, **kwargs)  # on a busy port it calls server_close(), then raises

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Handle requests until `shutdown()`; `poll_interval` only paces `service_actions()`
        while idle, as in socketserver."""
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while not self._stop_asked:
                    ready = selector.select(poll_interval)
                    if self._stop_asked:
                        break
                    for key, _ in ready:
                        if key.fileobj is self:  # as socketserver's own loop (typeshed omits it)
                            self._handle_request_noblock()  # type: ignore[attr-defined]
                        else:
                            self._wake_reader.recv(64)
                    self.service_actions()
        finally:
            self._stop_asked = False
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever()` (running on another thread) and wait until it returned;
        returns at once when it is not running."""
        self._stop_asked = True
        with suppress(BlockingIOError):  # a byte is already waiting: one wakes the loop
            self._wake_writer.send(b"\0")
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()
