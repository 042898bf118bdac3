"""storage.bulk writes the values SQLAlchemy would have written, and refuses what it would refuse."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import DataError, StatementError

from poller import storage
from poller.models import snapshots_table, workdays_table
from poller.status import parse_status
from poller.storage import copy_in
from poller.storage.bulk import insert_rows

SNAPSHOT_COLUMNS = [c.name for c in snapshots_table.c if c.name != "id"]
WORKDAY_KEY = ("portal", "user_id", "time_start")


def snapshot(user_id: int, **values: Any) -> dict[str, Any]:
    polled = datetime(2026, 11, 16, 9, 30, 0, 123456, tzinfo=UTC)
    row: dict[str, Any] = dict.fromkeys(SNAPSHOT_COLUMNS)
    row.update(
        portal="p",
        user_id=user_id,
        polled_at=polled,
        status="PAUSED",
        time_start=datetime(2026, 11, 16, 11, 0, tzinfo=timezone(timedelta(hours=3))),  # 08:00 UTC
        work_date=date(2026, 11, 16),
        duration_seconds=0,
        active=False,
        lat_open=53.548841,
        ip_open="10.0.0.1",
        raw={"STATUS": "PAUSED", "LAT": 53.5, "nested": {"a": [1, None]}, "text": "é"},
        last_seen_at=polled,
        seen_count=1,
    )
    row.update(values)
    return row


def stored_text(engine: Engine, user_id: int) -> tuple[Any, ...]:
    """Every column but user_id of the snapshot of `user_id` as the database holds it, as text."""
    columns = ", ".join(f"CAST({name} AS TEXT)" for name in SNAPSHOT_COLUMNS if name != "user_id")
    with engine.connect() as connection:
        return tuple(
            connection.execute(text(f"SELECT {columns} FROM snapshots WHERE user_id = {user_id}")).one()
        )


def test_rows_are_stored_exactly_as_sqlalchemy_stores_them(engine: Engine) -> None:
    with engine.begin() as connection:
        integral = {"status": None, "raw": [1, "x"], "lat_open": 0, "lon_open": -(2**70)}  # ints in REALs
        connection.execute(insert(snapshots_table), [snapshot(1), snapshot(3, **integral)])
        insert_rows(connection, snapshots_table, [snapshot(2), snapshot(4, **integral)])

    assert stored_text(engine, 2) == stored_text(engine, 1)
    assert stored_text(engine, 4) == stored_text(engine, 3)
    with engine.connect() as connection:
        read = (
            connection.execute(select(snapshots_table).where(snapshots_table.c.user_id == 2)).mappings().one()
        )
    assert read["time_start"] == datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    assert read["raw"] == {"STATUS": "PAUSED", "LAT": 53.5, "nested": {"a": [1, None]}, "text": "é"}


def test_a_stored_key_is_skipped_or_has_only_the_replaced_columns_changed(engine: Engine) -> None:
    start = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    day = {
        "portal": "p",
        "user_id": 1,
        "time_start": start,
        "work_date": date(2026, 11, 16),
        "status": "OPENED",
        "worked_is_estimate": True,
        "pending_approval": False,
        "source": "polls",
        "user_name": "Ann",
    }
    with engine.begin() as connection:
        insert_rows(connection, snapshots_table, [snapshot(1)], keys=("portal", "user_id", "polled_at"))
        insert_rows(
            connection,
            snapshots_table,
            [snapshot(1, status="CLOSED")],
            keys=("portal", "user_id", "polled_at"),
        )
        insert_rows(connection, workdays_table, [day], keys=WORKDAY_KEY, replaced=("status",))
        changed = {**day, "status": "CLOSED", "user_name": "Bob"}
        insert_rows(connection, workdays_table, [changed], keys=WORKDAY_KEY, replaced=("status",))

    with engine.connect() as connection:
        statuses = connection.execute(select(snapshots_table.c.status)).scalars().all()
        days = connection.execute(select(workdays_table)).mappings().all()
    assert statuses == ["PAUSED"]
    assert [(d["status"], d["user_name"], d["corrections"], d["time_start"]) for d in days] == [
        ("CLOSED", "Ann", 0, start)
    ]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("polled_at", datetime(2026, 11, 16, 9, 30), ValueError),
        ("active", "yes", TypeError),
        (
            "lat_open",
            "north",
            {"sqlite": ValueError, "postgresql": psycopg.DataError},
        ),  # float(), or the server
    ],
)
def test_a_value_no_converter_takes_is_refused_for_data_as_sqlalchemy_refuses_it(
    engine: Engine, column: str, value: Any, reason: type[Exception] | dict[str, type[Exception]]
) -> None:
    if isinstance(reason, dict):
        reason = reason[engine.dialect.name]
    raised = []
    for write in (
        lambda connection, row: connection.execute(insert(snapshots_table), [row]),
        lambda connection, row: insert_rows(connection, snapshots_table, [row]),
    ):
        with pytest.raises(StatementError) as caught, engine.begin() as connection:
            write(connection, snapshot(1, **{column: value}))
        assert isinstance(caught.value.orig, reason)
        assert storage.is_refused_for_data(caught.value)
        raised.append(str(caught.value).splitlines()[0])
    assert raised[0] == raised[1]


def test_a_value_no_converter_takes_in_a_cycle_costs_only_its_user(engine: Engine) -> None:
    opened = {"STATUS": "OPENED", "TIME_START": "2026-11-16T09:00:00+03:00", "TZ_OFFSET": 10800}
    polled = datetime(2026, 11, 16, 7, 30, tzinfo=UTC)
    rows = [storage.SnapshotRow("acme", user_id, polled, parse_status(opened)) for user_id in range(1, 9)]
    bad = rows[4].parsed
    rows[4] = replace(rows[4], parsed=replace(bad, values={**bad.values, "active": "yes"}))

    saved = storage.save_portal_cycle(engine, None, rows, [])

    assert (saved.snapshots, [row.user_id for row in saved.refused]) == (7, [5])
    assert "Not a boolean value" in saved.refused[0].message


def test_many_rows_are_stored_as_sqlalchemy_stores_them_and_a_stored_key_is_skipped_or_replaced(
    engine: Engine,
) -> None:
    many = copy_in.MIN_ROWS + 10  # PostgreSQL: through COPY and the staging table
    start = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    days = [
        {
            "portal": "p",
            "user_id": user_id,
            "time_start": start,
            "status": "OPENED",
            "worked_is_estimate": True,
            "pending_approval": False,
            "source": "polls",
            "user_name": f"user {user_id}",
        }
        for user_id in range(many)
    ]
    with engine.begin() as connection:
        connection.execute(insert(snapshots_table), [snapshot(user_id) for user_id in range(many)])
        insert_rows(connection, snapshots_table, [snapshot(user_id) for user_id in range(many, 2 * many)])
        insert_rows(connection, workdays_table, days, keys=WORKDAY_KEY, replaced=("status",))
    with engine.begin() as connection:  # again, in a transaction of its own: the stage is empty
        again = [snapshot(user_id, status="CLOSED") for user_id in range(2 * many)]
        insert_rows(connection, snapshots_table, again, keys=("portal", "user_id", "polled_at"))
        closed = [{**day, "status": "CLOSED", "user_name": "renamed"} for day in days]
        insert_rows(connection, workdays_table, closed[:-1], keys=WORKDAY_KEY, replaced=("status",))

    for user_id in range(many):
        assert stored_text(engine, many + user_id) == stored_text(engine, user_id)
    with engine.connect() as connection:
        statuses = connection.execute(select(snapshots_table.c.status).distinct()).scalars().all()
        stored = connection.execute(
            select(workdays_table.c.user_id, workdays_table.c.status, workdays_table.c.user_name)
        ).all()
    assert statuses == ["PAUSED"]
    assert sorted(stored) == [(u, "CLOSED", f"user {u}") for u in range(many - 1)] + [
        (many - 1, "OPENED", f"user {many - 1}")
    ]


def test_a_refused_value_among_many_rows_is_the_database_error_sqlalchemy_raises(engine: Engine) -> None:
    rows = [snapshot(user_id) for user_id in range(copy_in.MIN_ROWS + 10)]
    rows[7]["tz_offset"] = 2**70  # past the integer column (and past SQLite's 64 bits)

    refused = DataError if engine.dialect.name == "postgresql" else OverflowError
    with pytest.raises(refused), engine.begin() as connection:
        insert_rows(connection, snapshots_table, rows, keys=("portal", "user_id", "polled_at"))

    with engine.connect() as connection:
        assert connection.execute(select(snapshots_table.c.id)).all() == []


def test_a_refused_row_among_a_cycles_many_costs_only_its_user(engine: Engine) -> None:
    opened = {"STATUS": "OPENED", "TIME_START": "2026-11-16T09:00:00+03:00", "TZ_OFFSET": 10800}
    polled = datetime(2026, 11, 16, 7, 30, tzinfo=UTC)
    rows = [storage.SnapshotRow("acme", user_id, polled, parse_status(opened)) for user_id in range(1, 81)]
    bad = rows[40].parsed
    rows[40] = replace(rows[40], parsed=replace(bad, values={**bad.values, "duration_seconds": 2**70}))

    saved = storage.save_portal_cycle(engine, None, rows, [])

    assert (saved.snapshots, [row.user_id for row in saved.refused]) == (79, [41])
    with engine.connect() as connection:
        users = connection.execute(select(snapshots_table.c.user_id).order_by(snapshots_table.c.user_id))
        days = connection.execute(select(workdays_table.c.user_id).order_by(workdays_table.c.user_id))
        assert list(users.scalars()) == [u for u in range(1, 81) if u != 41]
        assert list(days.scalars()) == [u for u in range(1, 81) if u != 41]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_value_copy_refuses_is_described_without_the_value(engine: Engine) -> None:
    """PostgreSQL's CONTEXT of a refused COPY line quotes the value (a user's data): not in the line."""
    from poller.models import users_table

    rows = [
        {"portal": "p", "user_id": user_id, "name": "Anna", "updated_at": datetime(2026, 11, 16, tzinfo=UTC)}
        for user_id in range(1, copy_in.MIN_ROWS + 11)
    ]
    rows[30]["name"] = "Secretive" * 40  # past the column's 255 characters
    with pytest.raises(DataError) as caught, engine.begin() as connection:
        insert_rows(connection, users_table, rows)
    assert "CONTEXT" in str(caught.value.orig)  # what the server said does quote it
    described = storage.describe_db_error(caught.value)
    assert "value too long" in described and "Secretive" not in described
