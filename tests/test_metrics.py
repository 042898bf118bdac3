"""poller.daemon.metrics: each method moves its metric; /metrics and /healthz; health with replicas."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from poller.daemon.metrics import Metrics, MetricsServer

T0 = 1_800_000_000.0


class Clock:
    """Unix time that moves only when told."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(clock: Clock) -> Metrics:
    return Metrics(["acme", "globex"], clock=clock)


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_configured_portal_has_its_counters_at_zero_before_any_cycle(metrics: Metrics) -> None:
    for portal in ("acme", "globex"):
        assert value(metrics, "timeman_poller_users_stored_total", portal=portal) == 0
        assert value(metrics, "timeman_poller_users_failed_total", portal=portal) == 0
        assert value(metrics, "timeman_poller_cycle_seconds_count", portal=portal) == 0
        assert value(metrics, "timeman_poller_rate_limit_wait_seconds_total", portal=portal) == 0
        assert value(metrics, "timeman_poller_query_limit_exceeded_total", portal=portal) == 0
        assert value(metrics, "timeman_poller_reconcile_records_total", portal=portal) == 0
        for outcome in ("ok", "failed"):
            assert value(metrics, "timeman_poller_token_refreshes_total", portal=portal, outcome=outcome) == 0
        # A portal that has never succeeded has no last-success series (the alert rules tell
        # "never" from "long ago" by that).
        assert value(metrics, "timeman_poller_last_success_timestamp_seconds", portal=portal) is None
        assert (
            value(metrics, "timeman_poller_reconcile_last_success_timestamp_seconds", portal=portal) is None
        )
    assert value(metrics, "timeman_poller_spool_rows") == 0
    assert value(metrics, "timeman_poller_spool_in_memory") == 0
    for reason in ("rejected", "unreadable"):
        assert value(metrics, "timeman_poller_spool_quarantined_rows_total", reason=reason) == 0


def test_a_cycle_is_timed_per_portal_and_only_a_successful_one_moves_last_success(
    metrics: Metrics, clock: Clock
) -> None:
    metrics.cycle_finished("acme", 3.0, succeeded=True)
    clock.now += 60
    metrics.cycle_finished("acme", 70.0, succeeded=False)
    metrics.cycle_finished("globex", 0.4, succeeded=False)
    assert value(metrics, "timeman_poller_cycle_seconds_count", portal="acme") == 2
    assert value(metrics, "timeman_poller_cycle_seconds_sum", portal="acme") == 73.0
    assert value(metrics, "timeman_poller_cycle_seconds_bucket", portal="acme", le="5.0") == 1
    assert value(metrics, "timeman_poller_cycle_seconds_bucket", portal="acme", le="120.0") == 2
    assert value(metrics, "timeman_poller_last_success_timestamp_seconds", portal="acme") == T0
    assert value(metrics, "timeman_poller_last_success_timestamp_seconds", portal="globex") is None


def test_users_and_errors_add_up_per_portal_and_code(metrics: Metrics) -> None:
    metrics.count_users("acme", stored=50)
    metrics.count_users("acme", stored=48, failed=2)
    metrics.count_error("acme", "USER_NOT_FOUND", 2)
    metrics.count_error("acme", "USER_NOT_FOUND")
    metrics.count_error("globex", "")
    assert value(metrics, "timeman_poller_users_stored_total", portal="acme") == 98
    assert value(metrics, "timeman_poller_users_failed_total", portal="acme") == 2
    assert value(metrics, "timeman_poller_errors_total", portal="acme", code="USER_NOT_FOUND") == 3
    assert value(metrics, "timeman_poller_errors_total", portal="globex", code="UNKNOWN") == 1


def test_the_spool_reports_rows_waiting_its_fallback_to_memory_and_rows_set_aside(metrics: Metrics) -> None:
    metrics.set_spool_rows(120)
    metrics.set_spool_in_memory(True)
    metrics.count_quarantined(3, "rejected")
    metrics.count_quarantined(1, "unreadable")
    assert value(metrics, "timeman_poller_spool_rows") == 120
    assert value(metrics, "timeman_poller_spool_in_memory") == 1
    assert value(metrics, "timeman_poller_spool_quarantined_rows_total", reason="rejected") == 3
    assert value(metrics, "timeman_poller_spool_quarantined_rows_total", reason="unreadable") == 1
    metrics.set_spool_rows(0)
    metrics.set_spool_in_memory(False)
    assert value(metrics, "timeman_poller_spool_rows") == 0
    assert value(metrics, "timeman_poller_spool_in_memory") == 0


def test_rate_limit_waits_query_limit_answers_and_token_refreshes_are_counted(metrics: Metrics) -> None:
    metrics.rate_limit_waited("acme", 0.5)
    metrics.rate_limit_observer("acme")(1.25)
    metrics.rate_limit_waited("acme", 0.0)
    metrics.count_query_limit_exceeded("globex")
    metrics.token_refreshed("globex", ok=True)
    metrics.token_refreshed("globex", ok=False)
    metrics.token_refreshed("globex", ok=False)
    assert value(metrics, "timeman_poller_rate_limit_wait_seconds_total", portal="acme") == 1.75
    assert value(metrics, "timeman_poller_query_limit_exceeded_total", portal="globex") == 1
    assert value(metrics, "timeman_poller_token_refreshes_total", portal="globex", outcome="ok") == 1
    assert value(metrics, "timeman_poller_token_refreshes_total", portal="globex", outcome="failed") == 2


def test_reconcile_keeps_its_last_success_and_counts_records(metrics: Metrics, clock: Clock) -> None:
    metrics.reconcile_finished("acme", 0, at=T0 - 86_400)  # seeded at start from the database
    assert (
        value(metrics, "timeman_poller_reconcile_last_success_timestamp_seconds", portal="acme")
        == T0 - 86_400
    )
    clock.now += 5
    metrics.reconcile_finished("acme", 420)
    assert value(metrics, "timeman_poller_reconcile_last_success_timestamp_seconds", portal="acme") == T0 + 5
    assert value(metrics, "timeman_poller_reconcile_records_total", portal="acme") == 420


def test_health_counts_only_the_portals_this_replica_holds(metrics: Metrics, clock: Clock) -> None:
    metrics.set_owned("acme", "r1", True)
    metrics.set_owned("globex", "r1", False)
    clock.now += 100
    assert metrics.health(60) == (False, "stale: acme: no successful cycle for 100 s")
    assert value(metrics, "timeman_poller_portal_owned", portal="acme", replica="r1") == 1
    assert value(metrics, "timeman_poller_portal_owned", portal="globex", replica="r1") == 0
    metrics.cycle_finished("acme", 1.0, succeeded=True)
    assert metrics.health(60) == (True, "ok")


def test_a_portal_taken_over_gets_a_full_max_age_and_a_renewal_does_not_reset_it(
    metrics: Metrics, clock: Clock
) -> None:
    metrics.set_owned("acme", "r2", False)
    metrics.set_owned("globex", "r2", False)
    clock.now += 1000
    assert metrics.health(60) == (True, "ok")
    metrics.set_owned("globex", "r2", True)  # another replica died: this one takes globex
    clock.now += 50
    metrics.set_owned("globex", "r2", True)  # the lease renewed
    assert metrics.health(60) == (True, "ok")
    clock.now += 20
    assert metrics.health(60) == (False, "stale: globex: no successful cycle for 70 s")


def test_without_replicas_every_portal_counts_from_the_start(metrics: Metrics, clock: Clock) -> None:
    metrics.cycle_finished("acme", 1.0, succeeded=True)
    clock.now += 61
    healthy, text = metrics.health(60)
    assert not healthy
    assert text == "stale: acme: last success for 61 s; globex: no successful cycle for 61 s"


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_the_server_serves_metrics_with_help_text_and_health_until_stopped(
    metrics: Metrics, clock: Clock
) -> None:
    metrics.cycle_finished("acme", 2.0, succeeded=True)
    metrics.cycle_finished("globex", 2.0, succeeded=True)
    server = MetricsServer(metrics, "127.0.0.1", 0, max_age_seconds=60).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        status, kind, body = get(f"{base}/metrics")
        assert status == 200 and kind.startswith("text/plain; version=")
        families = {family.name: family for family in text_string_to_metric_families(body)}
        assert families["timeman_poller_cycle_seconds"].type == "histogram"
        assert families["timeman_poller_users_stored"].type == "counter"
        assert families["timeman_poller_spool_in_memory"].type == "gauge"
        for name, family in families.items():
            assert name.startswith("timeman_poller_")
            assert len(family.documentation) > 20, name
        assert get(f"{base}/healthz") == (200, "text/plain", "ok\n")
        clock.now += 61
        status, _, text = get(f"{base}/healthz")
        assert status == 503 and text.startswith("stale: acme: last success for 61 s")
        assert get(f"{base}/nothing")[0] == 404
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
