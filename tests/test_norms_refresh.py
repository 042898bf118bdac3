"""The norms refresh (poller.poll.norms_refresh) against the emulator: norms, schedules, calendar and
absences stored with the directory refresh, under `poll` and `run`, on both databases."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import MakeEmulator, make_config, portal
from daemons import make_daemon
from sqlalchemy import Engine, select

from poller import storage
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.config import Config
from poller.emulator import absences as emulated_absences
from poller.emulator import norm_methods
from poller.emulator import norms as emulated_norms
from poller.models import portal_calendars_table, schedule_assignments_table, schedules_table
from poller.poll.cycle import PollReport, poll_once
from poller.poll.housekeeping import PortalChores
from poller.poll.norms_refresh import CALENDAR_TASK, NO_SCOPE, TASK
from poller.spool.queue import Spool
from poller.storage.tasks import get_task

USERS = [1, 2, 3, 4, 5, 6, 7]


def timer_poll(config: Config, engine: Engine, clock: ManualClock) -> PollReport:
    """One `poll` from a timer: new clients and chores, one cycle of every portal."""
    clients = make_clients(config, engine, clock=clock)
    return poll_once(clients, engine, clock=clock.now, chores=PortalChores(config, engine))


def a_config(emulator: object, database_url: str, **portal_keys: object) -> Config:
    return make_config(
        portal(emulator, USERS, **portal_keys),  # type: ignore[arg-type]
        database_url=database_url,
        directory={"refresh_hours": 24},
        reconcile={"days": 0},
        absences={"past_days": 10, "future_days": 20},
    )


def current_calendars(engine: Engine) -> dict[int, tuple[str, str, str, str]]:
    c = portal_calendars_table.c
    query = select(c.year, c.holidays, c.moved_workdays, c.week_holidays, c.source).where(
        c.valid_to.is_(None)
    )
    with engine.connect() as connection:
        return {row.year: tuple(row)[1:] for row in connection.execute(query)}


def expected_absence_days(users: list[int], first: date, last: date) -> set[tuple[int, date]]:
    """The emulator's own truth: every day of `first`..`last` each user is away."""
    days = set()
    for user_id in users:
        for absence in emulated_absences.absences_between(user_id, first, last):
            day = max(absence.first, first)
            while day <= min(absence.last, last):
                days.add((user_id, day))
                day += timedelta(days=1)
    return days


def test_poll_stores_norms_schedules_calendar_and_absences_after_its_cycle(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    config = a_config(
        emulator,
        database_url,
        schedule_ids=[1],
        schedules={"users": {"5": 4}, "departments": {"3": 1}},
        extra_holidays=["2027-12-24"],
    )
    report = timer_poll(config, engine, clock)
    assert report.ok and report.requests == 1  # the cycle's own batch; the refresh came after it

    today = clock.now().date()
    norms = storage.get_norms(engine, "emu", today, today)
    assert sorted(norms) == USERS
    four = emulated_norms.user_norms(4)
    (version,) = norms[4]
    assert (version.tracked, version.free, version.max_start, version.min_finish) == (
        four.tracked, four.free, four.max_start, four.min_finish,
    )  # fmt: skip
    assert (version.min_duration, version.allowed_delta) == (four.min_duration, four.allowed_delta)

    with engine.connect() as connection:
        schedules = connection.execute(
            select(schedules_table.c.schedule_id, schedules_table.c.name, schedules_table.c.shift_start)
        ).all()
        assigned = connection.execute(
            select(
                schedule_assignments_table.c.subject,
                schedule_assignments_table.c.subject_id,
                schedule_assignments_table.c.schedule_id,
            )
        ).all()
    assert sorted(schedules) == [(1, "For all employees", 9 * 3600), (4, "Night shift", 20 * 3600)]
    assert sorted(assigned) == [("department", 3, 1), ("user", 5, 4)]

    holidays_2026 = (
        "2026-01-01,2026-01-02,2026-01-07,2026-02-23,2026-03-08,2026-05-01,2026-05-09,2026-06-12,2026-11-04"
    )
    assert current_calendars(engine) == {
        2026: (holidays_2026, "2026-12-31", "SA,SU", "portal"),
        2027: (holidays_2026.replace("2026", "2027") + ",2027-12-24", "2027-12-31", "SA,SU", "config"),
    }

    first, last = today - timedelta(days=10), today + timedelta(days=20)
    stored = {(row.user_id, row.day) for row in storage.get_absences(engine, "emu", first, last)}
    assert stored == expected_absence_days(USERS, first, last) and stored  # meetings ("busy") left out

    assert get_task(engine, "emu", TASK).last_done_at == clock.now()
    assert get_task(engine, "emu", CALENDAR_TASK).last_error is None
    calls = dict(emulator.stats.calls)
    timer_poll(config, engine, clock)  # not due again before refresh_hours
    assert emulator.stats.calls["timeman.settings"] == calls["timeman.settings"] == len(USERS)
    assert emulator.stats.calls["calendar.accessibility.get"] == calls["calendar.accessibility.get"] == 1


def test_without_the_calendar_scope_norms_are_stored_and_the_skip_is_said_once_and_recorded(
    engine: Engine,
    database_url: str,
    make_emulator: MakeEmulator,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = make_emulator(users=10, clock=clock, calendar_scope=False)
    config = a_config(emulator, database_url, holidays_country="DE", holidays_subdivision="BY")
    clients = make_clients(config, engine, clock=clock)
    chores = PortalChores(config, engine)  # one process: `run` or a long `poll` loop
    with caplog.at_level(logging.INFO):
        assert poll_once(clients, engine, clock=clock.now, chores=chores).ok
        clock.advance(25 * 3600)
        assert poll_once(clients, engine, clock=clock.now, chores=chores).ok
    said = [r for r in caplog.records if NO_SCOPE in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(said) == 1
    assert get_task(engine, "emu", CALENDAR_TASK).last_error == NO_SCOPE
    assert get_task(engine, "emu", TASK).last_error is None  # the refresh itself did not fail
    today = clock.now().date()
    assert sorted(storage.get_norms(engine, "emu", today, today)) == USERS
    assert storage.get_absences(engine, "emu", today - timedelta(days=30), today + timedelta(days=30)) == []
    assert emulator.stats.calls["calendar.accessibility.get"] == 0  # not asked without the scope
    calendars = current_calendars(engine)
    assert sorted(calendars) == [2026, 2027]
    holidays, moved, week, source = calendars[2026]
    assert source == "holidays-package" and moved == "" and week == "SA,SU"
    assert "2026-01-06" in holidays and "2026-06-04" in holidays  # Epiphany, Corpus Christi: Bavarian


def test_a_changed_norm_is_a_new_version_on_the_next_refresh(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    config = a_config(emulator, database_url)
    timer_poll(config, engine, clock)
    first_seen = clock.now()
    norm_methods.override(
        emulator,
        "timeman.settings",
        {
            "UF_TIMEMAN": True,
            "UF_TM_FREE": False,
            "UF_TM_MAX_START": "08:00:00",
            "UF_TM_MIN_FINISH": "17:00:00",
            "UF_TM_MIN_DURATION": "08:00:00",
            "UF_TM_ALLOWED_DELTA": "00:05:00",
        },
        user_id=6,
    )
    clock.advance(25 * 3600)
    timer_poll(config, engine, clock)
    versions = storage.get_norms(engine, "emu", first_seen.date(), clock.now().date())
    six = versions[6]
    assert [(v.max_start, v.allowed_delta, v.valid_from, v.valid_to) for v in six] == [
        (
            emulated_norms.user_norms(6).max_start,
            emulated_norms.user_norms(6).allowed_delta,
            first_seen,
            clock.now(),
        ),
        (8 * 3600, 300, clock.now(), None),
    ]
    assert all(len(versions[user]) == 1 for user in USERS if user != 6)  # unchanged: no new version


def test_the_daemon_refreshes_on_a_thread_of_its_own_and_a_cycle_counts_only_its_requests(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock, tmp_path: Path
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    config = a_config(emulator, database_url)
    daemon = make_daemon(config, engine, Spool(tmp_path / "spool.jsonl"), clock=clock)
    (client,) = daemon.clients
    assert daemon.ensure_database()
    first = daemon.poll(client)
    daemon.portal_jobs.norms.join(10)
    second = daemon.poll(client)
    assert first is not None and second is not None and (first.requests, second.requests) == (1, 1)
    today = clock.now().date()
    assert sorted(storage.get_norms(engine, "emu", today, today)) == USERS
    assert sorted(current_calendars(engine)) == [today.year, today.year + 1]
    assert get_task(engine, "emu", TASK).last_error is None
    assert emulator.stats.calls["timeman.settings"] == len(USERS)  # once: not due at the second cycle


def test_a_failed_part_is_recorded_the_others_stored_and_the_refresh_tried_again_later(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    config = a_config(emulator, database_url)
    emulator.force_operating_limit(1200, "timeman.settings")  # blocked for 20 minutes of the clock
    assert timer_poll(config, engine, clock).ok  # the cycle is not affected
    failed = get_task(engine, "emu", TASK)
    assert failed.last_done_at is None and failed.last_error is not None
    assert failed.last_error.startswith("norms not read: ") and "OPERATION_TIME_LIMIT" in failed.last_error
    today = clock.now().date()
    assert storage.get_norms(engine, "emu", today, today) == {}
    assert sorted(current_calendars(engine)) == [2026, 2027]  # the other parts ran
    assert storage.get_absences(engine, "emu", today - timedelta(days=10), today + timedelta(days=20))
    clock.advance(1800)  # past the block and the retry wait
    timer_poll(config, engine, clock)
    assert get_task(engine, "emu", TASK).last_error is None
    assert sorted(storage.get_norms(engine, "emu", today, today)) == USERS


def test_an_unreadable_absence_answer_keeps_the_users_stored_days(
    engine: Engine,
    database_url: str,
    make_emulator: MakeEmulator,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    config = a_config(emulator, database_url)
    away = emulated_absences.Absence(77, "Vacation", date(2026, 11, 24), date(2026, 11, 26))
    event = emulated_absences.absence_event(away, 3600, "Europe/Berlin")
    norm_methods.override(emulator, "calendar.accessibility.get", [event], user_id=2)
    timer_poll(config, engine, clock)
    window = (date(2026, 11, 1), date(2026, 12, 31))
    kept = [(row.day, row.event_id) for row in storage.get_absences(engine, "emu", *window, user_ids=[2])]
    assert kept == [(date(2026, 11, 24), "77"), (date(2026, 11, 25), "77"), (date(2026, 11, 26), "77")]
    others = storage.get_absences(engine, "emu", *window, user_ids=[3, 4, 5, 6, 7])

    later = emulated_absences.Absence(78, "Sick", date(2026, 11, 30), date(2026, 11, 30))
    new_event = emulated_absences.absence_event(later, 3600, "Europe/Berlin")
    for bad in ([{**event, "DATE_TO_TS_UTC": ""}, new_event], ["not an event", event]):
        norm_methods.override(emulator, "calendar.accessibility.get", bad, user_id=2)
        clock.advance(25 * 3600)
        with caplog.at_level(logging.WARNING):
            timer_poll(config, engine, clock)
        stored = storage.get_absences(engine, "emu", *window, user_ids=[2])
        # the days of 77 not marked removed; 78, read in the first round, stored and then kept
        assert [(row.day, row.event_id) for row in stored] == [*kept, (date(2026, 11, 30), "78")]
        assert "portal emu user 2: absences not fully read: the stored ones are kept" in caplog.text
        assert storage.get_absences(engine, "emu", *window, user_ids=[3, 4, 5, 6, 7]) == others
        caplog.clear()

    norm_methods.override(emulator, "calendar.accessibility.get", [], user_id=2)  # withdrawn, read whole
    clock.advance(25 * 3600)
    timer_poll(config, engine, clock)
    assert storage.get_absences(engine, "emu", *window, user_ids=[2]) == []


def test_a_failed_calendar_read_keeps_the_stored_years_and_still_reads_the_absences(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    config = a_config(emulator, database_url, holidays_country="DE", extra_holidays=["2027-12-24"])
    window = (date(2026, 11, 1), date(2026, 12, 31))

    def away(event_id: int, first: date, last: date) -> None:
        absence = emulated_absences.Absence(event_id, "Vacation", first, last)
        event = emulated_absences.absence_event(absence, 3600, "Europe/Berlin")
        norm_methods.override(emulator, "calendar.accessibility.get", [event], user_id=2)

    def refresh_with_the_calendar(answer: object) -> None:
        norm_methods.override(emulator, "calendar.settings.get", answer)
        clock.advance(25 * 3600)
        timer_poll(config, engine, clock)

    def absence_days() -> list[date]:
        return [row.day for row in storage.get_absences(engine, "emu", *window, user_ids=[2])]

    away(70, date(2026, 11, 24), date(2026, 11, 24))
    refresh_with_the_calendar("not an object")  # nothing stored yet
    error = get_task(engine, "emu", TASK).last_error
    assert error is not None and error.startswith("calendar not read: ") and "is not an object" in error
    assert current_calendars(engine) == {2027: ("2027-12-24", "", "SA,SU", "config")}  # no package
    assert absence_days() == [date(2026, 11, 24)]

    refresh_with_the_calendar(None)  # read again
    assert get_task(engine, "emu", TASK).last_error is None
    seen = current_calendars(engine)
    assert {year: value[3] for year, value in seen.items()} == {2026: "portal", 2027: "config"}
    with engine.connect() as connection:
        rows = connection.execute(select(portal_calendars_table.c.id)).all()

    away(71, date(2026, 11, 30), date(2026, 12, 1))
    refresh_with_the_calendar("not an object")
    assert get_task(engine, "emu", TASK).last_error.startswith("calendar not read: ")  # type: ignore[union-attr]
    assert current_calendars(engine) == seen  # no 'holidays-package' or 'config' version over the portal's
    with engine.connect() as connection:
        assert connection.execute(select(portal_calendars_table.c.id)).all() == rows
    assert absence_days() == [date(2026, 11, 30), date(2026, 12, 1)]  # the absences were still read
