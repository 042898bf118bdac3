"""The soak of bench/soak.py, shorter: faults, hostile values, a stuck portal, an outage; nothing lost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import postgres_url, reset_postgres

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from scratch import scratch_database
from soak import HEALTHY, run_soak


def test_a_short_soak_with_faults_and_an_outage_loses_doubles_and_leaks_nothing(tmp_path: Path) -> None:
    url = postgres_url()
    if not url:
        pytest.skip("the soak needs PostgreSQL: set TIMEMAN_POLLER_TEST_POSTGRES_URL")
    reset_postgres(url)  # emptied, the test database is a server URL the bench accepts
    with scratch_database(url, "soak") as soak_url:
        result = run_soak(
            users=300,
            seconds=24,
            interval=2,
            url=soak_url,
            server_url=url,
            method="block",
            workdir=tmp_path,
            read_timeout=5,
        )
    assert result["daemon_exit"] == 0, result["log"][-3000:]
    assert result["sigterm_seconds"] <= 5 + 10  # the hung and trickling requests abandoned
    assert result["cycles"] >= 3
    assert sum(result["faults"].values()) > 0
    assert result["expected"] > 0
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["stored"] == result["expected"]
    assert result["values_warned"] > 0  # the hostile values came, and were nulled or cut, not refused
    # The outage is seen either by a cycle whose writes failed (the spool keeps them and
    # writes them back) or by the replica lock (no portal is polled until the database is back).
    lines = result["outage_lines"]
    assert lines["database unavailable"] + lines["lock connection lost"] >= 1, lines
    assert lines["database available again"] >= lines["database unavailable"], lines
    _, back = result["outage"]
    for portal in HEALTHY:  # polling went on after the outage, the trickling and hung portals notwithstanding
        assert any(run.started_at > back for run in result["runs"][portal]), portal
    assert result["rss_end_mib"] <= result["rss_warm_mib"] + 25
    assert result["secrets_in_log"] == 0
    assert result["hex_in_log"] == 0
    for secret in result["secrets"]:
        assert secret not in result["log"]
