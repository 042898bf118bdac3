"""Write snapshots: one row per poll (mode "all") or per change (mode "changes").

Every write moves the workdays table on in the same transaction (poller.storage.workdays).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, bindparam, func, select, update

from poller.fields import STATUS_COLUMNS
from poller.models import snapshots_table
from poller.status import ParsedStatus
from poller.storage import workdays
from poller.storage.bulk import driver_rows, insert_tuples
from poller.storage.listing import listed_users
from poller.storage.local_dates import dated_in_zones
from poller.storage.plain_days import write_plain_days
from poller.storage.raw_json import raw_conversion, storable_raw
from poller.storage.statements import chunks, one_of
from poller.storage.statistics import note_rows_added
from poller.storage.workday_rules import Poll, is_late

StorageMode = Literal["all", "changes"]

_SNAPSHOT_KEY = ("portal", "user_id", "polled_at")  # unique: a replayed snapshot is skipped


@dataclass(frozen=True)
class SnapshotRow:
    """A parsed status ready to be written for one portal and user."""

    portal: str
    user_id: int
    polled_at: datetime
    parsed: ParsedStatus


def snapshot_values(row: SnapshotRow) -> dict[str, object]:
    """The snapshots row of `row`: its key, the status fields, the raw JSON as it can be stored."""
    values = dict(zip(_COLUMNS, _written_tuple(row), strict=True))
    values["raw"] = storable_raw(values["raw"])
    return values


_COLUMNS = ("portal", "user_id", "polled_at", *STATUS_COLUMNS, "raw", "last_seen_at", "seen_count")
_STATUS_VALUES = itemgetter(*STATUS_COLUMNS)


def _written_tuple(row: SnapshotRow) -> tuple[Any, ...]:
    """The values of _COLUMNS of `row`, the raw answer as it came (raw_conversion makes it storable)."""
    at = row.polled_at
    return (row.portal, row.user_id, at, *_STATUS_VALUES(row.parsed.values), row.parsed.raw, at, 1)


def write_snapshots(connection: Connection, rows: Sequence[SnapshotRow], mode: StorageMode) -> None:
    """Write snapshots, and the workdays they move on, on an open transaction.

    In mode "changes" a snapshot equal to the user's newest row only extends that row
    (last_seen_at, seen_count) instead of adding one. A replayed snapshot changes nothing: in
    mode "all" the unique key skips it; in mode "changes" one no newer than the user's newest
    row's last_seen_at is dropped (it is already counted there). The directory is read once
    (zones for the dates, names for the days), each answer turned into its Poll once.
    """
    for portal, group in groupby(sorted(rows, key=_ORDER), key=_PORTAL):
        ordered = list(group)
        with_day = [row.user_id for row in ordered if row.parsed.values["time_start"] is not None]
        listed = listed_users(connection, portal, with_day)
        ordered = dated_in_zones(ordered, listed.zones)  # work_date in the directory's zone
        names = listed.names
        own = (("raw", raw_conversion(connection.dialect)),)
        tuples = list(map(_written_tuple, ordered))
        started = [index for index, values in enumerate(tuples) if values[_START] is not None]
        if mode == "changes":
            news, changed = _changes(connection, portal, ordered)
            chosen = {id(row) for row in news}
            inserts = [tuple(values[column] for column in _COLUMNS) for values in changed]
            started = [index for index in started if id(ordered[index]) in chosen]
            sources = driver_rows(connection, snapshots_table, _COLUMNS, _at(tuples, started), own=own)
        else:  # each row's driver values are converted once, for its snapshot and its day
            driver = driver_rows(connection, snapshots_table, _COLUMNS, tuples, own=own)
            sources = _at(driver, started)
        polls = [(values[_USER], _poll(values)) for values in _at(tuples, started)]
        plain = write_plain_days(connection, portal, polls, names, sources, _COLUMNS)
        done = plain.written | plain.seen
        left = (i for i in range(len(polls)) if i not in done)
        unplain = [] if len(done) == len(polls) else _entries(ordered, started, polls, left)
        days = workdays.load_days(
            connection, portal, {(row.user_id, poll.time_start) for row, poll in unplain}
        )
        if mode == "changes":  # a replay was left out by _changes
            seen_at = {polls[index][1].last_seen_at for index in done}
            rest = unplain
        else:
            seen = _entries(ordered, started, polls, plain.seen)
            replays = _stored_already(connection, portal, [row for row, _ in seen])
            seen_at = {polls[index][1].last_seen_at for index in plain.written}
            seen_at.update(poll.last_seen_at for row, poll in seen if id(row) not in replays)
            rest = _not_stored_yet(connection, portal, unplain, days)
            replays |= {id(row) for row, _ in unplain} - {id(row) for row, _ in rest}
            inserts = (
                [values for row, values in zip(ordered, driver, strict=True) if id(row) not in replays]
                if replays
                else driver
            )
        added = insert_tuples(
            connection,
            snapshots_table,
            _COLUMNS,
            inserts,
            keys=_SNAPSHOT_KEY,
            own=own,
            fresh=True,
            converted=mode == "all",
        )
        note_rows_added(connection, "snapshots", added)
        workdays.apply_polls(
            connection,
            portal,
            days,
            [(row.user_id, poll) for row, poll in rest],
            names,
            also_seen=seen_at,  # the moments of the polls whose days went the plain way
        )


_ORDER = attrgetter("portal", "user_id", "polled_at")  # a write's rows by portal, then as they happened
_PORTAL = attrgetter("portal")


_new_tuple = tuple.__new__  # no check of the field count: tests/test_poll_rows.py holds it to Poll
_POLL_VALUES = itemgetter(*map(_COLUMNS.index, (
    "polled_at", "polled_at", "status", "time_start", "time_finish", "time_finish_default", "work_date",
    "duration_seconds", "time_leaks_seconds", "active", "tz_offset", "record_id",
)))  # fmt: skip  # Poll's fields in its order (a poll is seen once: last_seen_at = polled_at)
_START = _COLUMNS.index("time_start")
_Item = TypeVar("_Item")
_USER = _COLUMNS.index("user_id")


def _at(items: list[_Item], indexes: Sequence[int]) -> list[_Item]:
    """The items at `indexes` (ascending, no repeats): the list itself when they are all of it."""
    return items if len(indexes) == len(items) else [items[index] for index in indexes]


def _entries(
    ordered: Sequence[SnapshotRow],
    started: Sequence[int],
    polls: Sequence[tuple[int, Poll]],
    indexes: Iterable[int],
) -> list[tuple[SnapshotRow, Poll]]:
    """The (row, Poll) pairs of the polls at `indexes` (polls[i] is the poll of ordered[started[i]])."""
    return [(ordered[started[index]], polls[index][1]) for index in indexes]


def _poll(values: tuple[Any, ...]) -> Poll:
    """What one answer says of its workday, from its _written_tuple (positions, not keys). Made as
    the tuple it is: a write makes one per answer, and Poll's own __new__ is a Python call."""
    return _new_tuple(Poll, _POLL_VALUES(values))


def _not_stored_yet(
    connection: Connection,
    portal: str,
    entries: Sequence[tuple[SnapshotRow, Poll]],
    days: Mapping[tuple[int, datetime], Any],
) -> list[tuple[SnapshotRow, Poll]]:
    """Mode "all": `entries` less those already stored (a replayed spool), found among the late ones."""
    late = [row for row, poll in entries if is_late(days.get((row.user_id, poll.time_start)), poll)]
    stored = _stored_already(connection, portal, late)
    return [entry for entry in entries if id(entry[0]) not in stored]


def _stored_already(connection: Connection, portal: str, rows: Sequence[SnapshotRow]) -> set[int]:
    """The ids (id()) of those of `rows` whose snapshot is stored already (a replayed spool)."""
    if not rows:
        return set()
    table = snapshots_table.c
    stored: set[tuple[int, datetime]] = set()
    for chunk in chunks(rows, 400):
        query = select(table.user_id, table.polled_at).where(
            table.portal == portal,
            one_of(connection, table.user_id, {row.user_id for row in chunk}),
            one_of(connection, table.polled_at, {row.polled_at for row in chunk}),
        )
        stored.update((user_id, polled_at) for user_id, polled_at in connection.execute(query))
    return {id(row) for row in rows if (row.user_id, row.polled_at) in stored}


def _changes(
    connection: Connection, portal: str, rows: Sequence[SnapshotRow]
) -> tuple[list[SnapshotRow], list[dict[str, object]]]:
    """Mode "changes": the snapshots that are news (kept) and the rows to insert for them.

    A snapshot equal to the user's newest row (stored, or inserted by this call) extends it;
    one no newer than that row's last_seen_at is a replay and dropped.
    """
    newest = _newest_rows(connection, portal, {row.user_id for row in rows})
    kept: list[SnapshotRow] = []
    inserts: list[dict[str, object]] = []
    extended: dict[int, dict[str, object]] = {}  # stored row id -> its new last_seen_at, polls added
    for row in rows:
        before = newest.get(row.user_id)
        if before is not None and row.polled_at <= before["last_seen_at"]:
            continue
        kept.append(row)
        if before is not None and all(before[c] == row.parsed.values[c] for c in STATUS_COLUMNS):
            before["last_seen_at"] = row.polled_at
            if "id" in before:
                growth = extended.setdefault(before["id"], {"row_id": before["id"], "added": 0})
                growth["seen_at"] = row.polled_at
                growth["added"] += 1  # type: ignore[operator]
            else:
                before["seen_count"] += 1
        else:
            newest[row.user_id] = snapshot_values(row)
            inserts.append(newest[row.user_id])
    if extended:
        connection.execute(
            update(snapshots_table)
            .where(snapshots_table.c.id == bindparam("row_id"))
            .values(
                last_seen_at=bindparam("seen_at"),
                seen_count=snapshots_table.c.seen_count + bindparam("added"),
            ),
            list(extended.values()),
        )
    return kept, inserts


def _newest_rows(connection: Connection, portal: str, user_ids: set[int]) -> dict[int, dict[str, Any]]:
    """The newest stored row of each of `user_ids`: id, last_seen_at and the status columns."""
    table = snapshots_table.c
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks(sorted(user_ids), 1000):
        newest = (
            select(table.user_id, func.max(table.polled_at).label("polled_at"))
            .where(table.portal == portal, one_of(connection, table.user_id, chunk))
            .group_by(table.user_id)
            .subquery()
        )
        query = select(table.id, table.user_id, table.last_seen_at, *(table[c] for c in STATUS_COLUMNS)).join(
            newest,
            (table.portal == portal)
            & (table.user_id == newest.c.user_id)
            & (table.polled_at == newest.c.polled_at),
        )
        found.update((row.user_id, dict(row._mapping)) for row in connection.execute(query))
    return found
