"""Keep the workdays table up to date, in the transaction that writes what it follows from.

Snapshots move a day on poll by poll (`apply_polls`); records put the portal's figures in
(`apply_records`); a poll that arrives out of order, or a record that moved, has its day
computed again from the stored snapshots (`rebuild_days`). The rules are in workday_rules.
Days are looked up by exact key through a VALUES list joined to the primary key, so a cycle
of N users costs N index probes whatever the history's length.

A final day of a past date whose figures change, or that goes away, leaves revisions
(poller.storage.revisions) written in the same transaction: every writer below notes what it
stores and deletes in a DayChanges, and the apply_* functions save it at their end.

Pruning snapshots never touches workdays: a day stays as it was computed when its polls were
stored, and the table is the history the reports read. (Only a day rebuilt after its snapshots
were pruned, by a late poll of it, is computed from what is left.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    bindparam,
    delete,
    or_,
    select,
)

from poller.models import snapshots_table, workday_records_table, workdays_table
from poller.storage.bulk import insert_tuples
from poller.storage.directory import Names, names_of
from poller.storage.keyed import rows_by_key, tuples_by_key
from poller.storage.offsets import local_offsets
from poller.storage.record_days import days_of_records, record_homes, record_key
from poller.storage.revisions import DayChanges, save_day_changes
from poller.storage.statistics import note_rows_added
from poller.storage.workday_rules import DAY_COLUMNS, Day, Poll, advance, has_polls, is_late, with_record

WorkdayKey = tuple[int, datetime]  # user_id, time_start (a UTC instant)

_KEY = ("portal", "user_id", "time_start")
_NAMES = ("user_name", "department")
_COLUMNS = (*_KEY, *DAY_COLUMNS, *_NAMES)
_UNDATED = tuple(column for column in DAY_COLUMNS if column != "work_date")  # a day's date unchanged
_DAY_VALUES_OF = itemgetter(*DAY_COLUMNS)
# The columns load_days reads, in the table's order, and where its key lies among them.
_READ = tuple(
    column.name for column in workdays_table.c if column.name in {"user_id", "time_start", *DAY_COLUMNS}
)
_AT_USER, _AT_START = _READ.index("user_id"), _READ.index("time_start")
_DAY_READ = tuple(name for name in _READ if name in DAY_COLUMNS)
_DAY_VALUES = itemgetter(*(_READ.index(name) for name in _DAY_READ))


def load_days(connection: Connection, portal: str, keys: Collection[WorkdayKey]) -> dict[WorkdayKey, Day]:
    """The stored days of `keys` (those that exist), without their key and name columns."""
    found: dict[WorkdayKey, Day] = {}
    for values in tuples_by_key(connection, workdays_table, "time_start", portal, keys, DAY_COLUMNS):
        found[(values[_AT_USER], values[_AT_START])] = dict(zip(_DAY_READ, _DAY_VALUES(values), strict=True))
    return found


def apply_polls(
    connection: Connection,
    portal: str,
    days: Mapping[WorkdayKey, Day],
    polls: Iterable[tuple[int, Poll]],
    names: Mapping[int, Names] | None = None,
    also_seen: Iterable[datetime] = (),
) -> None:
    """Move the days of `polls` (user_id, Poll; in the order they were polled) on and store them.

    `days` are the stored days of their keys (load_days). A poll no newer than its day's last
    poll has the day rebuilt from the snapshots instead (they hold it by now). A poll that
    carries the ID of a stored record whose start differs (a manager edited it) moves the
    record's day on, so the day is never counted twice. `names`: the directory's names of the
    polls' users when the caller has read them (else read here).
    """
    polls = list(polls)
    carried = {(user_id, poll.record_id) for user_id, poll in polls if (user_id, poll.time_start) not in days}
    homes = record_homes(
        connection, portal, {(user_id, record_id) for user_id, record_id in carried if record_id}
    )
    days = {**days, **load_days(connection, portal, set(homes.values()) - set(days))}
    changes = DayChanges()
    changes.remember(days, [*days, *((user_id, poll.time_start) for user_id, poll in polls)])
    changes.see([*(poll.last_seen_at for _, poll in polls), *also_seen])
    changed: dict[WorkdayKey, Day] = {}
    late: set[WorkdayKey] = set()
    for user_id, poll in polls:
        key = homes.get((user_id, poll.record_id or 0), (user_id, poll.time_start))
        day = changed.get(key, days.get(key))
        if key in late or is_late(day, poll):
            late.add(key)
            continue
        changed[key] = advance(day, poll)
    _store(connection, portal, {key: day for key, day in changed.items() if key not in late}, changes, names)
    rebuild_days(connection, portal, late, changes, names)
    save_day_changes(connection, portal, changes)


def apply_records(
    connection: Connection,
    portal: str,
    records: Sequence[Mapping[str, Any]],
    moved: Collection[WorkdayKey],
    revised: Collection[WorkdayKey] = (),
) -> None:
    """Put saved records (workday_records rows) into their days; rebuild days a record left.

    A closed record takes the day's figures and keeps when the polls saw it; an open one joins
    the polls' day, or stands alone as an estimate when no poll saw the day. The polls' day is
    the one at the record's start, else the one stored with the record's ID under another start
    (a start a manager edited): that day moves to the record's start, so one row remains. Only
    a day that moved, that a closed record held and that is open again, or that a record moved
    away from, is rebuilt from its snapshots. `revised`: the days of records that changed (their
    correction counts are recounted).
    """
    keys = {(record["user_id"], record["start_time"]) for record in records}
    days = load_days(connection, portal, keys)
    changes = DayChanges(revised=set(revised))
    changes.remember(days, keys)
    changes.see(record["fetched_at"] for record in records)
    unpolled = [record for record in records if not has_polls(days.get(record_key(record)))]
    elsewhere = days_of_records(connection, portal, unpolled)
    _delete(connection, portal, {old for olds in elsewhere.values() for old in olds}, changes)
    offsets = local_offsets(connection, portal, unpolled)
    changed: dict[WorkdayKey, Day] = {}
    rebuild = {key for key in moved if key not in keys}
    for record in records:
        key = record_key(record)
        day = days.get(key)
        if record["record_id"] in elsewhere:
            rebuild.add(key)  # the day polled with its ID under another start: it moves here
            continue
        polled = day if has_polls(day) else None
        if record["end_time"] is None and polled is not None and polled["source"] == "record":
            rebuild.add(key)  # a closed day opened again: the polls' figures come from the snapshots
        else:
            changed[key] = with_record(polled, record, offsets.get(record["record_id"]))
    _store(connection, portal, changed, changes)
    rebuild_days(connection, portal, rebuild, changes)
    save_day_changes(connection, portal, changes)


def rebuild_days(
    connection: Connection,
    portal: str,
    keys: Collection[WorkdayKey],
    changes: DayChanges | None = None,
    names: Mapping[int, Names] | None = None,
) -> None:
    """Compute the days of `keys` again from their snapshots and records; drop those with neither.

    Without `changes` (a rebuild of its own) no moment of change is known: no revisions."""
    if not keys:
        return
    if changes is None:
        changes = DayChanges()
        rebuild_days(connection, portal, keys, changes)
        save_day_changes(connection, portal, changes)
        return
    found = {
        record_key(row): row
        for row in rows_by_key(connection, workday_records_table, "start_time", portal, keys)
    }
    snapshots = snapshots_table.c
    seen: dict[WorkdayKey, list[RowMapping]] = {}
    for user_id, time_start in keys:
        record = found.get((user_id, time_start))
        belongs = snapshots.time_start == time_start
        if record is not None:
            belongs = or_(belongs, snapshots.record_id == record["record_id"])
        query = (
            select(snapshots_table)
            .where(snapshots.portal == portal, snapshots.user_id == user_id, belongs)
            .order_by(snapshots.polled_at)
        )
        seen[(user_id, time_start)] = list(connection.execute(query).mappings())
    carried = {
        (row["user_id"], row["record_id"]) for rows in seen.values() for row in rows if row["record_id"]
    }
    homes = record_homes(connection, portal, carried)
    polled: dict[WorkdayKey, Day] = {}
    for key, rows in seen.items():
        for row in rows:
            if homes.get((row["user_id"], row["record_id"] or 0), key) == key:  # else: its record's day
                polled[key] = advance(polled.get(key), Poll.from_row(row))
    offsets = local_offsets(connection, portal, [row for key, row in found.items() if key not in polled])
    rebuilt: dict[WorkdayKey, Day] = {}
    gone: list[WorkdayKey] = []
    for key in keys:
        day = polled.get(key)
        if key in found:
            day = with_record(day, found[key], offsets.get(found[key]["record_id"]))
        if day is None:
            gone.append(key)
        else:
            rebuilt[key] = day
    _store(connection, portal, rebuilt, changes, names)
    _delete(connection, portal, gone, changes)


def _delete(connection: Connection, portal: str, keys: Collection[WorkdayKey], changes: DayChanges) -> None:
    if keys:
        _note_before(connection, portal, keys, changes)
        changes.note_deleted(keys)
        table = workdays_table.c
        connection.execute(
            delete(workdays_table).where(
                table.portal == portal, table.user_id == bindparam("u"), table.time_start == bindparam("t")
            ),
            [{"u": user_id, "t": time_start} for user_id, time_start in keys],
        )


def _note_before(
    connection: Connection, portal: str, keys: Collection[WorkdayKey], changes: DayChanges
) -> None:
    """Tell `changes` what the days of `keys` are before a write (read only those it does not know)."""
    missing = changes.unknown(keys)
    if missing:
        changes.remember(load_days(connection, portal, missing), missing)


def _store(
    connection: Connection,
    portal: str,
    days: Mapping[WorkdayKey, Day],
    changes: DayChanges,
    names: Mapping[int, Names] | None = None,
) -> None:
    """Insert or replace `days`, with the directory's current names of their users.

    Every write applies the names again (one lookup for the write's users), so a day first
    stored while its user was not yet in the directory (a directory refresh that committed
    during this cycle's transaction) takes its names at the next poll. A name the directory
    lacks keeps the stored one (COALESCE): a user who left the directory keeps the last known.
    `names` (the directory's names of the days' users, read by the caller in this transaction)
    spares the lookup. A day stored under the same work date leaves work_date out of its
    update: the two indexes on it are not rewritten (on SQLite that is a third of the write).
    """
    if not days:
        return
    _note_before(connection, portal, list(days), changes)
    stored = sum(1 for key in days if key in changes.before and key not in changes.deleted)
    dated = {key for key, day in days.items() if _stored_date(changes, key) == (day["work_date"],)}
    changes.note_stored(days)
    if names is None:
        names = names_of(connection, portal, {user_id for user_id, _ in days})
    unnamed = (None, None)
    rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] = ([], [])
    for (user_id, time_start), day in days.items():
        rows[(user_id, time_start) in dated].append(
            (portal, user_id, time_start, *_DAY_VALUES_OF(day), *names.get(user_id, unnamed))
        )
    for replaced, group in zip((DAY_COLUMNS, _UNDATED), rows, strict=True):
        insert_tuples(
            connection, workdays_table, _COLUMNS, group, keys=_KEY, replaced=replaced, filled=_NAMES
        )
    note_rows_added(connection, "workdays", len(days) - stored)


def _stored_date(changes: DayChanges, key: WorkdayKey) -> tuple[Any, ...]:
    """(work_date,) of the day stored under `key` before this store, () when none is."""
    if key in changes.stored:
        return (changes.stored[key]["work_date"],)
    if key in changes.before and key not in changes.deleted:
        return (changes.before[key]["work_date"],)
    return ()
