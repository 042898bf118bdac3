"""The directory as one write of snapshots needs it: each user's zone and names, in one read.

A write part needs two facts of its users: the time zone its days are dated in
(storage.local_dates) and the names its workdays carry (storage.workdays). directory.zones_of
and directory.names_of would read the users table twice and the departments once, through
SQLAlchemy's per-row processing (the department list as JSON, decoded for its first item). Here
one statement at the driver's level returns user_id, time zone, the display name (as
directory.display_name makes it, in SQL) and the first department's title (the department
list's first item is read by the database's own JSON functions), with the users' ids as one
parameter (a JSON array on SQLite, an array on PostgreSQL), so the text is the same whatever the
count.

A process keeps what it read, per database and portal, under the portal's directory version
(directory_versions: triggers replace its token in the transaction of any change of users or
departments, whoever makes it): a write reads that one row, and reads the directory only for
the users it has not kept under that version. A portal without a version row (a directory never
stored) is read every time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from poller.storage.directory import Names, zone_named

# The first department id where the list's first item is an integer (the parser keeps only ints).
_FIRST = {
    "sqlite": "CASE WHEN json_valid(department_ids) THEN CASE WHEN json_type(department_ids, '$[0]')"
    " = 'integer' THEN json_extract(department_ids, '$[0]') END END",
    "postgresql": "CASE WHEN json_typeof(department_ids -> 0) = 'number' AND (department_ids ->> 0)"
    " ~ '^[0-9]{1,10}$' THEN (department_ids ->> 0)::bigint END",
}
_WANTED = {
    "sqlite": "portal = ? AND user_id IN (SELECT value FROM json_each(?))",
    "postgresql": "portal = %s AND user_id = ANY(%s::integer[])",
}
# Each user's first department is worked out once (a materialized CTE on PostgreSQL, which would
# otherwise evaluate the JSON for every pair of user and department), then looked up by key.
_FENCE = {"sqlite": "", "postgresql": "MATERIALIZED "}
# directory.display_name in SQL: "NAME LAST_NAME" without the spaces around it, NULL when empty.
_TRIM = {"sqlite": "trim", "postgresql": "btrim"}
_SQL = {
    dialect: f"WITH u AS {_FENCE[dialect]}(SELECT portal, user_id, time_zone, name, last_name,"
    f" {first} AS first_id FROM users WHERE {_WANTED[dialect]})"
    f" SELECT u.user_id, u.time_zone,"
    f" NULLIF({_TRIM[dialect]}(COALESCE(u.name, '') || ' ' || COALESCE(u.last_name, ''), ' '), ''),"
    " d.name FROM u LEFT JOIN departments d ON d.portal = u.portal AND d.department_id = u.first_id"
    for dialect, first in _FIRST.items()
}


_VERSION = {
    "sqlite": "SELECT version FROM directory_versions WHERE portal = ?",
    "postgresql": "SELECT version FROM directory_versions WHERE portal = %s",
}
_KEPT_DIRECTORIES = 64  # (database, portal) pairs a process keeps; each holds only the users it wrote


class Listing(NamedTuple):
    """What the directory says of the users of a write (and of others the process kept): their
    zones (those it knows) and names."""

    zones: dict[int, ZoneInfo]
    names: dict[int, Names]


@dataclass
class _Kept:
    """What a process read of one portal's directory under one version: the zones and names of
    the users it wrote (some 270 bytes a user with a name of 30 characters: 13 MB for 50,000),
    the department names shared.
    A write is handed these maps themselves (it only looks up its users): entries are added,
    never changed, while the version holds."""

    version: str
    zones: dict[int, ZoneInfo] = field(default_factory=dict)
    names: dict[int, Names] = field(default_factory=dict)
    unlisted: set[int] = field(default_factory=set)  # read, and not in the directory
    departments: dict[str, str] = field(default_factory=dict)  # one copy of each department name


_kept: dict[tuple[str, str], _Kept] = {}
_kept_lock = threading.Lock()


def listed_users(connection: Connection, portal: str, user_ids: Collection[int]) -> Listing:
    """The directory's facts of those of `user_ids` it holds (on the transaction's view); the
    maps may hold other users too."""
    if not user_ids:
        return Listing({}, {})
    dialect = connection.dialect.name
    version = connection.exec_driver_sql(_VERSION[dialect], (portal,)).scalar()
    if version is None:
        return _read(connection, portal, user_ids)
    kept = _kept_directory((str(connection.engine.url), portal), version)
    names, unlisted = kept.names, kept.unlisted
    missing = set(user_ids).difference(names).difference(unlisted)  # looked up, at C speed
    if missing:
        read = _read(connection, portal, missing)
        shared = kept.departments.setdefault
        for user_id in missing:
            listed = read.names.get(user_id)
            if listed is None:
                unlisted.add(user_id)
                continue
            name, department = listed
            zone = read.zones.get(user_id)
            if zone is not None:
                kept.zones[user_id] = zone
            names[user_id] = (name, department if department is None else shared(department, department))
    return Listing(kept.zones, names)


def _kept_directory(key: tuple[str, str], version: str) -> _Kept:
    """What this process kept of a (database, portal) directory, emptied when `version` is new;
    the one used longest ago is dropped when more are kept than the bound."""
    with _kept_lock:
        kept = _kept.pop(key, None)
        if kept is None or kept.version != version:
            kept = _Kept(version)
        _kept[key] = kept  # last: the most recently used
        while len(_kept) > _KEPT_DIRECTORIES:
            del _kept[next(iter(_kept))]
        return kept


def _read(connection: Connection, portal: str, user_ids: Collection[int]) -> Listing:
    """The directory's facts of those of `user_ids` it holds, read from the database."""
    listing = Listing({}, {})
    dialect = connection.dialect.name  # SQLite or PostgreSQL, the two the poller speaks
    ids = sorted(user_ids)
    wanted = json.dumps(ids) if dialect == "sqlite" else ids
    rows = connection.exec_driver_sql(_SQL[dialect], (portal, wanted)).fetchall()  # not row by row
    for user_id, zone_name, name, department in rows:
        listing.names[user_id] = (name, department)
        zone = zone_named(zone_name)
        if zone is not None:
            listing.zones[user_id] = zone
    return listing
