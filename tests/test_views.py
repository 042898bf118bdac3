"""The report views against the emulator's ground truth, on SQLite and PostgreSQL, in both modes.

The poller and the emulator share a ManualClock: a simulated week is a loop that polls and
moves the clock, with no real waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeEmulator, make_config, portal, postgres_url, reset_postgres
from helpers import row_count
from sqlalchemy import Engine

from poller import storage, views
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator, Workday
from poller.emulator.world import EXPIRED_USER, NIGHT_SHIFT_USER, NO_RECORDS_USER, shows_pause_moment
from poller.poll.cycle import poll_portal
from poller.render.report import render
from poller.views import REPORTS

MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
USERS = list(range(1, 17))


@dataclass
class Coverage:
    """What the checks mid-week saw, so the test knows it tested what it claims."""

    open_days: int = 0
    paused_with_null_finish: int = 0  # running longer than one poll interval
    paused_with_pause_moment: int = 0


@dataclass
class Simulation:
    emulator: Emulator
    clock: ManualClock
    last_poll: datetime = MONDAY
    coverage: Coverage = field(default_factory=Coverage)


def simulate(
    engine: Engine,
    make_emulator: MakeEmulator,
    mode: str,
    *,
    days: float,
    step_minutes: int,
    check_every: int = 0,
) -> Simulation:
    """Poll every `step_minutes` for `days`; every `check_every` polls, check the open days."""
    clock = ManualClock(MONDAY)
    emulator = make_emulator(users=len(USERS), rate=0, operating_limit=0, clock=clock)
    config = make_config(portal(emulator, USERS, requests_per_second=1000))
    (client,) = make_clients(config, engine, clock=clock)
    sim = Simulation(emulator, clock)
    for number in range(int(days * 24 * 60) // step_minutes):
        sim.last_poll = clock.now()
        outcome = poll_portal(client, engine, clock.now, mode)  # type: ignore[arg-type]
        assert outcome.users_failed == 0
        if check_every and number % check_every == 0:
            check_open_days(engine, sim, step_minutes * 60)
        clock.advance(step_minutes * 60)
    return sim


def worked_at(day: Workday, at: datetime) -> int:
    """The truth: seconds worked on `day` up to `at`, breaks excluded."""
    return day.worked_until(at)  # every pause of the day excluded


def check_open_days(engine: Engine, sim: Simulation, step_seconds: int) -> None:
    """Every day open at the last poll is estimated within one poll interval of the truth."""
    at = sim.last_poll
    rows = {(r["user_id"], r["time_start"]): r for r in storage.get_view_rows(engine, views.workdays)}
    for user in USERS:
        day = sim.emulator.world.last_workday(user, at)
        if day is None or user == EXPIRED_USER or (day.closed is not None and day.closed <= at):
            continue
        if sim.emulator.world.state(day, at)[0] == "EXPIRED":  # turned EXPIRED during the run
            continue
        row = rows[(user, day.opened)]
        truth = worked_at(day, at)
        assert row["worked_is_estimate"] is True, (user, at)
        assert 0 <= row["worked_seconds"] <= (at - day.opened).total_seconds() - row["leaks_seconds"]
        assert abs(row["worked_seconds"] - truth) <= step_seconds, (user, at, row, truth)
        sim.coverage.open_days += 1
        state, _, _ = sim.emulator.world.state(day, at)
        if state == "PAUSED" and shows_pause_moment(user):
            sim.coverage.paused_with_pause_moment += 1
        elif state == "PAUSED" and day.pause_start and (at - day.pause_start).total_seconds() > step_seconds:
            sim.coverage.paused_with_null_finish += 1


def truth(sim: Simulation) -> Iterator[tuple[int, Workday]]:
    """Every workday the polls could see: the one shown at the first poll, and those opened later."""
    for user in USERS:
        shown_first = sim.emulator.world.last_workday(user, MONDAY)
        if shown_first is not None:
            yield user, shown_first
        for ahead in range(10):
            day = sim.emulator.world.workday(user, (MONDAY + timedelta(days=ahead)).date())
            if day is not None and MONDAY < day.opened <= sim.last_poll:
                yield user, day


def check_against_truth(engine: Engine, sim: Simulation, step_seconds: int) -> int:
    """Closed days exact, open days within one interval, and no day the world did not have."""
    rows = {(r["user_id"], r["time_start"]): r for r in storage.get_view_rows(engine, views.workdays)}
    checked = 0
    for user, day in truth(sim):
        row = rows.pop((user, day.opened))
        assert row["work_date"] == day.work_date
        assert row["pending_approval"] is (user % 7 == 0)
        if user == EXPIRED_USER or sim.emulator.world.state(day, sim.last_poll)[0] == "EXPIRED":
            assert row["status"] == "EXPIRED" and row["worked_is_estimate"] is True
            assert row["leaks_seconds"] == day.leaks_seconds
            continue
        if day.closed is not None and day.closed <= sim.last_poll:
            expected = (day.closed, day.worked_seconds(), day.leaks_seconds, "CLOSED", False)
            actual = (row["time_finish"], row["worked_seconds"], row["leaks_seconds"], row["status"])
            assert (*actual, row["worked_is_estimate"]) == expected, (user, day)
        else:
            assert row["worked_is_estimate"] is True
            assert abs(worked_at(day, sim.last_poll) - row["worked_seconds"]) <= step_seconds
        checked += 1
    assert rows == {}  # no workday the emulator did not have
    return checked


def test_a_simulated_week_polled_every_30_minutes_matches_the_truth(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'week.sqlite3'}")
    storage.upgrade_database(engine)
    sim = simulate(engine, make_emulator, "changes", days=7, step_minutes=30, check_every=2)
    checked = check_against_truth(engine, sim, step_seconds=30 * 60)
    assert checked >= 5 * (len(USERS) - 2)  # five weekdays of every ordinary user
    assert sim.coverage.open_days > 100
    assert sim.coverage.paused_with_null_finish > 0 and sim.coverage.paused_with_pause_moment > 0
    night = storage.get_view_rows(engine, views.workdays, users=[NIGHT_SHIFT_USER])
    assert any(r["time_finish"] and r["time_finish"].date() > r["time_start"].date() for r in night)
    assert storage.get_view_rows(engine, views.workdays, users=[NO_RECORDS_USER]) == []
    daily = storage.get_view_rows(engine, views.daily_worktime, users=[5])
    by_date = {r["work_date"]: r for r in storage.get_view_rows(engine, views.workdays, users=[5])}
    assert [d["worked_seconds"] for d in daily] == [by_date[d["work_date"]]["worked_seconds"] for d in daily]
    engine.dispose()


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


def test_the_views_agree_on_sqlite_and_postgresql_in_both_modes(
    tmp_path: Path, make_emulator: MakeEmulator
) -> None:
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
            # Monday to Wednesday noon: the last poll finds days open, paused and closed.
            sim = simulate(engine, make_emulator, mode, days=2.5, step_minutes=30)
            assert check_against_truth(engine, sim, step_seconds=30 * 60) > 0
            results[(backend, mode)] = normalised(engine)
            if mode == "changes":
                stored = row_count(engine, "snapshots")
                assert stored < len(USERS) * 2.5 * 24 * 2 / 3  # far fewer rows than polls
            engine.dispose()
    reference = results[("sqlite", "all")]
    assert reference["workdays"] and reference["daily"] and reference["latest"]
    for key, result in results.items():
        assert result == reference, key
