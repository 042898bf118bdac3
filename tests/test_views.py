"""The report views against the emulator's ground truth, on SQLite and PostgreSQL, in both modes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import postgres_url, reset_postgres
from sqlalchemy import Engine

from poller import storage, views
from poller.config import parse_config
from poller.daemon import make_clients, poll_portal
from poller.emulator import Emulator, EmulatorSettings, Workday
from poller.emulator.world import EXPIRED_USER, NIGHT_SHIFT_USER, NO_RECORDS_USER
from poller.report import REPORTS, render

MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
USERS = list(range(1, 15))


def simulate(engine: Engine, mode: str, *, days: int, step_minutes: int) -> tuple[Emulator, datetime]:
    """Poll a stepped emulator every `step_minutes` simulated minutes for `days` days."""
    emulator = Emulator(
        EmulatorSettings(users=len(USERS), rate=0, operating_limit=0, speed=0, start=MONDAY)
    ).start()
    try:
        config = parse_config(
            {
                "portals": [
                    {
                        "name": "emu",
                        "webhook_url": emulator.webhook_url,
                        "users": USERS,
                        "requests_per_second": 1000,
                    }
                ]
            },
            {},
        )
        (client,) = make_clients(config, engine, wall_clock=lambda: emulator.clock.now().timestamp())
        last_poll = MONDAY
        for _ in range(days * 24 * 60 // step_minutes):
            last_poll = emulator.clock.now()
            outcome = poll_portal(client, engine, None, emulator.clock.now, mode)  # type: ignore[arg-type]
            assert outcome.users_failed == 0
            emulator.clock.advance(step_minutes * 60)
    finally:
        emulator.stop()
    return emulator, last_poll


def worked_at(day: Workday, at: datetime) -> int:
    """The truth: seconds worked on `day` up to `at`, breaks excluded."""
    end = min(at, day.closed) if day.closed else at
    worked = (end - day.opened).total_seconds()
    if day.pause_start and day.pause_end and end > day.pause_start:
        worked -= (min(end, day.pause_end) - day.pause_start).total_seconds()
    return int(worked)


def truth(emulator: Emulator, last_poll: datetime) -> Iterator[tuple[int, Workday]]:
    """Every workday the polls could see: the one shown at the first poll, and those opened later."""
    for user in USERS:
        shown_first = emulator.world.last_workday(user, MONDAY)
        if shown_first is not None:
            yield user, shown_first
        for ahead in range(10):
            day = emulator.world.workday(user, (MONDAY + timedelta(days=ahead)).date())
            if day is not None and MONDAY < day.opened <= last_poll:
                yield user, day


def check_against_truth(engine: Engine, emulator: Emulator, last_poll: datetime, step_seconds: int) -> int:
    rows = {(r["user_id"], r["time_start"]): r for r in storage.get_view_rows(engine, views.workdays)}
    checked = 0
    for user, day in truth(emulator, last_poll):
        row = rows.pop((user, day.opened))
        assert row["work_date"] == day.work_date
        assert row["pending_approval"] is (user % 7 == 0)
        if user == EXPIRED_USER:
            assert row["status"] == "EXPIRED" and row["worked_is_estimate"] is True
            assert row["leaks_seconds"] == day.leaks_seconds
            continue
        if day.closed is not None and day.closed <= last_poll:
            assert row["status"] == "CLOSED", (user, day)
            assert row["worked_is_estimate"] is False
            assert row["time_finish"] == day.closed
            assert row["worked_seconds"] == day.worked_seconds()
            assert row["leaks_seconds"] == day.leaks_seconds
        else:
            assert row["worked_is_estimate"] is True
            assert 0 <= worked_at(day, last_poll) - row["worked_seconds"] <= step_seconds
        checked += 1
    assert rows == {}  # no workday the emulator did not have
    return checked


def test_a_simulated_week_polled_every_minute_matches_the_truth(tmp_path: Path) -> None:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'week.sqlite3'}")
    storage.upgrade_database(engine)
    emulator, last_poll = simulate(engine, "changes", days=7, step_minutes=1)
    checked = check_against_truth(engine, emulator, last_poll, step_seconds=60)
    assert checked >= 5 * (len(USERS) - 2)  # five weekdays of every ordinary user
    night = [r for r in storage.get_view_rows(engine, views.workdays, users=[NIGHT_SHIFT_USER])]
    assert any(r["time_finish"] and r["time_finish"].date() > r["time_start"].date() for r in night)
    assert storage.get_view_rows(engine, views.workdays, users=[NO_RECORDS_USER]) == []
    daily = storage.get_view_rows(engine, views.daily_worktime, users=[5])
    by_date = {r["work_date"]: r for r in storage.get_view_rows(engine, views.workdays, users=[5])}
    assert [d["worked_seconds"] for d in daily] == [by_date[d["work_date"]]["worked_seconds"] for d in daily]


def normalised(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The three views, minus the columns that differ between modes by design."""
    skip = {"polled_at", "seen_count"}
    result = {}
    for name, view in (
        ("latest", views.latest_status),
        ("workdays", views.workdays),
        ("daily", views.daily_worktime),
    ):
        rows = storage.get_view_rows(engine, view)
        result[name] = [tuple((k, v) for k, v in sorted(r.items()) if k not in skip) for r in rows]
    for report in ("workdays", "daily"):  # what `timeman-poller report` prints from them
        result[f"report {report}"] = [render(report, storage.get_view_rows(engine, REPORTS[report]), "csv")]
    return result


def test_the_views_agree_on_sqlite_and_postgresql_in_both_modes(tmp_path: Path) -> None:
    if not postgres_url():
        pytest.skip("PostgreSQL tests need TIMEMAN_POLLER_TEST_POSTGRES_URL")
    results = {}
    for backend in ("sqlite", "postgresql"):
        for mode in ("all", "changes"):
            if backend == "sqlite":
                url = f"sqlite:///{tmp_path / f'{mode}.sqlite3'}"
            else:
                url = postgres_url() or ""
                reset_postgres(url)
            engine = storage.make_engine(url)
            storage.upgrade_database(engine)
            emulator, last_poll = simulate(engine, mode, days=2, step_minutes=10)
            assert check_against_truth(engine, emulator, last_poll, step_seconds=600) > 0
            results[(backend, mode)] = normalised(engine)
            if mode == "changes":
                with engine.connect() as connection:
                    rows = connection.exec_driver_sql("SELECT count(*) FROM snapshots").scalar_one()
                assert rows < len(USERS) * 2 * 24 * 6 / 3  # far fewer rows than polls
            engine.dispose()
    reference = results[("sqlite", "all")]
    assert reference["workdays"] and reference["daily"] and reference["latest"]
    for key, result in results.items():
        assert result == reference, key
