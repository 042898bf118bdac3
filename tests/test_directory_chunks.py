"""A directory refresh larger than one write chunk (storage.directory writes 1,000 users at a
time, so a 50,000-user refresh stays small) stores what one write of the whole list would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from test_directory import DEPARTMENTS, PORTAL, user

from poller import storage
from poller.models import users_table, workdays_table
from poller.status import parse_status

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
MANY = 2_500  # three chunks


def day_of(user_id: int) -> storage.SnapshotRow:
    answer = {"STATUS": "OPENED", "TIME_START": "2026-11-20T09:00:00+03:00", "TZ_OFFSET": 10800}
    return storage.SnapshotRow(PORTAL, user_id, NOW, parse_status(answer))


def test_a_refresh_of_many_users_keeps_the_last_row_of_an_id_and_marks_the_missing_inactive(
    engine: Engine,
) -> None:
    storage.save_users(engine, PORTAL, [user(MANY + 1)], NOW)  # gone from the next refresh
    rows = [user(user_id) for user_id in range(1, MANY + 1)]
    rows.append(user(5, NAME="Later"))  # the same ID again, in another chunk: the last one wins

    stored = storage.save_users(engine, PORTAL, rows, NOW + timedelta(hours=1))

    with engine.connect() as connection:
        table = users_table.c
        found = dict(connection.execute(select(table.user_id, table.active)).all())
        named = connection.execute(select(table.name).where(table.user_id == 5)).scalar_one()
    assert (stored, len(found), named) == (MANY, MANY + 1, "Later")
    assert [user_id for user_id, active in found.items() if not active] == [MANY + 1]


def test_a_refresh_of_many_users_renames_the_days_of_users_in_every_chunk(engine: Engine) -> None:
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    storage.save_users(engine, PORTAL, [user(user_id) for user_id in range(1, MANY + 1)], NOW)
    storage.save_portal_cycle(engine, None, [day_of(1), day_of(1500), day_of(MANY)], [])

    renamed = [user(user_id, LAST_NAME=f"Petrova{user_id}") for user_id in range(1, MANY + 1)]
    storage.save_users(engine, PORTAL, renamed, NOW + timedelta(hours=1))

    with engine.connect() as connection:
        table = workdays_table.c
        names = connection.execute(select(table.user_id, table.user_name).order_by(table.user_id)).all()
    assert [tuple(row) for row in names] == [
        (1, "Anna Petrova1"),
        (1500, "Anna Petrova1500"),
        (MANY, f"Anna Petrova{MANY}"),
    ]
