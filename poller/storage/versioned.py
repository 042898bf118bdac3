"""Versioned rows: what a portal said, kept as periods of validity instead of overwritten.

Each versioned table (user_norms, schedules, schedule_assignments, portal_calendars) has a
`portal`, a key within it, the compared values, and valid_from / valid_to (null: the current
version). Saving what was read at T adds a row for a new key, closes the current row of a
changed key (valid_to = T) and adds one valid from T, and leaves an unchanged key alone; no
other column of a stored row is ever updated. A read no newer than the current version's
valid_from (one that arrives late) changes nothing: the newer version stands.

A partial unique index allows one current row per key. When another writer (a rebalanced
replica, a backfill beside the daemon) stores a key between this save's read and its insert,
the save's savepoint is rolled back and the save runs once more on the rows now current; if
that loses a race too, its rows count as stale and the other writer's versions stand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from poller.storage.statistics import note_rows_added

Key = tuple[Any, ...]


@dataclass(frozen=True)
class VersionsSaved:
    """What a save did: keys first seen, keys whose values changed (a version closed and one
    opened), keys unchanged, keys closed without a successor (gone from a complete set), and
    keys whose read was older than their current version (ignored)."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    closed: int = 0
    stale: int = 0


def save_versions(
    connection: Connection,
    table: Table,
    portal: str,
    keys: Sequence[str],
    rows: Mapping[Key, Mapping[str, Any]],
    seen_at: datetime,
    *,
    compared: Sequence[str],
    complete: bool = False,
) -> VersionsSaved:
    """Store `rows` (key values -> column values) of `portal` as read at `seen_at`.

    `compared`: the columns whose change makes a new version (others, such as raw, are kept as
    first seen). `complete`: `rows` is the whole set, so a current key missing from it is
    closed at `seen_at`; otherwise a key that is not in `rows` was simply not read.
    """
    _begin_on_sqlite(connection)
    for _ in range(2):  # a lost race is retried once on the rows another writer stored
        try:
            with connection.begin_nested():
                return _save(connection, table, portal, keys, rows, seen_at, compared, complete)
        except IntegrityError:
            continue
    return VersionsSaved(stale=len(rows))


def _begin_on_sqlite(connection: Connection) -> None:
    """Open the SQLite transaction before the savepoint. pysqlite begins one only before a
    write, so a savepoint issued first would itself open the transaction, and releasing it would
    commit: the caller's transaction would no longer hold the save."""
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql("BEGIN")


def _save(
    connection: Connection,
    table: Table,
    portal: str,
    keys: Sequence[str],
    rows: Mapping[Key, Mapping[str, Any]],
    seen_at: datetime,
    compared: Sequence[str],
    complete: bool,
) -> VersionsSaved:
    """One attempt of `save_versions`; raises IntegrityError when another writer came first."""
    current = _current(connection, table, portal, keys, compared)
    inserts: list[dict[str, Any]] = []
    closes: list[dict[str, Any]] = []
    counts = {"added": 0, "changed": 0, "unchanged": 0, "closed": 0, "stale": 0}
    for key, values in rows.items():
        stored = current.get(key)
        if stored is None:
            counts["added"] += 1
        elif all(stored[name] == values.get(name) for name in compared):
            counts["unchanged"] += 1
            continue
        elif seen_at <= stored["valid_from"]:
            counts["stale"] += 1
            continue
        else:
            counts["changed"] += 1
            closes.append({"_id": stored["id"], "_to": seen_at})
        inserts.append(
            {"portal": portal, **dict(zip(keys, key, strict=True)), **values, "valid_from": seen_at}
        )
    if complete:
        for key, stored in current.items():
            if key not in rows and seen_at > stored["valid_from"]:
                counts["closed"] += 1
                closes.append({"_id": stored["id"], "_to": seen_at})
    if closes:
        connection.execute(
            update(table).where(table.c.id == bindparam("_id")).values(valid_to=bindparam("_to")), closes
        )
    if inserts:
        connection.execute(insert(table), inserts)
        note_rows_added(connection, table.name, len(inserts))  # the attendance view plans on them
    return VersionsSaved(**counts)


def _current(
    connection: Connection, table: Table, portal: str, keys: Sequence[str], compared: Sequence[str]
) -> dict[Key, dict[str, Any]]:
    """The current version of every key of `portal`, by key."""
    columns = [table.c.id, table.c.valid_from, *(table.c[name] for name in (*keys, *compared))]
    query = select(*columns).where(table.c.portal == portal, table.c.valid_to.is_(None))
    found: dict[Key, dict[str, Any]] = {}
    for row in connection.execute(query).mappings():
        found[tuple(row[name] for name in keys)] = dict(row)
    return found
