"""A day's user names: every write of the day gives it the directory's current names.

A directory refresh may commit while a cycle's transaction is open (PostgreSQL lets both
run): the cycle stores a user's first day without names, and the refresh's renaming ran
before that day was visible to it. The next poll of the day must repair the names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from test_directory import DEPARTMENTS, user, user_row

from poller import storage
from poller.models import users_table, workdays_table
from poller.status import parse_status
from poller.storage.snapshots import write_snapshots

PORTAL = "acme"  # test_directory's portal
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def snapshot(when: datetime, duration: str) -> storage.SnapshotRow:
    return storage.SnapshotRow(PORTAL, 1, when, parse_status({
        "STATUS": "OPENED", "TIME_START": "2026-11-20T09:00:00+03:00", "TIME_FINISH": None,
        "DURATION": duration, "TIME_LEAKS": "00:00:00", "ACTIVE": True, "TZ_OFFSET": 10800,
    }))  # fmt: skip


def names(engine: Engine) -> list[tuple[int, str | None, str | None]]:
    table = workdays_table.c
    with engine.connect() as connection:
        query = select(table.user_id, table.user_name, table.department)
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def test_a_day_first_stored_without_names_takes_them_at_the_next_poll(engine: Engine) -> None:
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    cycle = engine.connect()
    transaction = cycle.begin()
    write_snapshots(cycle, [snapshot(NOW, "00:00:00")], "all")  # user 1 not in the directory yet
    if engine.dialect.name == "postgresql":
        storage.save_users(engine, PORTAL, [user(1)], NOW)  # a refresh commits meanwhile
        transaction.commit()
    else:  # one writer at a time: the state the race leaves, made directly
        transaction.commit()
        with engine.begin() as connection:
            connection.execute(insert(users_table), [user_row(1)])
    cycle.close()
    assert names(engine) == [(1, None, None)]

    storage.save_portal_cycle(engine, None, [snapshot(NOW + timedelta(minutes=5), "00:05:00")], [])

    assert names(engine) == [(1, "Anna Ivanova1", "Accounting")]


def test_a_user_gone_from_the_directory_keeps_the_names_its_days_have(engine: Engine) -> None:
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    storage.save_users(engine, PORTAL, [user(1)], NOW)
    storage.save_portal_cycle(engine, None, [snapshot(NOW, "00:00:00")], [])
    with engine.begin() as connection:
        connection.execute(delete(users_table))

    storage.save_portal_cycle(engine, None, [snapshot(NOW + timedelta(minutes=5), "00:05:00")], [])

    assert names(engine) == [(1, "Anna Ivanova1", "Accounting")]
