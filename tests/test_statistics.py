"""A table that grows within a run is analyzed on PostgreSQL (its plans then see its size)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from poller import storage
from poller.status import parse_status
from poller.storage import statistics

OPENED = {"STATUS": "OPENED", "TIME_START": "2026-11-16T09:00:00+03:00", "TZ_OFFSET": 10800}
POLLED = datetime(2026, 11, 16, 7, 30, tzinfo=UTC)


def cycle(engine: Engine, users: range, polled: datetime) -> None:
    rows = [storage.SnapshotRow("acme", user_id, polled, parse_status(OPENED)) for user_id in users]
    storage.save_portal_cycle(engine, None, rows, [])


def rows_counted(engine: Engine, table: str) -> float:
    with engine.connect() as connection:
        return float(
            connection.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
            ).scalar_one()
        )


def test_a_table_is_analyzed_each_time_it_doubles_and_sqlite_is_left_alone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "MIN_ROWS", 10)

    cycle(engine, range(1, 9), POLLED)  # 8 rows: under MIN_ROWS
    if engine.dialect.name == "sqlite":
        cycle(engine, range(1, 13), POLLED + timedelta(minutes=5))
        with engine.connect() as connection:
            stats = connection.execute(
                text("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).all()
        assert stats == []
        return
    assert rows_counted(engine, "snapshots") == -1  # never analyzed
    cycle(engine, range(1, 5), POLLED + timedelta(minutes=5))  # 12 rows: analyzed
    assert (rows_counted(engine, "snapshots"), rows_counted(engine, "workdays")) == (12, -1)  # 8 days
    cycle(engine, range(1, 11), POLLED + timedelta(minutes=10))  # 10 rows more: under the 12 it held
    assert (rows_counted(engine, "snapshots"), rows_counted(engine, "workdays")) == (12, 10)  # 10 days
    cycle(engine, range(1, 3), POLLED + timedelta(minutes=15))  # 12 rows since: doubled
    assert rows_counted(engine, "snapshots") == 24
    cycle(engine, range(11, 21), POLLED + timedelta(minutes=20))  # 10 days more: doubled
    assert (rows_counted(engine, "snapshots"), rows_counted(engine, "workdays")) == (24, 20)


def test_an_analyze_kept_waiting_for_its_lock_gives_up_soon_and_is_tried_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite plans without statistics")
    monkeypatch.setattr(statistics, "MIN_ROWS", 1_000)
    cycle(engine, range(1, 9), POLLED)  # 8 rows, under MIN_ROWS
    monkeypatch.setattr(statistics, "MIN_ROWS", 10)
    monkeypatch.setattr(statistics, "LOCK_TIMEOUT_MS", 50)
    with engine.connect() as blocker, blocker.begin():  # as another writer's ANALYZE or a VACUUM would
        blocker.execute(text("LOCK TABLE snapshots IN SHARE UPDATE EXCLUSIVE MODE"))
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '5min'"))  # the writer's own limit
            statistics.note_rows_added(connection, "snapshots", 10)  # due: waits 50 ms, gives up
            assert connection.execute(text("SHOW lock_timeout")).scalar_one() == "5min"
    assert rows_counted(engine, "snapshots") == -1  # not analyzed, the transaction went on

    cycle(engine, range(1, 10), POLLED + timedelta(minutes=5))  # 9 rows since: not yet
    assert rows_counted(engine, "snapshots") == -1
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '5min'"))
        statistics.note_rows_added(connection, "snapshots", 1)  # MIN_ROWS since the failure: tried again
        assert connection.execute(text("SHOW lock_timeout")).scalar_one() == "5min"
    assert rows_counted(engine, "snapshots") == 17
