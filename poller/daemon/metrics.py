"""Prometheus metrics and a /healthz endpoint, served from a background thread.

`Metrics` holds the counters and offers one small method per event, so the daemon, the
spool and the client report what happened without knowing about Prometheus. The alert rules
in deploy/prometheus/alerts.yml and the dashboard in deploy/grafana/dashboards/ read these
names; tests/test_dashboards.py checks that every name they use is exported.
"""

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

# A cycle of a few users takes well under a second; 10,000 users on a standard plan's
# 2 requests/s take about 100 s; a portal blocked by its limits can take many minutes.
CYCLE_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
TOKEN_OUTCOMES = ("ok", "failed")
CYCLE_OUTCOMES = ("finished", "failed", "interrupted")  # as in poll_runs.outcome
# Why a spooled row was set aside: the database refused its data (it went to the
# dead-letter file), or its line in the spool file could not be read.
QUARANTINE_REASONS = ("rejected", "unreadable")


class Metrics:
    """The poller's metrics, in their own registry, and the state /healthz reports.

    Series for each configured portal are created at zero up front: an alert on
    `increase()` sees a portal's first failure only if the series existed before it, and
    a portal that never succeeds is still visible (`timeman_poller_users_stored_total`).
    """

    def __init__(self, portals: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        self.started_at = clock()
        self.last_success: dict[str, float] = {}
        self._owned_since: dict[str, float | None] = {}  # None: released to another replica
        self._lock = threading.Lock()
        self.portals = list(portals)
        r = self.registry
        self.cycle_seconds = Histogram(
            "timeman_poller_cycle_seconds",
            "Duration of one portal's poll cycle, from its first request to its last write",
            ["portal"],
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.cycles = Counter(
            "timeman_poller_cycles",
            "Portal cycles by poll_runs outcome: finished, failed (the portal failed as a whole: "
            "its users could not be listed, or a portal-wide error), interrupted",
            ["portal", "outcome"],
            registry=r,
        )
        self.users_stored = Counter(
            "timeman_poller_users_stored",
            "Users whose status was fetched and stored (in the database, or in the spool while it is down)",
            ["portal"],
            registry=r,
        )
        self.users_failed = Counter(
            "timeman_poller_users_failed",
            "Users whose status could not be fetched or stored in a cycle (each has a poll_errors row)",
            ["portal"],
            registry=r,
        )
        self.errors = Counter(
            "timeman_poller_errors",
            "Error rows recorded in poll_errors, by Bitrix24 or poller error code",
            ["portal", "code"],
            registry=r,
        )
        self.last_success_gauge = Gauge(
            "timeman_poller_last_success_timestamp_seconds",
            "Unix time of the portal's last cycle that reached the portal and stored its users",
            ["portal"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "timeman_poller_request_seconds",
            "Latency of HTTP requests to Bitrix24",
            ["portal"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.spool_rows = Gauge(
            "timeman_poller_spool_rows",
            "Rows (snapshots and error rows) waiting in the spool for the database",
            registry=r,
        )
        self.spool_in_memory = Gauge(
            "timeman_poller_spool_in_memory",
            "1 while the spool file cannot be written and waiting rows are kept in memory only",
            registry=r,
        )
        self.spool_quarantined = Counter(
            "timeman_poller_spool_quarantined_rows",
            "Spooled rows set aside instead of written: refused by the database for their data "
            "(moved to the dead-letter file) or unreadable in the spool file",
            ["reason"],
            registry=r,
        )
        self.rate_limit_wait = Counter(
            "timeman_poller_rate_limit_wait_seconds",
            "Seconds spent waiting for the client-side leaky bucket before sending a request",
            ["portal"],
            registry=r,
        )
        self.query_limit_exceeded = Counter(
            "timeman_poller_query_limit_exceeded",
            "QUERY_LIMIT_EXCEEDED answers: the portal's bucket was full despite the client-side one",
            ["portal"],
            registry=r,
        )
        self.token_refreshes = Counter(
            "timeman_poller_token_refreshes",
            "OAuth token refreshes, by outcome (ok: a new pair was saved; failed: none was)",
            ["portal", "outcome"],
            registry=r,
        )
        self.reconcile_last_success = Gauge(
            "timeman_poller_reconcile_last_success_timestamp_seconds",
            "Unix time of the portal's last finished reconcile of timeman.record.list",
            ["portal"],
            registry=r,
        )
        self.reconcile_records = Counter(
            "timeman_poller_reconcile_records",
            "Workday records fetched by reconcile and backfill",
            ["portal"],
            registry=r,
        )
        self.portal_owned = Gauge(
            "timeman_poller_portal_owned",
            "1 while this replica holds the portal and polls it, 0 after it let it go",
            ["portal", "replica"],
            registry=r,
        )
        per_portal = (
            self.cycle_seconds,
            self.users_stored,
            self.users_failed,
            self.rate_limit_wait,
            self.query_limit_exceeded,
            self.reconcile_records,
        )
        for portal in self.portals:
            for metric in per_portal:
                metric.labels(portal=portal)
            for outcome in TOKEN_OUTCOMES:
                self.token_refreshes.labels(portal=portal, outcome=outcome)
            for outcome in CYCLE_OUTCOMES:
                self.cycles.labels(portal=portal, outcome=outcome)
        for reason in QUARANTINE_REASONS:
            self.spool_quarantined.labels(reason=reason)
        self.spool_rows.set(0)
        self.spool_in_memory.set(0)

    # -- cycles ----------------------------------------------------------------------------

    def cycle_finished(
        self, portal: str, seconds: float, *, succeeded: bool, outcome: str | None = None
    ) -> None:
        """Observe one portal's cycle; `succeeded`: it reached the portal and stored its users.

        Single users may have failed in a cycle that succeeded (they are counted by
        `count_users`); a portal-wide failure (unreachable, bad credentials, users not even
        listed) did not succeed. `outcome`: its poll_runs outcome, counted in `cycles`.
        """
        self.cycle_seconds.labels(portal=portal).observe(seconds)
        if outcome is not None:
            self.cycles.labels(portal=portal, outcome=outcome).inc()
        if succeeded:
            now = self._clock()
            with self._lock:
                self.last_success[portal] = now
            self.last_success_gauge.labels(portal=portal).set(now)

    def count_users(self, portal: str, *, stored: int = 0, failed: int = 0) -> None:
        """Add users stored and users failed; call it per written chunk or once per cycle."""
        if stored:
            self.users_stored.labels(portal=portal).inc(stored)
        if failed:
            self.users_failed.labels(portal=portal).inc(failed)

    def count_error(self, portal: str, code: str, count: int = 1) -> None:
        """Add `count` error rows of `code` (as stored in poll_errors.code)."""
        if count:
            self.errors.labels(portal=portal, code=code or "UNKNOWN").inc(count)

    # -- spool -----------------------------------------------------------------------------

    def set_spool_rows(self, rows: int) -> None:
        """Rows waiting in the spool now (0 once all are written)."""
        self.spool_rows.set(rows)

    def set_spool_in_memory(self, in_memory: bool) -> None:
        """The spool file became unwritable (True) or writable again (False)."""
        self.spool_in_memory.set(1 if in_memory else 0)

    def count_quarantined(self, rows: int, reason: str) -> None:
        """Add spooled rows set aside: `reason` is "rejected" (dead-lettered) or "unreadable"."""
        if rows:
            self.spool_quarantined.labels(reason=reason).inc(rows)

    # -- limits, tokens ----------------------------------------------------------------------

    def rate_limit_waited(self, portal: str, seconds: float) -> None:
        """Add time spent waiting for the client-side bucket (0 is ignored)."""
        if seconds > 0:
            self.rate_limit_wait.labels(portal=portal).inc(seconds)

    def rate_limit_observer(self, portal: str) -> Callable[[float], None]:
        """`rate_limit_waited` bound to `portal`, for a bucket that knows no portal names."""
        return lambda seconds: self.rate_limit_waited(portal, seconds)

    def count_query_limit_exceeded(self, portal: str) -> None:
        """Count one QUERY_LIMIT_EXCEEDED answer from the portal."""
        self.query_limit_exceeded.labels(portal=portal).inc()

    def token_refreshed(self, portal: str, *, ok: bool) -> None:
        """Count one OAuth refresh: ok when a new pair was saved, else failed."""
        self.token_refreshes.labels(portal=portal, outcome="ok" if ok else "failed").inc()

    def request_observer(self, portal: str) -> Callable[[float], None]:
        """Observe one HTTP request's seconds, for the transport's `observe_latency`."""
        histogram = self.request_seconds.labels(portal=portal)
        return histogram.observe

    # -- reconcile, replicas -----------------------------------------------------------------

    def reconcile_finished(self, portal: str, records: int, *, at: float | None = None) -> None:
        """A reconcile of `portal` finished, having fetched `records` records.

        `at` (Unix time) defaults to now; at start the daemon may pass the time of the last
        reconcile stored in the database, so a restart does not hide a late one.
        """
        if records:
            self.reconcile_records.labels(portal=portal).inc(records)
        self.reconcile_last_success.labels(portal=portal).set(self._clock() if at is None else at)

    def set_owned(self, portal: str, replica: str, owned: bool) -> None:
        """This replica took (True) or let go of (False) `portal`.

        /healthz then reports only the portals this replica holds (a portal whose ownership
        was never reported counts as held: a single daemon polls them all). A portal taken
        is given a full `max_age_seconds` from that moment before it counts as stale; calling
        it again while held (a lease renewal) changes nothing.
        """
        self.portal_owned.labels(portal=portal, replica=replica).set(1 if owned else 0)
        with self._lock:
            if not owned:
                self._owned_since[portal] = None
            elif self._owned_since.get(portal) is None:  # a renewal keeps the first moment
                self._owned_since[portal] = self._clock()

    # -- health ------------------------------------------------------------------------------

    def health(self, max_age_seconds: float) -> tuple[bool, str]:
        """Healthy when every portal this replica holds stored a cycle within `max_age_seconds`."""
        now = self._clock()
        stale = []
        with self._lock:
            for portal in self.portals:
                held_since = self._owned_since.get(portal, self.started_at)
                if held_since is None:
                    continue
                last = self.last_success.get(portal)
                since = held_since if last is None else max(last, held_since)
                if now - since > max_age_seconds:
                    state = "no successful cycle" if last is None else "last success"
                    stale.append(f"{portal}: {state} for {now - since:.0f} s")
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
