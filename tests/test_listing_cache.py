"""What a process keeps of the directory between writes is trusted only under the portal's version.

A write of snapshots takes its users' zones (for work_date) and names (for the workdays) from
what this process read before, as long as the portal's row in directory_versions holds the
version it was read under. Each case changes the directory in a way another process (a
refresh, a replica) or the user would, and checks that the next write dates and names a new
day by the directory as it is now, not as it was kept.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text
from test_directory import DEPARTMENTS, user, user_row

from poller import storage
from poller.models import DirectoryVersion, users_table, workdays_table
from poller.status import parse_status
from poller.storage import listing

PORTAL = "acme"  # test_directory's portal
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LATE = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # the 21st in Istanbul, the 20th in New York


def poll(engine: Engine, user_id: int, start: datetime) -> None:
    """One cycle's write: `user_id` opened a day at `start`, polled a minute later."""
    answer = {
        "STATUS": "OPENED", "TIME_START": start.isoformat(), "TIME_FINISH": None, "DURATION": "00:00:00",
        "TIME_LEAKS": "00:00:00", "ACTIVE": True, "TZ_OFFSET": 0,
    }  # fmt: skip
    row = storage.SnapshotRow(PORTAL, user_id, start + timedelta(minutes=1), parse_status(answer))
    storage.save_portal_cycle(engine, None, [row], [])


def day(engine: Engine, user_id: int, start: datetime) -> tuple[date, str | None, str | None]:
    """The stored day of `user_id` that started at `start`: its work date and names."""
    table = workdays_table.c
    with engine.connect() as connection:
        found = connection.execute(
            select(table.work_date, table.user_name, table.department).where(
                table.user_id == user_id, table.time_start == start
            )
        ).one()
    return found.work_date, found.user_name, found.department


def version(engine: Engine) -> str | None:
    with engine.connect() as connection:
        found = connection.execute(select(DirectoryVersion.version).where(DirectoryVersion.portal == PORTAL))
        return found.scalar_one_or_none()


def test_a_refresh_by_another_engine_is_seen_by_the_next_write(engine: Engine, database_url: str) -> None:
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    storage.save_users(engine, PORTAL, [user(1)], NOW)
    poll(engine, 1, LATE)  # read and kept: Istanbul, "Anna Ivanova1", Accounting
    assert day(engine, 1, LATE) == (date(2026, 11, 21), "Anna Ivanova1", "Accounting")
    kept_under = version(engine)

    other = storage.make_engine(database_url)  # another process's refresh
    renamed = [{**DEPARTMENTS[1], "NAME": "Finance"}]
    storage.save_users(other, PORTAL, [user(1, TIME_ZONE="America/New_York", LAST_NAME="Petrova")], NOW)
    storage.save_departments(other, PORTAL, [DEPARTMENTS[0], *renamed], NOW)
    other.dispose()
    assert version(engine) not in (None, kept_under)

    later = LATE + timedelta(days=1)
    poll(engine, 1, later)
    assert day(engine, 1, later) == (date(2026, 11, 21), "Anna Petrova", "Finance")  # 18:30 in New York


def test_a_user_not_in_the_directory_gets_names_and_zone_once_a_refresh_lists_them(engine: Engine) -> None:
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    storage.save_users(engine, PORTAL, [user(1)], NOW, full=False)
    poll(engine, 2, LATE)  # user 2 is not listed: the start's own offset, no names
    assert day(engine, 2, LATE) == (date(2026, 11, 20), None, None)

    storage.save_users(engine, PORTAL, [user(1), user(2)], NOW)
    later = LATE + timedelta(days=1)
    poll(engine, 2, later)
    assert day(engine, 2, later) == (date(2026, 11, 22), "Anna Ivanova2", "Accounting")


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE users SET time_zone = 'America/New_York', name = 'Olga'",
        "DELETE FROM users",
        "UPDATE departments SET name = 'Finance'",
    ],
)
def test_a_hand_edit_of_the_directory_is_seen_by_the_next_write(engine: Engine, edit: str) -> None:
    """An edit in SQL (or a replica on an older release) changes the version too: the triggers."""
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    with engine.begin() as connection:
        connection.execute(insert(users_table), [user_row(1)])  # by hand: no save_users
    assert version(engine) is not None
    poll(engine, 1, LATE)
    assert day(engine, 1, LATE) == (date(2026, 11, 21), "Anna Ivanova1", "Accounting")
    kept_under = version(engine)

    with engine.begin() as connection:
        connection.execute(text(edit))
    assert version(engine) not in (None, kept_under)
    later = LATE + timedelta(days=1)
    poll(engine, 1, later)
    expected = {
        "DELETE FROM users": (date(2026, 11, 21), None, None),  # unlisted: the start's own date, no names
        "UPDATE departments SET name = 'Finance'": (date(2026, 11, 22), "Anna Ivanova1", "Finance"),
    }.get(edit, (date(2026, 11, 21), "Olga Ivanova1", "Accounting"))
    assert day(engine, 1, later) == expected


def test_a_database_made_anew_at_the_same_path_is_not_taken_for_the_old_one(
    tmp_path: Path, head_sqlite_file: Path
) -> None:
    path = tmp_path / "poller.sqlite3"
    url = f"sqlite:///{path}"
    for zone, name, expected in (
        ("Europe/Istanbul", "Anna", date(2026, 11, 21)),
        ("America/New_York", "Olga", date(2026, 11, 20)),
    ):
        shutil.copyfile(head_sqlite_file, path)  # a fresh database where the old one was
        engine = storage.make_engine(url)
        storage.save_users(engine, PORTAL, [user(1, TIME_ZONE=zone, NAME=name)], NOW)
        poll(engine, 1, LATE)
        assert day(engine, 1, LATE) == (expected, f"{name} Ivanova1", None)
        engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_directory_write_gives_a_new_version(engine: Engine) -> None:
    seen = set()
    storage.save_users(engine, PORTAL, [user(1)], NOW)
    seen.add(version(engine))
    storage.save_users(engine, PORTAL, [user(1)], NOW)  # the same list again, at the same moment
    seen.add(version(engine))
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    seen.add(version(engine))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT portal, changed_at FROM directory_versions")).all()
    assert len(seen) == 3 and None not in seen
    assert [row[0] for row in rows] == [PORTAL]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_many_portals_written_in_turn_are_each_read_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    portals = [f"portal{number}" for number in range(40)]
    for portal in portals:
        storage.save_users(engine, portal, [user(1)], NOW)
    reads: list[str] = []
    read = listing._read
    monkeypatch.setattr(
        listing,
        "_read",
        lambda connection, portal, ids: reads.append(portal) or read(connection, portal, ids),
    )
    for round_ in range(3):
        for portal in portals:
            start = LATE + timedelta(days=round_)
            answer = {"STATUS": "OPENED", "TIME_START": start.isoformat(), "TZ_OFFSET": 0, "ACTIVE": True}
            row = storage.SnapshotRow(portal, 1, start + timedelta(minutes=1), parse_status(answer))
            storage.save_portal_cycle(engine, None, [row], [])
    assert sorted(reads) == sorted(portals)  # the first round read each; the next two read none
