"""workday_records: stored once, changed in place, and winning over the polls in workdays."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from poller import storage
from poller.emulator import SimClock, World
from poller.models import workday_records_table, workdays_table
from poller.status import parse_status

PORTAL = "acme"
START = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)  # Monday 09:00 at UTC+3
FETCHED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def item(record_id: int = 177, **changes: Any) -> dict[str, Any]:
    """A `timeman.record.list` item as the portal sends it (every field selected)."""
    return {
        "id": record_id, "userId": 1, "startTime": "2026-11-16T09:00:00+03:00",
        "endTime": "2026-11-16T18:00:00+03:00", "duration": 30000, "breakLength": 2400,
        "state": {"status": "CLOSED"}, "isApproved": True, **changes,
    }  # fmt: skip


def record_row(record_id: int = 177, **changes: Any) -> dict[str, Any]:
    """The workday_records row `item(record_id)` is stored as."""
    return {
        "portal": PORTAL, "record_id": record_id, "user_id": 1, "start_time": START,
        "end_time": START + timedelta(hours=9), "duration_seconds": 30000, "break_seconds": 2400,
        "status": "CLOSED", "approved": True, "work_date": date(2026, 11, 16),
        "raw": item(record_id), "fetched_at": FETCHED, **changes,
    }  # fmt: skip


def stored(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings()
        return [dict(row) for row in rows]


def poll(engine: Engine, when: datetime, state: str, **result: Any) -> None:
    answer = {
        "STATUS": state, "TIME_START": "2026-11-16T09:00:00+03:00", "DURATION": "00:00:00",
        "TIME_LEAKS": "00:00:00", "ACTIVE": True, "TZ_OFFSET": 10800, "ID": 177, **result,
    }  # fmt: skip
    storage.save_portal_cycle(engine, None, [storage.SnapshotRow(PORTAL, 1, when, parse_status(answer))], [])


def test_records_are_stored_whole_and_saving_them_again_adds_nothing(engine: Engine) -> None:
    second = item(
        178, startTime="2026-11-17T09:05:00+03:00", endTime=None, duration=0, state={"status": "OPENED"}
    )
    assert storage.save_records(engine, PORTAL, [item(), second], FETCHED) == storage.RecordsSaved(2, 0, 0)
    expected = [
        record_row(),
        record_row(
            178, start_time=START + timedelta(days=1, minutes=5), end_time=None, duration_seconds=0,
            status="OPENED", work_date=date(2026, 11, 17), raw=second,
        ),
    ]  # fmt: skip
    assert stored(engine, workday_records_table) == expected
    days = stored(engine, workdays_table)
    later = FETCHED + timedelta(hours=1)
    assert storage.save_records(engine, PORTAL, [item(), second], later) == storage.RecordsSaved(0, 0, 2)
    assert stored(engine, workday_records_table) == expected
    assert stored(engine, workdays_table) == days and len(days) == 2


def test_a_changed_record_is_updated_in_place(engine: Engine) -> None:
    storage.save_records(engine, PORTAL, [item(), item(178, userId=2)], FETCHED)
    later = FETCHED + timedelta(days=1)
    changed = item(duration=29000, isApproved=False)
    saved = storage.save_records(engine, PORTAL, [changed, item(178, userId=2)], later)
    assert saved == storage.RecordsSaved(inserted=0, updated=1, unchanged=1)
    [first, _] = stored(engine, workday_records_table)
    assert first == record_row(duration_seconds=29000, approved=False, raw=changed, fetched_at=later)
    [day, _] = stored(engine, workdays_table)
    assert (day["worked_seconds"], day["pending_approval"]) == (29000, True)


def test_each_save_logs_one_debug_line_with_its_counts(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="poller.storage")
    storage.save_users(engine, PORTAL, [{"ID": "1", "NAME": "Ann"}], FETCHED)
    storage.save_records(engine, PORTAL, [item(), item(179, id="x")], FETCHED)
    lines = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert [re.sub(r"\d+\.\d{3} s", "T s", line) for line in lines] == [
        "portal acme: stored 1 users in T s",
        "portal acme: stored 1 records (1 new, 0 changed, 0 unchanged, 1 skipped) in T s",
    ]


def test_odd_values_stay_with_their_record_and_unusable_items_are_skipped(engine: Engine) -> None:
    odd = item(duration="8h", breakLength=-5, state={"status": "S" * 40}, isApproved="Y", endTime="soon")
    unusable = [
        item(179, id="x"),
        item(180, userId=None),
        item(181, startTime="yesterday"),
        ["not", "an", "item"],
    ]
    saved = storage.save_records(engine, PORTAL, [odd, *unusable], FETCHED)  # type: ignore[list-item]
    assert saved == storage.RecordsSaved(inserted=1, updated=0, unchanged=0, skipped=4)
    assert stored(engine, workday_records_table) == [
        record_row(
            end_time=None, duration_seconds=None, break_seconds=None, status="S" * 32, approved=True, raw=odd
        )
    ]


def test_work_date_is_the_start_date_in_the_records_own_offset(engine: Engine) -> None:
    late_start = item(startTime="2026-11-16T23:30:00-05:00", endTime="2026-11-17T06:30:00-05:00")
    storage.save_records(engine, PORTAL, [late_start], FETCHED)
    [row] = stored(engine, workday_records_table)
    assert (row["start_time"], row["work_date"]) == (
        datetime(2026, 11, 17, 4, 30, tzinfo=UTC),
        date(2026, 11, 16),
    )


def test_a_closed_record_wins_over_the_polls(engine: Engine) -> None:
    poll(engine, START + timedelta(hours=1), "OPENED")
    poll(engine, START + timedelta(hours=3), "PAUSED")
    storage.save_records(engine, PORTAL, [item()], FETCHED)
    poll(
        engine,
        START + timedelta(hours=10),
        "CLOSED",
        TIME_FINISH="2026-11-16T18:00:00+03:00",
        DURATION="08:00:00",
    )
    assert stored(engine, workdays_table) == [
        {
            "portal": PORTAL, "user_id": 1, "work_date": date(2026, 11, 16), "time_start": START,
            "time_finish": START + timedelta(hours=9), "tz_offset": 10800, "status": "CLOSED",
            "worked_seconds": 30000,
            "worked_is_estimate": False, "leaks_seconds": 2400, "first_seen_at": START + timedelta(hours=1),
            "last_seen_at": START + timedelta(hours=10), "pending_approval": False, "user_name": None,
            "department": None, "source": "record", "record_id": 177, "corrections": 0,
                "corrections_after_close": 0,
        }
    ]  # fmt: skip


def test_a_record_of_a_day_never_polled_makes_the_day(engine: Engine) -> None:
    storage.save_records(engine, PORTAL, [item()], FETCHED)
    [day] = stored(engine, workdays_table)
    assert (day["source"], day["worked_seconds"], day["first_seen_at"], day["last_seen_at"]) == (
        "record",
        30000,
        None,
        None,
    )


def test_an_open_record_leaves_the_polls_estimate_and_alone_is_estimated_to_its_fetch(engine: Engine) -> None:
    open_item = item(endTime=None, duration=0, breakLength=0, state={"status": "OPENED"})
    storage.save_records(engine, PORTAL, [open_item], START + timedelta(hours=2))
    [alone] = stored(engine, workdays_table)
    assert (alone["source"], alone["worked_seconds"], alone["worked_is_estimate"]) == ("record", 7200, True)
    poll(engine, START + timedelta(hours=3), "OPENED")
    storage.save_records(engine, PORTAL, [open_item], START + timedelta(hours=4))
    [polled] = stored(engine, workdays_table)
    assert (polled["source"], polled["worked_seconds"], polled["record_id"]) == ("polls", 3 * 3600, 177)
    expired = item(178, startTime="2026-11-10T09:00:00+03:00", endTime=None, state={"status": "EXPIRED"})
    storage.save_records(engine, PORTAL, [expired], FETCHED)
    [left_open, _] = stored(engine, workdays_table)  # the earlier day first
    assert (left_open["status"], left_open["worked_seconds"], left_open["worked_is_estimate"]) == (
        "EXPIRED",
        None,
        True,
    )  # records carry no suggested end: how long is unknown


def test_a_record_whose_start_moved_leaves_no_day_behind(engine: Engine) -> None:
    storage.save_records(engine, PORTAL, [item()], FETCHED)
    moved = item(startTime="2026-11-16T08:30:00+03:00")
    assert storage.save_records(engine, PORTAL, [moved], FETCHED) == storage.RecordsSaved(0, 1, 0)
    [day] = stored(engine, workdays_table)
    assert (day["time_start"], day["source"]) == (START - timedelta(minutes=30), "record")


def test_a_record_whose_start_was_edited_joins_the_day_polled_with_its_id(engine: Engine) -> None:
    """A manager moved the start to 08:30; the polls (TIME_START 09:00, ID 177) saw the same day."""
    poll(engine, START + timedelta(hours=1), "OPENED")
    poll(engine, START + timedelta(hours=2), "OPENED")
    edited = item(startTime="2026-11-16T08:30:00+03:00")
    storage.save_records(engine, PORTAL, [edited], FETCHED)
    day = {
        "portal": PORTAL, "user_id": 1, "work_date": date(2026, 11, 16),
        "time_start": START - timedelta(minutes=30), "time_finish": START + timedelta(hours=9),
        "tz_offset": 10800, "status": "CLOSED", "worked_seconds": 30000, "worked_is_estimate": False,
        "leaks_seconds": 2400, "first_seen_at": START + timedelta(hours=1),
        "last_seen_at": START + timedelta(hours=2), "pending_approval": False, "user_name": None,
        "department": None, "source": "record", "record_id": 177, "corrections": 0,
        "corrections_after_close": 0,
    }  # fmt: skip
    assert stored(engine, workdays_table) == [day]
    poll(engine, START + timedelta(hours=3), "OPENED")  # the same ID, the original TIME_START
    assert stored(engine, workdays_table) == [{**day, "last_seen_at": START + timedelta(hours=3)}]
    poll(engine, START + timedelta(minutes=90), "OPENED")  # an answer out of order: the day is rebuilt
    assert stored(engine, workdays_table) == [{**day, "last_seen_at": START + timedelta(hours=3)}]
    storage.save_records(engine, PORTAL, [edited, item()], FETCHED)  # moved back to 09:00
    assert stored(engine, workdays_table) == [
        {**day, "time_start": START, "last_seen_at": START + timedelta(hours=3), "corrections": 1}
    ]


def test_a_poll_with_the_id_of_a_record_that_came_first_joins_its_day(engine: Engine) -> None:
    storage.save_records(engine, PORTAL, [item(startTime="2026-11-16T08:30:00+03:00")], FETCHED)
    poll(engine, START + timedelta(hours=1), "OPENED")
    [day] = stored(engine, workdays_table)
    assert (day["time_start"], day["source"], day["worked_seconds"], day["first_seen_at"]) == (
        START - timedelta(minutes=30),
        "record",
        30000,
        START + timedelta(hours=1),
    )


def test_a_closed_day_opened_again_goes_back_to_the_polls(engine: Engine) -> None:
    poll(engine, START + timedelta(hours=2), "OPENED")
    storage.save_records(engine, PORTAL, [item()], FETCHED)
    reopened = item(endTime=None, duration=0, state={"status": "OPENED"})
    storage.save_records(engine, PORTAL, [reopened], FETCHED + timedelta(hours=1))
    [day] = stored(engine, workdays_table)
    assert (day["source"], day["status"], day["worked_seconds"]) == ("polls", "OPENED", 7200)


def test_backfill_progress_names_the_finished_users_of_exactly_one_range(engine: Engine) -> None:
    month = (date(2026, 10, 1), date(2026, 10, 31))
    for user_id in (1, 5, 5):
        storage.save_backfill_done(engine, PORTAL, user_id, *month, FETCHED)
    storage.save_backfill_done(engine, "other", 7, *month, FETCHED)
    assert storage.get_backfill_done(engine, PORTAL, *month) == {1, 5}
    assert storage.get_backfill_done(engine, PORTAL, date(2026, 10, 1), date(2026, 10, 30)) == set()


def test_a_backfilled_month_equals_the_worlds_records(engine: Engine) -> None:
    """Every 5th user's records come in UTC (older builds): workday_records keeps the date in that
    offset, as sent; workdays dates the day in the user's own zone, from the directory."""
    world = World(20, SimClock(datetime(2026, 12, 1, tzinfo=UTC), speed=0))
    storage.save_users(engine, PORTAL, [world.user(user) for user in range(1, 21)], FETCHED)
    records = [
        record
        for user in range(1, 21)
        for record in world.records(user, date(2026, 11, 1), date(2026, 11, 30), at=FETCHED)
    ]
    items = [record.item() for record in records]
    own_dates = [datetime.fromisoformat(entry["startTime"]).date() for entry in items]
    saved = storage.save_records(engine, PORTAL, items, FETCHED)
    assert saved == storage.RecordsSaved(len(records), 0, 0) and len(records) > 200
    expected = {
        r.id: (r.user_id, r.start_time, r.end_time, r.duration, r.break_length, r.status, r.approved, own)
        for r, own in zip(records, own_dates, strict=True)
    }
    columns = ("user_id", "start_time", "end_time", "duration_seconds", "break_seconds", "status", "approved")
    rows = stored(engine, workday_records_table)
    assert {row["record_id"]: (*(row[c] for c in columns), row["work_date"]) for row in rows} == expected
    days = {(row["user_id"], row["time_start"]): row for row in stored(engine, workdays_table)}
    assert len(days) == len(records)
    for record in records:
        day = days[(record.user_id, record.start_time)]
        assert (day["source"], day["work_date"], day["record_id"]) == ("record", record.work_date, record.id)
        assert day["tz_offset"] == world.tz_offset(record.user_id)
        if record.end_time is not None:
            assert (day["worked_seconds"], day["leaks_seconds"]) == (record.duration, record.break_length)
    assert any(own != record.work_date for record, own in zip(records, own_dates, strict=True))
