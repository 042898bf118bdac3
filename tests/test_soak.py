"""The soak scenario of bench/soak.py, shorter: faults, an outage, nothing lost or doubled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import postgres_url, reset_postgres

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from scratch import scratch_database
from soak import run_soak


def test_a_short_soak_with_faults_and_an_outage_loses_and_doubles_nothing(tmp_path: Path) -> None:
    url = postgres_url()
    if not url:
        pytest.skip("the soak needs PostgreSQL: set TIMEMAN_POLLER_TEST_POSTGRES_URL")
    reset_postgres(url)  # emptied, the test database is a server URL the bench accepts
    with scratch_database(url, "soak") as soak_url:
        result = run_soak(
            users=300, seconds=24, interval=2, url=soak_url, server_url=url, method="block", workdir=tmp_path
        )
    assert result["daemon_exit"] == 0, result["log"][-3000:]
    assert result["cycles"] >= 3
    assert sum(result["faults"].values()) > 0
    assert result["expected"] > 0
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["stored"] == result["expected"]
    assert "database unavailable" in result["log"] and "database available again" in result["log"]
    assert result["rss_end_mib"] <= result["rss_warm_mib"] + 25
    for secret in result["secrets"]:
        assert secret not in result["log"]
