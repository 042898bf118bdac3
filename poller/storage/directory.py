"""The directory: users and departments as `user.get` and `department.get` last listed them.

Rows are taken as Bitrix24 sends them and parsed with the status parser's rules (text cleaned
and cut, a value of the wrong type null with a warning). A user missing from a full refresh
is kept, marked inactive: the history still names them. When a name or a first department
changes, the stored workdays take it in the same transaction. Any change of either table also
gives the portal a new directory version (triggers of revision 0011: the token storage.listing
checks before it trusts what a process kept).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from poller.fields import DEPARTMENT_FIELDS, USER_FIELDS, StatusField
from poller.models import departments_table, users_table, workdays_table
from poller.status import parse_fields
from poller.storage.bulk import insert_rows
from poller.storage.failures import database_call
from poller.storage.statements import chunks, one_of, other_columns
from poller.storage.statistics import note_rows_added

logger = logging.getLogger(__name__)

Names = tuple[str | None, str | None]  # user_name, department
_USER_KEY = ("portal", "user_id")
_DEPARTMENT_KEY = ("portal", "department_id")
_USERS_PER_WRITE = 1000  # a refresh of 50,000 users holds one chunk's parsed rows at a time


def display_name(name: str | None, last_name: str | None) -> str | None:
    """ "NAME LAST_NAME" without spaces around it; None when both are empty (as the views say it)."""
    return f"{name or ''} {last_name or ''}".strip(" ") or None


@database_call
def save_users(
    engine: Engine, portal: str, users: Sequence[Mapping[str, Any]], now: datetime, *, full: bool = True
) -> int:
    """Store `user.get` rows of `portal`; return how many were stored.

    With `full` (the whole list, as a refresh fetches it), stored users missing from `users`
    are marked active = false. An empty list marks nobody: it says more about the answer than
    about the portal.
    """
    started = time.perf_counter()
    stored: set[int] = set()
    with engine.begin() as connection:
        before = _name_signatures(connection, portal)
        for chunk in chunks(users, _USERS_PER_WRITE):  # parsed and written a chunk at a time: memory
            rows = _parse_rows(portal, "user", USER_FIELDS, chunk, "user_id")
            if rows:  # one statement per chunk (COPY on PostgreSQL), not one per user
                insert_rows(
                    connection,
                    users_table,
                    [{"portal": portal, **row, "updated_at": now} for row in rows],
                    keys=_USER_KEY,
                    replaced=other_columns(users_table, _USER_KEY),
                )
            stored.update(row["user_id"] for row in rows)
        if stored:
            note_rows_added(connection, "users", len(stored - set(before)))
        missing = set(before) - stored
        if full and stored and missing:
            table = users_table.c
            for gone in chunks(sorted(missing), _USERS_PER_WRITE):  # one statement a chunk, not a user
                connection.execute(
                    update(users_table)
                    .where(
                        table.portal == portal,
                        one_of(connection, table.user_id, gone),
                        table.active.is_not(False),
                    )
                    .values(active=False, updated_at=now)
                )
        elif full and not stored:
            logger.warning("portal %s: an empty user list marks no stored user inactive", portal)
        _rename_changed(connection, portal, before)
    logger.debug("portal %s: stored %d users in %.3f s", portal, len(stored), time.perf_counter() - started)
    return len(stored)


@database_call
def save_departments(
    engine: Engine, portal: str, departments: Sequence[Mapping[str, Any]], now: datetime
) -> int:
    """Store `department.get` rows of `portal` (PARENT or UF_HEAD 0: none); return how many.

    `now` is taken for symmetry with save_users; departments keep no timestamp.
    """
    started = time.perf_counter()
    rows = _parse_rows(portal, "department", DEPARTMENT_FIELDS, departments, "department_id")
    for row in rows:
        row["parent_id"] = row["parent_id"] or None
        row["head_user_id"] = row["head_user_id"] or None
    with engine.begin() as connection:
        before = _name_signatures(connection, portal)
        if rows:
            insert_rows(
                connection,
                departments_table,
                [{"portal": portal, **row} for row in rows],
                keys=_DEPARTMENT_KEY,
                replaced=other_columns(departments_table, _DEPARTMENT_KEY),
            )
        _rename_changed(connection, portal, before)
    logger.debug(
        "portal %s: stored %d departments in %.3f s", portal, len(rows), time.perf_counter() - started
    )
    return len(rows)


@database_call
def get_directory_user_ids(engine: Engine, portal: str, active_only: bool = True) -> list[int]:
    """The ids of the portal's users in the directory, sorted; active ones only unless told.

    A user whose ACTIVE came unreadable counts as active: better polled than missed.
    """
    table = users_table.c
    query = select(table.user_id).where(table.portal == portal).order_by(table.user_id)
    if active_only:
        query = query.where(table.active.is_not(False))
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


@database_call
def get_directory_age(engine: Engine, portal: str) -> datetime | None:
    """When the portal's users were last refreshed; None when they never were."""
    table = users_table.c
    with engine.connect() as connection:
        newest: datetime | None = connection.execute(
            select(func.max(table.updated_at)).where(table.portal == portal)
        ).scalar_one()
    return newest


def names_of(connection: Connection, portal: str, user_ids: Collection[int]) -> dict[int, Names]:
    """user_name and department (the first department's name) of the portal's `user_ids`."""
    users, departments = users_table.c, departments_table.c
    query = select(users.user_id, users.name, users.last_name, users.department_ids).where(
        users.portal == portal
    )
    found: list[Any] = []
    for chunk in chunks(sorted(user_ids), 1000):
        found += connection.execute(query.where(one_of(connection, users.user_id, chunk))).all()
    firsts = {_first(row.department_ids) for row in found} - {None}
    titles = (
        dict(
            connection.execute(
                select(departments.department_id, departments.name).where(
                    departments.portal == portal,
                    one_of(connection, departments.department_id, sorted(firsts)),
                )
            ).all()
        )
        if firsts
        else {}
    )
    return {
        row.user_id: (display_name(row.name, row.last_name), titles.get(_first(row.department_ids)))
        for row in found
    }


def _portal_names(connection: Connection, portal: str) -> Iterator[tuple[int, Names]]:
    """names_of the whole portal, user by user: its few departments first, then the users streamed."""
    users, departments = users_table.c, departments_table.c
    titles = dict(
        connection.execute(
            select(departments.department_id, departments.name).where(departments.portal == portal)
        ).all()
    )
    query = select(users.user_id, users.name, users.last_name, users.department_ids).where(
        users.portal == portal
    )
    for row in connection.execute(query):
        yield row.user_id, (display_name(row.name, row.last_name), titles.get(_first(row.department_ids)))


def _name_signatures(connection: Connection, portal: str) -> dict[int, int]:
    """Each user's names as a hash: what a refresh compares them by, without holding 50,000 names."""
    return {user_id: hash(names) for user_id, names in _portal_names(connection, portal)}


def zones_of(connection: Connection, portal: str, user_ids: Collection[int]) -> dict[int, ZoneInfo]:
    """The time zones the directory gives `user_ids` (TIME_ZONE), where it names a known one."""
    table = users_table.c
    zones: dict[int, ZoneInfo] = {}
    for chunk in chunks(sorted(user_ids), 1000):
        query = select(table.user_id, table.time_zone).where(
            table.portal == portal, one_of(connection, table.user_id, chunk)
        )
        for user_id, name in connection.execute(query):
            zone = zone_named(name)
            if zone is not None:
                zones[user_id] = zone
    return zones


@lru_cache(maxsize=1024)
def zone_named(name: object) -> ZoneInfo | None:
    """The zone of an IANA name; None when empty, unknown or malformed."""
    try:
        return ZoneInfo(name)  # type: ignore[arg-type]
    except (ValueError, TypeError, ZoneInfoNotFoundError):
        return None


def _first(department_ids: object) -> int | None:
    if isinstance(department_ids, list) and department_ids and isinstance(department_ids[0], int):
        return department_ids[0]
    return None


def _rename_changed(connection: Connection, portal: str, before: Mapping[int, int]) -> None:
    """Give the stored workdays of every user whose names changed (by _name_signatures) the new ones."""
    changed = [
        (user_id, names)
        for user_id, names in _portal_names(connection, portal)
        if before.get(user_id) != hash(names)
    ]
    table = workdays_table.c
    statement = (
        update(workdays_table)
        .where(table.portal == portal, table.user_id == bindparam("u"))
        .values(user_name=bindparam("n"), department=bindparam("d"))
    )
    for chunk in chunks(changed, _USERS_PER_WRITE):  # a first refresh changes every user's names
        connection.execute(
            statement, [{"u": user_id, "n": name, "d": department} for user_id, (name, department) in chunk]
        )


def _parse_rows(
    portal: str, what: str, fields: tuple[StatusField, ...], rows: Sequence[Mapping[str, Any]], key: str
) -> list[dict[str, Any]]:
    """Parsed rows with a usable id, the last of each id; the others are skipped with a warning."""
    parsed: dict[int, dict[str, Any]] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            logger.warning("portal %s: a %s row that is not an object skipped", portal, what)
            continue
        values, warnings = parse_fields(fields, row)
        for warning in warnings:
            logger.warning("portal %s %s %s: %s", portal, what, values[key] or "?", warning)
        identity = values[key]
        if not isinstance(identity, int):
            logger.warning("portal %s: a %s row without a valid ID skipped", portal, what)
            continue
        parsed[identity] = values
    return list(parsed.values())
