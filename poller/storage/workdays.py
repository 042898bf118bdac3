"""Keep the workdays table up to date, in the transaction that writes what it follows from.

Snapshots move a day on poll by poll (`apply_polls`); records put the portal's figures in
(`apply_records`); a poll that arrives out of order, or a record that moved, has its day
computed again from the stored snapshots (`rebuild_days`). The rules are in workday_rules.
Days are looked up by exact key through a VALUES list joined to the primary key, so a cycle
of N users costs N index probes whatever the history's length.

Pruning snapshots never touches workdays: a day stays as it was computed when its polls were
stored, and the table is the history the reports read. (Only a day rebuilt after its snapshots
were pruned, by a late poll of it, is computed from what is left.)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Integer,
    RowMapping,
    Table,
    TextualSelect,
    bindparam,
    delete,
    func,
    select,
    text,
)

from poller.models import UTCDateTime, snapshots_table, workday_records_table, workdays_table
from poller.storage.directory import names_of, zones_of
from poller.storage.statements import chunks, upsert
from poller.storage.workday_rules import DAY_COLUMNS, Day, Poll, advance, has_polls, is_late, with_record

WorkdayKey = tuple[int, datetime]  # user_id, time_start (a UTC instant)

_CHUNK = 400  # keys per statement: two parameters each, under SQLite's and PostgreSQL's limits
_KEY = ("portal", "user_id", "time_start")
_REPLACED = (*DAY_COLUMNS, "user_name", "department")


def load_days(connection: Connection, portal: str, keys: Collection[WorkdayKey]) -> dict[WorkdayKey, Day]:
    """The stored days of `keys` (those that exist), without their key and name columns."""
    found: dict[WorkdayKey, Day] = {}
    for row in _rows_by_key(connection, workdays_table, "time_start", portal, keys):
        found[(row["user_id"], row["time_start"])] = {name: row[name] for name in DAY_COLUMNS}
    return found


def apply_polls(
    connection: Connection, portal: str, days: Mapping[WorkdayKey, Day], polls: Iterable[tuple[int, Poll]]
) -> None:
    """Move the days of `polls` (user_id, Poll; in the order they were polled) on and store them.

    `days` are the stored days of their keys (load_days). A poll no newer than its day's last
    poll has the day rebuilt from the snapshots instead (they hold it by now).
    """
    changed: dict[WorkdayKey, Day] = {}
    late: set[WorkdayKey] = set()
    for user_id, poll in polls:
        key = (user_id, poll.time_start)
        day = changed.get(key, days.get(key))
        if key in late or is_late(day, poll):
            late.add(key)
            continue
        changed[key] = advance(day, poll)
    _store(connection, portal, {key: day for key, day in changed.items() if key not in late})
    rebuild_days(connection, portal, late)


def apply_records(
    connection: Connection, portal: str, records: Sequence[Mapping[str, Any]], moved: Collection[WorkdayKey]
) -> None:
    """Put saved records (workday_records rows) into their days; rebuild days a record left.

    A closed record takes the day's figures and keeps when the polls saw it; an open one joins
    the polls' day, or stands alone as an estimate when no poll saw the day. Only a day that
    a closed record held and that is open again, or that a record moved away from, is rebuilt
    from its snapshots.
    """
    keys = {(record["user_id"], record["start_time"]) for record in records}
    days = load_days(connection, portal, keys)
    unpolled = [record for record in records if not has_polls(days.get(_record_key(record)))]
    offsets = local_offsets(connection, portal, unpolled)
    changed: dict[WorkdayKey, Day] = {}
    rebuild = {key for key in moved if key not in keys}
    for record in records:
        key = _record_key(record)
        day = days.get(key)
        polled = day if has_polls(day) else None
        if record["end_time"] is None and polled is not None and polled["source"] == "record":
            rebuild.add(key)  # a closed day opened again: the polls' figures come from the snapshots
        else:
            changed[key] = with_record(polled, record, offsets.get(record["record_id"]))
    _store(connection, portal, changed)
    rebuild_days(connection, portal, rebuild)


def rebuild_days(connection: Connection, portal: str, keys: Collection[WorkdayKey]) -> None:
    """Compute the days of `keys` again from their snapshots and records; drop those with neither."""
    if not keys:
        return
    snapshots = snapshots_table.c
    polled: dict[WorkdayKey, Day] = {}
    for user_id, time_start in keys:
        query = (
            select(snapshots_table)
            .where(
                snapshots.portal == portal, snapshots.user_id == user_id, snapshots.time_start == time_start
            )
            .order_by(snapshots.polled_at)
        )
        for row in connection.execute(query).mappings():
            polled[(user_id, time_start)] = advance(polled.get((user_id, time_start)), Poll.from_row(row))
    found = {
        _record_key(row): row
        for row in _rows_by_key(connection, workday_records_table, "start_time", portal, keys)
    }
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
    _store(connection, portal, rebuilt)
    if gone:
        table = workdays_table.c
        connection.execute(
            delete(workdays_table).where(
                table.portal == portal, table.user_id == bindparam("u"), table.time_start == bindparam("t")
            ),
            [{"u": user_id, "t": time_start} for user_id, time_start in gone],
        )


def local_offsets(
    connection: Connection, portal: str, records: Sequence[Mapping[Any, Any]]
) -> dict[int, int]:
    """The user's UTC offset at each record's start, in seconds: from the directory's TIME_ZONE,
    else the TZ_OFFSET of the user's newest snapshot; records of users with neither are left out."""
    users = {record["user_id"] for record in records}
    if not users:
        return {}
    zones = zones_of(connection, portal, users)
    newest = _newest_offsets(connection, portal, users - set(zones))
    offsets: dict[int, int] = {}
    for record in records:
        user_id = record["user_id"]
        if user_id in zones:
            shift = record["start_time"].astimezone(zones[user_id]).utcoffset()
            offsets[record["record_id"]] = int(shift.total_seconds()) if shift is not None else 0
        elif user_id in newest:
            offsets[record["record_id"]] = newest[user_id]
    return offsets


def _newest_offsets(connection: Connection, portal: str, user_ids: Collection[int]) -> dict[int, int]:
    """TZ_OFFSET of each user's newest snapshot that has one."""
    table = snapshots_table.c
    offsets: dict[int, int] = {}
    for chunk in chunks(sorted(user_ids), 1000):
        newest = (
            select(table.user_id, func.max(table.polled_at).label("polled_at"))
            .where(table.portal == portal, table.user_id.in_(chunk), table.tz_offset.is_not(None))
            .group_by(table.user_id)
            .subquery()
        )
        query = select(table.user_id, table.tz_offset).join(
            newest,
            (table.portal == portal)
            & (table.user_id == newest.c.user_id)
            & (table.polled_at == newest.c.polled_at),
        )
        offsets.update((user_id, offset) for user_id, offset in connection.execute(query))
    return offsets


def _record_key(record: Mapping[Any, Any]) -> WorkdayKey:
    return record["user_id"], record["start_time"]


def _store(connection: Connection, portal: str, days: Mapping[WorkdayKey, Day]) -> None:
    """Insert or replace `days`, with the directory's names of their users."""
    if not days:
        return
    names = names_of(connection, portal, {user_id for user_id, _ in days})
    rows = [
        {
            "portal": portal,
            "user_id": user_id,
            "time_start": time_start,
            **day,
            "user_name": names.get(user_id, (None, None))[0],
            "department": names.get(user_id, (None, None))[1],
        }
        for (user_id, time_start), day in days.items()
    ]
    for chunk in chunks(rows, 1000):
        connection.execute(upsert(connection, workdays_table, _KEY, _REPLACED), chunk)


def _rows_by_key(
    connection: Connection, table: Table, time_column: str, portal: str, keys: Collection[WorkdayKey]
) -> Iterator[RowMapping]:
    """Rows of `table` whose (user_id, `time_column`) is one of `keys`, by index probes.

    The keys go in as a VALUES list joined to the primary key or index; the statement is
    built once per table and always takes _CHUNK keys (the last chunk repeats its last key),
    so it is compiled once.
    """
    statement = _keyed_select(table, time_column)
    for chunk in chunks(list(keys), _CHUNK):
        padded = [*chunk, *[chunk[-1]] * (_CHUNK - len(chunk))]
        params: dict[str, Any] = {"portal": portal}
        for number, (user_id, instant) in enumerate(padded):
            params[f"u{number}"], params[f"t{number}"] = user_id, instant
        seen: set[WorkdayKey] = set()
        for row in connection.execute(statement, params).mappings():
            key = (row["user_id"], row[time_column])
            if key not in seen:  # a padded key finds its row more than once
                seen.add(key)
                yield row


_KEYED: dict[tuple[str, str], TextualSelect] = {}


def _keyed_select(table: Table, time_column: str) -> TextualSelect:
    if (table.name, time_column) not in _KEYED:
        pairs = ", ".join(f"(:u{n}, :t{n})" for n in range(_CHUNK))
        columns = ", ".join(f"x.{c.name}" for c in table.columns)
        sql = (
            f"WITH wanted(u, t) AS (VALUES {pairs}) SELECT {columns} FROM {table.name} x "
            f"JOIN wanted ON x.user_id = wanted.u AND x.{time_column} = wanted.t WHERE x.portal = :portal"
        )
        binds: list[BindParameter[Any]] = [bindparam(f"u{n}", type_=Integer()) for n in range(_CHUNK)]
        binds += [bindparam(f"t{n}", type_=UTCDateTime()) for n in range(_CHUNK)]
        _KEYED[(table.name, time_column)] = text(sql).bindparams(*binds).columns(*table.columns)
    return _KEYED[(table.name, time_column)]
