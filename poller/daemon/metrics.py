"""The poller's metrics: one small method per event, so the daemon, the spool and the client
report what happened without knowing about Prometheus.

The series are declared in poller.daemon.metric_series, /healthz is judged by
poller.daemon.health, and poller.daemon.metrics_server serves both over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry

from poller.daemon.health import Health
from poller.daemon.metric_series import Series
from poller.daemon.metrics_server import MetricsServer

__all__ = ["Metrics", "MetricsServer"]


class Metrics:
    """The poller's series, in their own registry, and the state /healthz reports.

    Series for each configured portal are created at zero up front (see `Series`).
    """

    def __init__(self, portals: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        portals = list(portals)
        self.series = Series(self.registry, portals)
        self._health = Health(portals, started_at=clock())

    # -- cycles ----------------------------------------------------------------------------

    def cycle_finished(
        self, portal: str, seconds: float, *, succeeded: bool, outcome: str | None = None
    ) -> None:
        """Observe one portal's cycle; `succeeded`: it reached the portal and stored its users.

        Single users may have failed in a cycle that succeeded (they are counted by
        `count_users`); a portal-wide failure (unreachable, bad credentials, users not even
        listed) did not succeed. `outcome`: its poll_runs outcome, counted in `cycles`.
        """
        self.series.cycle_seconds.labels(portal=portal).observe(seconds)
        if outcome is not None:
            self.series.cycles.labels(portal=portal, outcome=outcome).inc()
        if succeeded:
            now = self._clock()
            self._health.succeeded(portal, now)
            self.series.last_success_gauge.labels(portal=portal).set(now)

    def count_users(self, portal: str, *, stored: int = 0, failed: int = 0) -> None:
        """Add users stored and users failed; call it per written chunk or once per cycle."""
        if stored:
            self.series.users_stored.labels(portal=portal).inc(stored)
        if failed:
            self.series.users_failed.labels(portal=portal).inc(failed)

    def count_error(self, portal: str, code: str, count: int = 1) -> None:
        """Add `count` error rows of `code` (as stored in poll_errors.code)."""
        if count:
            self.series.errors.labels(portal=portal, code=code or "UNKNOWN").inc(count)

    # -- spool -----------------------------------------------------------------------------

    def set_spool_rows(self, rows: int) -> None:
        """Rows waiting in the spool now (0 once all are written)."""
        self.series.spool_rows.set(rows)

    def set_spool_in_memory(self, in_memory: bool) -> None:
        """The spool file became unwritable (True) or writable again (False)."""
        self.series.spool_in_memory.set(1 if in_memory else 0)

    def count_quarantined(self, rows: int, reason: str) -> None:
        """Add spooled rows set aside: `reason` is "rejected" (dead-lettered) or "unreadable"."""
        if rows:
            self.series.spool_quarantined.labels(reason=reason).inc(rows)

    # -- limits, tokens ----------------------------------------------------------------------

    def rate_limit_waited(self, portal: str, seconds: float) -> None:
        """Add time spent waiting for the client-side bucket (0 is ignored)."""
        if seconds > 0:
            self.series.rate_limit_wait.labels(portal=portal).inc(seconds)

    def rate_limit_observer(self, portal: str) -> Callable[[float], None]:
        """`rate_limit_waited` bound to `portal`, for a bucket that knows no portal names."""
        return lambda seconds: self.rate_limit_waited(portal, seconds)

    def count_query_limit_exceeded(self, portal: str) -> None:
        """Count one QUERY_LIMIT_EXCEEDED answer from the portal."""
        self.series.query_limit_exceeded.labels(portal=portal).inc()

    def token_refreshed(self, portal: str, *, ok: bool) -> None:
        """Count one OAuth refresh: ok when a new pair was saved, else failed."""
        self.series.token_refreshes.labels(portal=portal, outcome="ok" if ok else "failed").inc()

    def request_observer(self, portal: str) -> Callable[[float], None]:
        """Observe one HTTP request's seconds, for the transport's `observe_latency`."""
        histogram = self.series.request_seconds.labels(portal=portal)
        return histogram.observe

    # -- reconcile, replicas -----------------------------------------------------------------

    def reconcile_finished(self, portal: str, records: int, *, at: float | None = None) -> None:
        """A reconcile of `portal` finished, having fetched `records` records.

        `at` (Unix time) defaults to now; at start the daemon may pass the time of the last
        reconcile stored in the database, so a restart does not hide a late one.
        """
        if records:
            self.series.reconcile_records.labels(portal=portal).inc(records)
        self.series.reconcile_last_success.labels(portal=portal).set(self._clock() if at is None else at)

    def set_owned(self, portal: str, replica: str, owned: bool) -> None:
        """This replica took (True) or let go of (False) `portal`.

        /healthz then reports only the portals this replica holds (a portal whose ownership
        was never reported counts as held: a single daemon polls them all). A portal taken
        is given a full `max_age_seconds` from that moment before it counts as stale; calling
        it again while held (a lease renewal) changes nothing.
        """
        self.series.portal_owned.labels(portal=portal, replica=replica).set(1 if owned else 0)
        self._health.owned(portal, owned, self._clock())

    # -- health ------------------------------------------------------------------------------

    def health(self, max_age_seconds: float) -> tuple[bool, str]:
        """Healthy when every portal this replica holds stored a cycle within `max_age_seconds`."""
        return self._health.report(max_age_seconds, self._clock())
