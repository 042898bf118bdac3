"""The poller's Prometheus series: each name, help text, labels and buckets, declared once.

The alert rules in deploy/prometheus/alerts.yml and the dashboard in deploy/grafana/dashboards/
read these names; tests/test_dashboards.py checks that every name they use is exported.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A cycle of a few users takes well under a second; 10,000 users on a standard plan's
# 2 requests/s take about 100 s; a portal blocked by its limits can take many minutes.
CYCLE_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
TOKEN_OUTCOMES = ("ok", "failed")
CYCLE_OUTCOMES = ("finished", "failed", "interrupted")  # as in poll_runs.outcome
# Why a spooled row was set aside: the database refused its data (it went to the
# dead-letter file), or its line in the spool file could not be read.
QUARANTINE_REASONS = ("rejected", "unreadable")


class Series:
    """Every series of the poller in `registry`, those of each portal in `portals` created at zero.

    An alert on `increase()` sees a portal's first failure only if the series existed before
    it, and a portal that never succeeds is still visible (`timeman_poller_users_stored_total`).
    """

    def __init__(self, registry: CollectorRegistry, portals: Sequence[str]) -> None:
        self.cycle_seconds = Histogram(
            "timeman_poller_cycle_seconds",
            "Duration of one portal's poll cycle, from its first request to its last write",
            ["portal"],
            buckets=CYCLE_BUCKETS,
            registry=registry,
        )
        self.cycles = Counter(
            "timeman_poller_cycles",
            "Portal cycles by poll_runs outcome: finished, failed (the portal failed as a whole: "
            "its users could not be listed, or a portal-wide error), interrupted",
            ["portal", "outcome"],
            registry=registry,
        )
        self.users_stored = Counter(
            "timeman_poller_users_stored",
            "Users whose status was fetched and stored (in the database, or in the spool while it is down)",
            ["portal"],
            registry=registry,
        )
        self.users_failed = Counter(
            "timeman_poller_users_failed",
            "Users whose status could not be fetched or stored in a cycle (each has a poll_errors row)",
            ["portal"],
            registry=registry,
        )
        self.errors = Counter(
            "timeman_poller_errors",
            "Error rows recorded in poll_errors, by Bitrix24 or poller error code",
            ["portal", "code"],
            registry=registry,
        )
        self.last_success_gauge = Gauge(
            "timeman_poller_last_success_timestamp_seconds",
            "Unix time of the portal's last cycle that reached the portal and stored its users",
            ["portal"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "timeman_poller_request_seconds",
            "Latency of HTTP requests to Bitrix24",
            ["portal"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.spool_rows = Gauge(
            "timeman_poller_spool_rows",
            "Rows (snapshots and error rows) waiting in the spool for the database",
            registry=registry,
        )
        self.spool_in_memory = Gauge(
            "timeman_poller_spool_in_memory",
            "1 while the spool file cannot be written and waiting rows are kept in memory only",
            registry=registry,
        )
        self.spool_quarantined = Counter(
            "timeman_poller_spool_quarantined_rows",
            "Spooled rows set aside instead of written: refused by the database for their data "
            "(moved to the dead-letter file) or unreadable in the spool file",
            ["reason"],
            registry=registry,
        )
        self.rate_limit_wait = Counter(
            "timeman_poller_rate_limit_wait_seconds",
            "Seconds spent waiting for the client-side leaky bucket before sending a request",
            ["portal"],
            registry=registry,
        )
        self.query_limit_exceeded = Counter(
            "timeman_poller_query_limit_exceeded",
            "QUERY_LIMIT_EXCEEDED answers: the portal's bucket was full despite the client-side one",
            ["portal"],
            registry=registry,
        )
        self.token_refreshes = Counter(
            "timeman_poller_token_refreshes",
            "OAuth token refreshes, by outcome (ok: a new pair was saved; failed: none was)",
            ["portal", "outcome"],
            registry=registry,
        )
        self.reconcile_last_success = Gauge(
            "timeman_poller_reconcile_last_success_timestamp_seconds",
            "Unix time of the portal's last finished reconcile of timeman.record.list",
            ["portal"],
            registry=registry,
        )
        self.reconcile_records = Counter(
            "timeman_poller_reconcile_records",
            "Workday records fetched by reconcile and backfill",
            ["portal"],
            registry=registry,
        )
        self.portal_owned = Gauge(
            "timeman_poller_portal_owned",
            "1 while this replica holds the portal and polls it, 0 after it let it go",
            ["portal", "replica"],
            registry=registry,
        )
        per_portal = (
            self.cycle_seconds,
            self.users_stored,
            self.users_failed,
            self.rate_limit_wait,
            self.query_limit_exceeded,
            self.reconcile_records,
        )
        for portal in portals:
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
