"""Revision 0007 (workday revisions, month closes) keeps the rows a 0006 database holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import JSON, column, insert, select, table, text

from poller import storage
from poller.models import UTCDateTime, workday_records_table, workdays_table
from poller.storage.records import save_records

START = datetime(2026, 11, 13, 7, 0, tzinfo=UTC)
FETCHED = datetime(2026, 11, 14, 9, 0, tzinfo=UTC)


def test_upgrading_a_0006_database_keeps_its_workdays_and_records(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0006")
    stamp = UTCDateTime()
    workdays = table(
        "workdays",
        *(column(name) for name in ("portal", "user_id", "work_date", "tz_offset", "status")),
        *(column(name) for name in ("worked_seconds", "worked_is_estimate", "leaks_seconds")),
        *(column(name) for name in ("pending_approval", "user_name", "department", "source", "record_id")),
        *(column(name, stamp) for name in ("time_start", "time_finish", "first_seen_at", "last_seen_at")),
    )
    records = table(
        "workday_records",
        *(column(name) for name in ("portal", "record_id", "user_id", "duration_seconds", "break_seconds")),
        *(column(name) for name in ("status", "approved", "work_date")),
        *(column(name, stamp) for name in ("start_time", "end_time", "fetched_at")),
        column("raw", JSON()),
    )
    item = {
        "id": 177, "userId": 1, "startTime": "2026-11-13T09:00:00+02:00",
        "endTime": "2026-11-13T18:00:00+02:00", "duration": 30000, "breakLength": 2400,
        "state": {"status": "CLOSED"}, "isApproved": True,
    }  # fmt: skip
    record = {
        "portal": "acme", "record_id": 177, "user_id": 1, "start_time": START,
        "end_time": START + timedelta(hours=9),
        "duration_seconds": 30000, "break_seconds": 2400, "status": "CLOSED", "approved": True,
        "work_date": date(2026, 11, 13), "raw": item, "fetched_at": FETCHED,
    }  # fmt: skip
    day = {
        "portal": "acme", "user_id": 1, "work_date": date(2026, 11, 13), "time_start": START,
        "time_finish": START + timedelta(hours=9), "tz_offset": 7200, "status": "CLOSED",
        "worked_seconds": 30000,
        "worked_is_estimate": False, "leaks_seconds": 2400, "first_seen_at": None, "last_seen_at": None,
        "pending_approval": False, "user_name": "Anna Ivanova", "department": "Sales", "source": "record",
        "record_id": 177,
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(records), record)
        connection.execute(insert(workdays), day)
    storage.upgrade_database(engine)
    with engine.connect() as connection:
        kept_records = [dict(row) for row in connection.execute(select(workday_records_table)).mappings()]
        kept_days = [dict(row) for row in connection.execute(select(workdays_table)).mappings()]
        empty = [
            connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in ("workday_revisions", "month_closes", "closed_workdays", "closed_rows")
        ]
    assert kept_records == [record]
    assert kept_days == [{**day, "corrections": 0, "corrections_after_close": 0}]
    assert empty == [0, 0, 0, 0]
    # The poller goes on from the upgraded rows: a manager's edit becomes revisions and a count.
    edited = {**item, "breakLength": 3000, "duration": 29400}
    save_records(engine, "acme", [edited], FETCHED + timedelta(days=1))
    with engine.connect() as connection:
        fields = connection.execute(text("SELECT source, field FROM workday_revisions ORDER BY id")).all()
        counted = connection.execute(text("SELECT corrections FROM workdays")).scalar_one()
    assert [tuple(row) for row in fields] == [
        ("record", "duration_seconds"),
        ("record", "break_seconds"),
        ("workday", "worked_seconds"),
        ("workday", "leaks_seconds"),
    ]
    assert counted == 1
    engine.dispose()
