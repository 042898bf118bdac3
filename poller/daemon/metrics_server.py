"""The HTTP side of the metrics: /metrics for Prometheus and /healthz, from a background thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from poller.serving import PromptServer

if TYPE_CHECKING:
    from poller.daemon.metrics import Metrics


class MetricsServer:
    """Serves /metrics and /healthz on `host:port` until `stop()`."""

    def __init__(self, metrics: Metrics, host: str, port: int, max_age_seconds: float) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body, status, kind = generate_latest(metrics.registry), 200, CONTENT_TYPE_LATEST
                elif self.path.split("?")[0] == "/healthz":
                    healthy, text = metrics.health(outer.max_age_seconds)
                    body, status, kind = (text + "\n").encode(), 200 if healthy else 503, "text/plain"
                else:
                    body, status, kind = b"not found: try /metrics or /healthz\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes every few seconds would flood the log."""

        self.max_age_seconds = max_age_seconds
        self._server = PromptServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving at once (no wait for a poll interval: see poller.serving)."""
        self._server.shutdown()
        self._server.server_close()
