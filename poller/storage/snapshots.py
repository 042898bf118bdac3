"""Write snapshots: one row per poll (mode "all") or per change (mode "changes"), and prune them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Insert, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import aliased

from poller.fields import STATUS_COLUMNS
from poller.models import Snapshot, snapshots_table
from poller.status import ParsedStatus

StorageMode = Literal["all", "changes"]

_RAW_DEPTH = 32  # a timeman.status result is flat; deeper nesting is hostile
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class SnapshotRow:
    """A parsed status ready to be written for one portal and user."""

    portal: str
    user_id: int
    polled_at: datetime
    parsed: ParsedStatus


def snapshot_values(row: SnapshotRow) -> dict[str, object]:
    """The snapshots row of `row`: its key, the status fields, the raw JSON as it can be stored."""
    return {
        "portal": row.portal,
        "user_id": row.user_id,
        "polled_at": row.polled_at,
        **{column: row.parsed.values[column] for column in STATUS_COLUMNS},
        "raw": storable_raw(row.parsed.raw),
        "last_seen_at": row.polled_at,
        "seen_count": 1,
    }


def storable_raw(value: Any, depth: int = 0) -> Any:
    """`value` as the JSON column of either database keeps it and every query can read it.

    Kept as it came, except: NUL and lone UTF-16 surrogates become their six-character escape
    as text (`\\u0000`: PostgreSQL text cannot hold NUL, `->>` fails on it, jsonb refuses it;
    no encoding takes a lone surrogate), NaN and infinities become the strings "NaN",
    "Infinity", "-Infinity" (not JSON: PostgreSQL refuses the whole row), and anything nested
    deeper than 32 levels becomes the string "<nested too deep>".
    """
    if isinstance(value, str):
        return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict | list) and depth >= _RAW_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {storable_raw(key): storable_raw(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [storable_raw(item, depth + 1) for item in value]
    return value


def write_snapshots(connection: Connection, rows: Sequence[SnapshotRow], mode: StorageMode) -> None:
    """Write one portal's snapshots on an open transaction.

    In mode "changes" a snapshot equal to the user's newest row only extends that row
    (last_seen_at, seen_count) instead of adding one.
    """
    inserts = _extend_unchanged(connection, rows) if mode == "changes" and rows else list(rows)
    if inserts:
        connection.execute(_insert_new_snapshots(connection), [snapshot_values(row) for row in inserts])


def _insert_new_snapshots(connection: Connection) -> Insert:
    """INSERT that skips a snapshot already stored: replaying a spool must not fail or double."""
    columns = ["portal", "user_id", "polled_at"]
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(snapshots_table).on_conflict_do_nothing(index_elements=columns)
    if connection.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(snapshots_table).on_conflict_do_nothing(index_elements=columns)
    return insert(snapshots_table)


def _extend_unchanged(connection: Connection, rows: Sequence[SnapshotRow]) -> list[SnapshotRow]:
    """Extend the newest rows that the new snapshots repeat; return the snapshots to insert."""
    table = snapshots_table.c
    portal = rows[0].portal
    newest = (
        select(table.user_id, func.max(table.polled_at).label("polled_at"))
        .where(table.portal == portal)
        .group_by(table.user_id)
        .subquery()
    )
    query = select(table.id, table.user_id, table.last_seen_at, *(table[c] for c in STATUS_COLUMNS)).join(
        newest,
        (table.portal == portal)
        & (table.user_id == newest.c.user_id)
        & (table.polled_at == newest.c.polled_at),
    )
    previous = {row.user_id: row._mapping for row in connection.execute(query)}
    inserts: list[SnapshotRow] = []
    extended: list[dict[str, object]] = []
    for row in rows:
        before = previous.get(row.user_id)
        if (
            before is not None
            and row.polled_at > before["last_seen_at"]
            and all(before[column] == row.parsed.values[column] for column in STATUS_COLUMNS)
        ):
            extended.append({"row_id": before["id"], "seen_at": row.polled_at})
        else:
            inserts.append(row)
    if extended:
        connection.execute(
            update(snapshots_table)
            .where(table.id == bindparam("row_id"))
            .values(last_seen_at=bindparam("seen_at"), seen_count=table.seen_count + 1),
            extended,
        )
    return inserts


def prune_snapshots(engine: Engine, older_than: datetime) -> int:
    """Delete snapshots last seen before `older_than`, never a user's newest row."""
    newer = aliased(Snapshot)
    has_newer = (
        select(newer.id)
        .where(
            (newer.portal == Snapshot.portal)
            & (newer.user_id == Snapshot.user_id)
            & (newer.polled_at > Snapshot.polled_at)
        )
        .exists()
    )
    with engine.begin() as connection:
        result = connection.execute(delete(Snapshot).where(Snapshot.last_seen_at < older_than, has_newer))
    return int(result.rowcount or 0)
