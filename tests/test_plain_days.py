"""A poll that decides its day alone is stored without reading the day (storage.plain_days),
and the table comes out as the full way (workdays.apply_polls, which reads every day) makes it.

The script below walks through every case where the plain upsert must leave a day to the full
way: a pause, a closed record's day, a final past day that changes (a revision), a record a
manager moved, a late poll, a work date moved by the directory's zone, two polls of one user in
one write, a replayed write; beside the plain cases (running, closed, expired, a new day).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from test_directory import DEPARTMENTS, user

from poller import storage
from poller.models import workday_revisions_table, workdays_table
from poller.status import parse_status
from poller.storage import plain_days
from poller.storage.directory import save_departments

PORTAL = "acme"
START = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)  # Monday 09:00 in Istanbul (UTC+3)
HOUR = timedelta(hours=1)
YESTERDAY = START - 24 * HOUR


def local(instant: datetime) -> str:
    return (instant + 3 * HOUR).strftime("%Y-%m-%dT%H:%M:%S+03:00")


def answer(
    state: str, start: datetime = START, finish: datetime | None = None, **more: Any
) -> dict[str, Any]:
    return {
        "STATUS": state, "TIME_START": local(start), "TIME_FINISH": local(finish) if finish else None,
        "DURATION": more.pop("duration", "00:00:00"), "TIME_LEAKS": more.pop("leaks", "00:00:00"),
        "ACTIVE": True, "TZ_OFFSET": 10800, **more,
    }  # fmt: skip


def record(record_id: int, user_id: int, start: datetime, end: datetime | None) -> dict[str, Any]:
    """A `timeman.record.list` item."""
    return {
        "id": record_id, "userId": user_id, "startTime": local(start),
        "endTime": local(end) if end else None, "duration": 25200 if end else 0, "breakLength": 1800,
        "state": {"status": "CLOSED" if end else "OPENED"}, "isApproved": True,
    }  # fmt: skip


def write(engine: Engine, *polls: tuple[int, datetime, dict[str, Any]]) -> None:
    rows = [
        storage.SnapshotRow(PORTAL, user_id, when, parse_status(result)) for user_id, when, result in polls
    ]
    storage.save_portal_cycle(engine, None, rows, [])


def cycle(engine: Engine, when: datetime, answers: dict[int, dict[str, Any]]) -> None:
    write(engine, *((user_id, when, result) for user_id, result in answers.items()))


def play(engine: Engine) -> None:
    """Polls of 70 users over two days, each of the first ten a case (see the module)."""
    storage.save_users(engine, PORTAL, [user(user_id) for user_id in range(1, 11)], START)
    save_departments(engine, PORTAL, DEPARTMENTS, START)
    storage.save_records(
        engine,
        PORTAL,
        [
            record(177, 4, START, START + 8 * HOUR),
            record(500, 5, START - HOUR, None),
            record(178, 10, START, START + 8 * HOUR),
        ],
        START,
    )
    closed_yesterday: dict[str, Any] = {"start": YESTERDAY, "finish": YESTERDAY + 8 * HOUR}
    expired: dict[str, Any] = {"start": YESTERDAY, "TIME_FINISH_DEFAULT": local(YESTERDAY + 9 * HOUR)}
    as_recorded = answer(  # the figures of record 178: polls only say when they saw its day
        "CLOSED", finish=START + 8 * HOUR, duration="07:00:00", leaks="00:30:00", ID=178
    )
    cycle(engine, START + HOUR, {
        1: answer("OPENED", ID=101), 2: answer("OPENED"), 3: answer("CLOSED", **closed_yesterday,
        duration="08:00:00"), 4: answer("CLOSED", finish=START + 8 * HOUR, ID=177),
        5: answer("OPENED", ID=500), 6: answer("OPENED"), 7: answer("OPENED"),
        9: answer("EXPIRED", **expired), 10: as_recorded,
    })  # fmt: skip
    cycle(engine, START + 2 * HOUR, {
        1: answer("OPENED", ID=101), 2: answer("PAUSED"), 3: answer("CLOSED", **closed_yesterday,
        duration="08:00:00"), 4: answer("CLOSED", finish=START + 8 * HOUR, ID=177),
        5: answer("OPENED", ID=500), 6: answer("OPENED"), 7: answer("OPENED"),
        9: answer("EXPIRED", **expired), 10: as_recorded,
    })  # fmt: skip
    moved = [user(7, TIME_ZONE="America/Los_Angeles")]  # 06:00 UTC is the evening before there
    storage.save_users(engine, PORTAL, [*(user(u) for u in range(1, 11) if u != 7), *moved], START + 2 * HOUR)
    third = {
        1: answer("OPENED", ID=101), 2: answer("OPENED", leaks="00:20:00"),
        3: answer("CLOSED", **closed_yesterday, duration="07:30:00"),  # a manager shortened it
        4: answer("CLOSED", finish=START + 8 * HOUR, ID=177), 5: answer("OPENED", ID=500),
        7: answer("OPENED"), 9: answer("EXPIRED", **expired), 10: {**as_recorded, "TZ_OFFSET": 14400},
    }  # fmt: skip
    crowd = [  # a spool's two cycles of 60 more users: many rows, each key twice
        (user_id, START + hours * HOUR, answer("OPENED")) for user_id in range(11, 71) for hours in (2.5, 3)
    ]
    write(
        engine,
        *((user_id, START + 3 * HOUR, result) for user_id, result in third.items()),
        (8, START + 2.5 * HOUR, answer("OPENED")),  # two polls of one user in one write (a spool)
        (8, START + 3 * HOUR, answer("OPENED")),
        *crowd,
    )
    cycle(engine, START + 4 * HOUR, {
        1: answer("CLOSED", finish=START + 4 * HOUR, duration="04:00:00", ID=101),
        2: answer("CLOSED", finish=START + 4 * HOUR, duration="03:40:00", leaks="00:20:00"),
        3: answer("CLOSED", **closed_yesterday, duration="07:30:00"),
        4: answer("CLOSED", finish=START + 8 * HOUR, ID=177), 5: answer("OPENED", ID=500),
        6: answer("OPENED"), 7: answer("OPENED"), 8: answer("OPENED"),
        9: answer("OPENED", start=START + 3.5 * HOUR),
    })  # fmt: skip
    cycle(engine, START + 3 * HOUR, {6: answer("OPENED")})  # late: after the poll of 4 h
    write(  # the spool replays the third write
        engine,
        *((user_id, START + 3 * HOUR, result) for user_id, result in third.items()),
        (8, START + 2.5 * HOUR, answer("OPENED")),
        (8, START + 3 * HOUR, answer("OPENED")),
    )
    next_day = START + 24 * HOUR
    cycle(engine, next_day + HOUR, {user_id: answer("OPENED", start=next_day) for user_id in range(1, 10)})


def table_rows(engine: Engine, table: Any, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(table)).mappings()
        found = [{k: v for k, v in row.items() if k not in skip} for row in rows]
    return sorted(found, key=repr)


@contextmanager
def reads_of_days(engine: Engine) -> Iterator[list[str]]:
    """The SELECT statements that read rows of the workdays table while the caller runs (not a
    count: PostgreSQL's write counts the new days for the planner's statistics)."""
    seen: list[str] = []

    def note(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        reading = statement.lstrip().upper().startswith(("SELECT", "WITH")) and "count(*)" not in statement
        if reading and "workdays" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def both_ways(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, play: Callable[[Engine], None]
) -> tuple[Any, Any]:
    """(workdays and revisions after `play` with the plain path, and after `play` again on
    emptied tables with every poll the full way)."""

    def tables() -> Any:
        return table_rows(engine, workdays_table), table_rows(engine, workday_revisions_table, ("id",))

    play(engine)
    plain = tables()
    with engine.begin() as connection:
        for name in ("workday_revisions", "workdays", "snapshots", "workday_records", "users", "departments"):
            connection.exec_driver_sql(f"DELETE FROM {name}")
    with monkeypatch.context() as patch:
        patch.setattr(plain_days, "_plain", lambda *_: [])
        play(engine)
        full = tables()
    return plain, full


def test_the_plain_way_stores_the_table_and_revisions_the_full_way_stores(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, full = both_ways(engine, monkeypatch, play)

    assert plain == full
    days, revisions = plain
    by_user = {(day["user_id"], day["time_start"]): day for day in days}
    assert {(r["user_id"], r["field"], r["old_value"], r["new_value"]) for r in revisions} >= {
        (3, "worked_seconds", "28800", "27000")
    }
    assert by_user[(4, START)]["source"] == "record"  # the polls only said when they saw it
    assert by_user[(5, START - HOUR)]["record_id"] == 500 and (5, START) not in by_user  # the record's start
    assert str(by_user[(7, START)]["work_date"]) == "2026-11-15"  # dated in the new zone
    assert by_user[(6, START)]["last_seen_at"] == START + 4 * HOUR  # the late poll changed nothing
    assert by_user[(1, START)]["worked_seconds"] == 4 * 3600 and by_user[(1, START)]["record_id"] == 101
    assert (by_user[(10, START)]["source"], by_user[(10, START)]["tz_offset"]) == ("record", 10800)
    assert by_user[(70, START)]["last_seen_at"] == START + 3 * HOUR


def test_a_cycle_of_plain_polls_reads_no_day(engine: Engine) -> None:
    storage.save_users(engine, PORTAL, [user(user_id) for user_id in range(1, 21)], START)
    running = {user_id: answer("OPENED", ID=1000 + user_id) for user_id in range(1, 11)}
    closed = {user_id: answer("CLOSED", YESTERDAY, YESTERDAY + 8 * HOUR) for user_id in range(11, 21)}
    cycle(engine, START + HOUR, {**running, **closed})  # new days
    for hours in (2, 3):
        with reads_of_days(engine) as reads:
            cycle(engine, START + hours * HOUR, {**running, **closed})
        assert reads == []
    days = {day["user_id"]: day for day in table_rows(engine, workdays_table)}
    assert days[1]["worked_seconds"] == 3 * 3600 and days[1]["last_seen_at"] == START + 3 * HOUR
    assert days[11]["first_seen_at"] == START + HOUR and days[11]["last_seen_at"] == START + 3 * HOUR

    with reads_of_days(engine) as reads:  # a pause is bounded by its stored day: that is read
        cycle(engine, START + 4 * HOUR, {1: answer("PAUSED", ID=1001)})
    assert reads != []
