"""Prometheus metrics and a /healthz endpoint, served from a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    """The poller's counters; `record_cycle` feeds them from each cycle's report."""

    def __init__(self, portals: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        self.started_at = clock()
        self.last_success: dict[str, float] = {}
        self._lock = threading.Lock()
        self.portals = list(portals)
        r = self.registry
        self.cycles = Counter("timeman_poller_cycles", "Poll cycles run", registry=r)
        self.users_polled = Counter(
            "timeman_poller_users_polled", "Users whose status was fetched and stored", ["portal"], registry=r
        )
        self.errors = Counter(
            "timeman_poller_errors", "Failures recorded in poll_errors", ["portal", "code"], registry=r
        )
        self.snapshots_written = Counter(
            "timeman_poller_snapshots_written", "Snapshots written to the database", ["portal"], registry=r
        )
        self.request_seconds = Histogram(
            "timeman_poller_request_seconds",
            "Latency of HTTP requests to Bitrix24",
            ["portal"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.last_success_gauge = Gauge(
            "timeman_poller_last_success_timestamp_seconds",
            "Unix time of the portal's last cycle that stored its users",
            ["portal"],
            registry=r,
        )
        self.spool_rows = Gauge(
            "timeman_poller_spool_rows", "Snapshots waiting in the spool for the database", registry=r
        )

    def request_observer(self, portal: str) -> Callable[[float], None]:
        histogram = self.request_seconds.labels(portal=portal)
        return histogram.observe

    def record_cycle(self, report: Any, spooled: int) -> None:
        """Count one cycle from its daemon.PollReport."""
        now = self._clock()
        self.cycles.inc()
        for outcome in report.portals:
            self.users_polled.labels(portal=outcome.portal).inc(outcome.users_ok)
            self.snapshots_written.labels(portal=outcome.portal).inc(outcome.users_ok)
            if not outcome.portal_failed:
                with self._lock:
                    self.last_success[outcome.portal] = now
                self.last_success_gauge.labels(portal=outcome.portal).set(now)
            for code, count in outcome.error_codes:
                self.errors.labels(portal=outcome.portal, code=code).inc(count)
        self.spool_rows.set(spooled)

    def health(self, max_age_seconds: float) -> tuple[bool, str]:
        """Healthy when every portal stored a cycle within `max_age_seconds`."""
        now = self._clock()
        stale = []
        with self._lock:
            for portal in self.portals:
                since = self.last_success.get(portal, self.started_at)
                if now - since > max_age_seconds:
                    never = portal not in self.last_success
                    stale.append(f"{portal}: {'no successful cycle' if never else 'last success'} "
                                 f"for {now - since:.0f} s")  # fmt: skip
        if stale:
            return False, "stale: " + "; ".join(stale)
        return True, "ok"


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
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
