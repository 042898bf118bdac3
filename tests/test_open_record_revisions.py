"""A record stored while its day was open and edited later keeps what it was.

An open record of today changes as its day goes on (end, duration, breaks, status): no
revision then. Its start, approval and work date are corrections whenever they change, and
so is every change once its date is past (a day left open and set right by a manager two
days later). Storage level, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select

from poller.history.canonical import plain_value
from poller.models import workday_records_table, workday_revisions_table, workdays_table
from poller.storage.records import save_records

PORTAL = "acme"
OPEN = {"id": 77, "userId": 5, "startTime": "2026-11-10T09:00:00+01:00", "endTime": None,
        "duration": 0, "breakLength": 0, "state": {"status": "OPENED"}, "isApproved": False}  # fmt: skip
START = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
STORED_AT = datetime(2026, 11, 10, 11, 0, tzinfo=UTC)  # 12:00 in Berlin, the same day
COLUMNS = [c.name for c in workday_revisions_table.columns if c.name != "id"]


def revisions(engine: Engine) -> list[dict[str, Any]]:
    table = workday_revisions_table
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings()
        return [{name: row[name] for name in COLUMNS} for row in rows]


def stored_start(engine: Engine) -> datetime:
    with engine.connect() as connection:
        return connection.execute(select(workday_records_table.c.start_time)).scalar_one()


def corrections(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(select(workdays_table.c.corrections)).scalars())


def revision(name: str, old: Any, new: Any, changed_at: datetime) -> dict[str, Any]:
    return {
        "portal": PORTAL,
        "user_id": 5,
        "work_date": date(2026, 11, 10),
        "time_start": START,
        "record_id": 77,
        "source": "record",
        "field": name,
        "old_value": plain_value(old),
        "new_value": plain_value(new),
        "old_seen_at": STORED_AT,
        "changed_at": changed_at,
        "after_close": False,
    }


def test_a_day_left_open_and_set_right_two_days_later_keeps_every_change(engine: Engine) -> None:
    save_records(engine, PORTAL, [OPEN], STORED_AT)
    edited = {**OPEN, "startTime": "2026-11-10T08:00:00+01:00", "endTime": "2026-11-10T17:00:00+01:00",
              "duration": 30600, "breakLength": 1800, "state": {"status": "CLOSED"},
              "isApproved": True}  # fmt: skip
    later = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)
    save_records(engine, PORTAL, [edited], later)
    assert stored_start(engine) == datetime(2026, 11, 10, 7, 0, tzinfo=UTC)
    assert revisions(engine) == [
        revision("start_time", START, datetime(2026, 11, 10, 7, 0, tzinfo=UTC), later),
        revision("end_time", None, datetime(2026, 11, 10, 16, 0, tzinfo=UTC), later),
        revision("duration_seconds", 0, 30600, later),
        revision("break_seconds", 0, 1800, later),
        revision("status", "OPENED", "CLOSED", later),
        revision("approved", False, True, later),
    ]  # fmt: skip
    assert corrections(engine) == [1]


def test_an_open_day_of_today_going_on_leaves_none_but_its_start_and_approval_are_kept(
    engine: Engine,
) -> None:
    save_records(engine, PORTAL, [OPEN], STORED_AT)
    paused = {**OPEN, "startTime": "2026-11-10T08:30:00+01:00", "duration": 16200, "breakLength": 1800,
              "state": {"status": "PAUSED"}, "isApproved": True}  # fmt: skip
    afternoon = datetime(2026, 11, 10, 13, 0, tzinfo=UTC)
    save_records(engine, PORTAL, [paused], afternoon)
    new_start = datetime(2026, 11, 10, 7, 30, tzinfo=UTC)
    assert revisions(engine) == [
        revision("start_time", START, new_start, afternoon),
        revision("approved", False, True, afternoon),
    ]
    closed = {**paused, "endTime": "2026-11-10T17:30:00+01:00", "duration": 30600,
              "state": {"status": "CLOSED"}}  # fmt: skip
    save_records(engine, PORTAL, [closed], datetime(2026, 11, 10, 16, 30, tzinfo=UTC))
    assert len(revisions(engine)) == 2  # closing its own day is no correction
