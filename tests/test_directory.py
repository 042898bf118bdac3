"""The directory: users and departments as the portal lists them, and their names in the views."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from poller import storage, views
from poller.models import departments_table, users_table
from poller.status import parse_status

PORTAL = "acme"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def user(user_id: int, **changes: Any) -> dict[str, Any]:
    """A `user.get` row as Bitrix24 sends it: ID as a string, departments as a list."""
    return {
        "ID": str(user_id), "ACTIVE": True, "NAME": "Anna", "LAST_NAME": f"Ivanova{user_id}",
        "EMAIL": f"anna{user_id}@example.com", "WORK_POSITION": "Accountant", "UF_DEPARTMENT": [3, 1],
        "TIME_ZONE": "Europe/Istanbul", "USER_TYPE": "employee", "PERSONAL_PHOTO": None, **changes,
    }  # fmt: skip


def user_row(user_id: int, **changes: Any) -> dict[str, Any]:
    return {
        "portal": PORTAL, "user_id": user_id, "name": "Anna", "last_name": f"Ivanova{user_id}",
        "email": f"anna{user_id}@example.com", "position": "Accountant", "department_ids": [3, 1],
        "user_type": "employee", "active": True, "time_zone": "Europe/Istanbul", "updated_at": NOW,
        **changes,
    }  # fmt: skip


DEPARTMENTS = [
    {"ID": "1", "NAME": "Emulated Ltd", "SORT": 500, "UF_HEAD": "1"},
    {"ID": "3", "NAME": "Accounting", "SORT": 500, "PARENT": "1", "UF_HEAD": "0"},
]


def stored(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings()
        return [dict(row) for row in rows]


def test_users_are_stored_as_parsed_rows_and_odd_values_stay_with_their_user(engine: Engine) -> None:
    odd = user(
        7, NAME="X" * 300, LAST_NAME="Smith\x00", EMAIL=5, UF_DEPARTMENT="3", ACTIVE="N", TIME_ZONE=None
    )  # fmt: skip
    rows = [user(5), odd, user(0), {"NAME": "no id"}, "not a row"]
    assert storage.save_users(engine, PORTAL, rows, NOW) == 2  # type: ignore[arg-type]
    assert stored(engine, users_table) == [
        user_row(5),
        user_row(7, name="X" * 255, last_name="Smith", email=None, department_ids=None, active=False,
                 time_zone=None),
    ]  # fmt: skip


def test_a_full_refresh_marks_missing_users_inactive_and_keeps_them(engine: Engine) -> None:
    storage.save_users(engine, PORTAL, [user(1), user(2), user(3)], NOW)
    later = NOW + timedelta(days=1)
    storage.save_users(engine, PORTAL, [user(1), user(3)], later)
    assert stored(engine, users_table) == [
        user_row(1, updated_at=later),
        user_row(2, active=False, updated_at=later),
        user_row(3, updated_at=later),
    ]
    storage.save_users(engine, PORTAL, [user(3, NAME="Olga")], later, full=False)
    storage.save_users(engine, PORTAL, [], later + timedelta(days=1))  # an empty answer marks nobody
    assert storage.get_directory_user_ids(engine, PORTAL) == [1, 3]
    assert storage.get_directory_user_ids(engine, PORTAL, active_only=False) == [1, 2, 3]
    assert storage.get_directory_user_ids(engine, "other") == []


def test_the_directory_age_is_the_last_refresh(engine: Engine) -> None:
    assert storage.get_directory_age(engine, PORTAL) is None
    storage.save_users(engine, PORTAL, [user(1)], NOW)
    storage.save_users(engine, "other", [user(1)], NOW + timedelta(hours=1))
    assert storage.get_directory_age(engine, PORTAL) == NOW


def test_departments_are_stored_with_none_for_no_parent_or_head(engine: Engine) -> None:
    assert storage.save_departments(engine, PORTAL, [*DEPARTMENTS, {"ID": "x"}], NOW) == 2
    assert stored(engine, departments_table) == [
        {"portal": PORTAL, "department_id": 1, "name": "Emulated Ltd", "parent_id": None, "head_user_id": 1},
        {"portal": PORTAL, "department_id": 3, "name": "Accounting", "parent_id": 1, "head_user_id": None},
    ]


def poll(engine: Engine, user_id: int, when: datetime) -> None:
    answer = {
        "STATUS": "OPENED", "TIME_START": "2026-11-20T09:00:00+03:00", "TIME_FINISH": None,
        "DURATION": "00:00:00", "TIME_LEAKS": "00:00:00", "ACTIVE": True, "TZ_OFFSET": 10800,
    }  # fmt: skip
    storage.save_portal_cycle(
        engine, None, [storage.SnapshotRow(PORTAL, user_id, when, parse_status(answer))], []
    )


def names(engine: Engine, view: Any) -> list[tuple[object, ...]]:
    rows = storage.get_view_rows(engine, view)
    return [(row["user_id"], row["user_name"], row["department"]) for row in rows]


def test_the_views_name_users_and_their_first_department_and_follow_a_rename(engine: Engine) -> None:
    poll(engine, 1, NOW)
    poll(engine, 2, NOW)
    poll(engine, 3, NOW)
    everyone = (views.latest_status, views.workdays, views.daily_worktime)
    assert all(
        names(engine, view) == [(1, None, None), (2, None, None), (3, None, None)] for view in everyone
    )
    storage.save_departments(engine, PORTAL, DEPARTMENTS, NOW)
    unnamed = user(3, NAME="", LAST_NAME="")
    storage.save_users(
        engine, PORTAL, [user(1), user(2, NAME="  ", LAST_NAME="Lee", UF_DEPARTMENT=[]), unnamed], NOW
    )
    expected = [(1, "Anna Ivanova1", "Accounting"), (2, "Lee", None), (3, None, "Accounting")]
    assert [names(engine, view) for view in everyone] == [expected] * 3
    storage.save_departments(engine, PORTAL, [{**DEPARTMENTS[1], "NAME": "Finance"}], NOW)
    storage.save_users(
        engine, PORTAL, [user(1, LAST_NAME="Petrova"), user(2, NAME="Bo", LAST_NAME="Lee"), user(3)], NOW
    )
    renamed = [(1, "Anna Petrova", "Finance"), (2, "Bo Lee", "Finance"), (3, "Anna Ivanova3", "Finance")]
    assert [names(engine, view) for view in everyone] == [renamed] * 3
    poll(engine, 1, NOW + timedelta(minutes=5))  # a new poll keeps the names
    [first, *_] = storage.get_view_rows(engine, views.workdays)
    assert (first["user_name"], first["department"], first["work_date"]) == (
        "Anna Petrova",
        "Finance",
        date(2026, 11, 20),
    )
