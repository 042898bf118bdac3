"""The HTTP server of the emulator and the metrics endpoint: a stop does not wait for a poll."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler

import requests

from poller.serving import PromptServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet in the test's output."""


def test_a_shutdown_wakes_a_loop_that_would_not_poll_for_an_hour() -> None:
    server = PromptServer(("127.0.0.1", 0), Hello)
    serving = threading.Thread(target=server.serve_forever, args=(3600,), daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with requests.Session() as session:
        assert session.get(url, timeout=10).status_code == 200  # the loop is in its wait
        assert session.get(url, timeout=10).status_code == 200  # and woke for a second request
    stopping = threading.Thread(target=server.shutdown, daemon=True)
    stopping.start()
    stopping.join(30)  # socketserver's own loop would sleep on for the hour
    serving.join(30)
    assert not stopping.is_alive() and not serving.is_alive()
    server.shutdown()  # not serving any more: returns at once
    server.server_close()
