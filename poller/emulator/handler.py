"""The HTTP side: a threading server, and a handler that plays out the emulator's answers.

Slow bodies (a trickle) and silence (a hung connection) happen here, on real time: they are
about sockets. Both end when the emulator stops.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from poller.emulator.faults import json_bytes
from poller.emulator.wire import Drop, Hang, Raw, Redirect, Trickle

if TYPE_CHECKING:
    from poller.emulator.server import Emulator


class EmulatorServer(ThreadingHTTPServer):
    """A threading server with a listen backlog fit for 50 concurrent clients."""

    daemon_threads = True
    request_queue_size = 512

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up: clients with deadlines do that on purpose."""


def handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    return type("BoundHandler", (Handler,), {"emulator": emulator})


class Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, without Nagle: otherwise every answer waits
    # for the client's delayed ACK (40 ms on Linux).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length) if length else b"")

    def do_GET(self) -> None:
        self._answer(b"")

    def _answer(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        status, payload = self.emulator.handle(
            parts.path,
            parts.query,
            body,
            self.headers.get("Content-Type") or "",
            self.headers.get("Authorization") or "",
        )
        self.emulator.stats.add_http_status(status)
        if isinstance(payload, Hang):
            self.emulator.stopping.wait()
            payload = Drop()
        if isinstance(payload, Drop):
            self.close_connection = True
            self.connection.close()
            return
        if isinstance(payload, Redirect):
            self.send_response(status)
            self.send_header("Location", payload.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(payload, Trickle):
            self._trickle(status, payload)
            return
        if isinstance(payload, Raw):
            data, content_type = payload.body, payload.content_type
        elif isinstance(payload, str):
            data, content_type = payload.encode(), "text/html"
        else:
            data, content_type = json_bytes(payload), "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _trickle(self, status: int, trickle: Trickle) -> None:
        """Announce the whole length, then one byte per interval until done, hung up, or stopped."""
        length = max(trickle.length, len(trickle.body))
        data = trickle.body.ljust(length)
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()
        for position in range(length):
            if self.emulator.stopping.wait(trickle.interval):
                return
            try:
                self.wfile.write(data[position : position + 1])
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: request lines carry webhook secrets."""
