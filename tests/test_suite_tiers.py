"""The suite's own machinery: the head schema each `engine` test starts from, and the tiers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import postgres_url
from helpers import row_count
from postgres_head import PostgresHead
from sqlalchemy import Engine, inspect, text
from tiers import spawning_functions

from poller import storage


def test_an_engine_starts_at_head_with_no_rows(engine: Engine) -> None:
    with engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        assert "snapshots" in tables and "alembic_version" in tables
    assert row_count(engine, "alembic_version") == 1
    for table in tables:
        if table != "alembic_version":
            assert row_count(engine, table) == 0, table


def test_the_postgresql_head_is_emptied_when_intact_and_rebuilt_when_altered() -> None:
    url = postgres_url()
    if not url:
        if os.environ.get("TIMEMAN_POLLER_REQUIRE_POSTGRES"):
            pytest.fail("TIMEMAN_POLLER_REQUIRE_POSTGRES is set but TIMEMAN_POLLER_TEST_POSTGRES_URL is not")
        pytest.skip("PostgreSQL tests need TIMEMAN_POLLER_TEST_POSTGRES_URL")
    head = PostgresHead(url)
    head.prepare()
    built = head.fingerprint
    engine = storage.make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO portal_tasks (portal, task) VALUES ('emu', 'directory')"))
        head.prepare()  # intact: the rows go
        assert row_count(engine, "portal_tasks") == 0
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE scratch_rows (n int)"))
        head.prepare()  # an extra table: rebuilt
        with engine.connect() as connection:
            assert "scratch_rows" not in inspect(connection).get_table_names()
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE snapshots ADD COLUMN extra int"))
        head.prepare()
        with engine.connect() as connection:
            columns = {column["name"] for column in inspect(connection).get_columns("snapshots")}
        assert "extra" not in columns
        assert head.fingerprint == built
    finally:
        engine.dispose()


def test_a_test_is_a_process_test_when_it_or_a_helper_of_its_module_spawns(tmp_path: Path) -> None:
    module = tmp_path / "test_sample.py"
    module.write_text(
        "import subprocess, sys\n"
        "def run_cli():\n    return subprocess.run([sys.executable, '-V'])\n"
        "def helper():\n    return run_cli()\n"
        "def test_direct():\n    subprocess.Popen(['true'])\n"
        "def test_through_helpers():\n    helper()\n"
        "def test_in_process():\n    assert 1\n"
    )
    spawning = spawning_functions(str(module))
    assert {"run_cli", "helper", "test_direct", "test_through_helpers"} <= spawning
    assert "test_in_process" not in spawning


def test_the_tiers_are_given(request: pytest.FixtureRequest) -> None:
    markers = request.config.getini("markers")
    assert {marker.split(":")[0] for marker in markers} >= {"postgres", "process", "slow"}
