"""The days of polls that decide them alone, stored by one conditional upsert without a read.

Most polls of a cycle move their day on by what they say alone: a day running, closed or
expired (not a running pause, whose start the stored day bounds), of a user polled once in the
write, whose record ID (newest builds send one) is not that of a stored record with another
start (a manager moved it: the day is the record's, workdays.apply_polls). Such a poll's day is
`polled_day(None, poll)` (workday_rules.advance without a stored day) but for two values carried
from the stored day: when the polls first saw it, and its record ID. One INSERT ... ON CONFLICT
DO UPDATE writes them all and keeps those two.
Its condition holds exactly where workdays.apply_polls would come to the same row and no
revision: the stored day is the polls' own (not a record's), last seen before this poll, of the
same work date, and still an estimate or unchanged in the figures a revision compares. A stored
day where it fails keeps its row and its poll goes the full way (apply_polls, which reads the
day, and takes these polls' moments for the write's revisions); the count of rows written tells
whether any did, so a cycle where none does reads no day at all. tests/test_plain_days*.py hold
both ways to the same table and revisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, literal, select

from poller.models import workday_records_table, workdays_table
from poller.storage.bulk import insert_tuples
from poller.storage.directory import Names
from poller.storage.driver_values import Convert, converter
from poller.storage.keyed import count_by_key, ids_matching, rows_by_key
from poller.storage.revisions import DAY_REVISED
from poller.storage.statistics import note_rows_added
from poller.storage.workday_rules import DAY_COLUMNS, Poll, worked_after

_KEY = ("portal", "user_id", "time_start")
_NAMES = ("user_name", "department")
_COLUMNS = (*_KEY, *DAY_COLUMNS, *_NAMES)
_KEPT = ("work_date", "first_seen_at", "source", "record_id")  # not replaced (record_id: filled)
_REPLACED = tuple(column for column in DAY_COLUMNS if column not in _KEPT)
_UNNAMED = (None, None)
_ANY_RECORD = select(literal(1)).where(workday_records_table.c.portal == bindparam("portal")).limit(1)


def _same(dialect: str, column: str) -> str:
    """SQL: the stored and the given value of `column` are equal, NULL equal to NULL."""
    match = "IS NOT DISTINCT FROM" if dialect == "postgresql" else "IS"
    return f"workdays.{column} {match} excluded.{column}"


def _condition(dialect: str) -> str:
    """SQL: the stored day is one the poll moves on alone, without a revision (see the module)."""
    unchanged = " AND ".join(_same(dialect, column) for column in DAY_REVISED if column != "work_date")
    return (
        "workdays.source = 'polls' AND workdays.first_seen_at IS NOT NULL"
        " AND workdays.last_seen_at < excluded.last_seen_at"
        f" AND {_same(dialect, 'work_date')}"
        f" AND (workdays.worked_is_estimate OR ({unchanged}))"
    )


_CONDITIONS = {dialect: _condition(dialect) for dialect in ("sqlite", "postgresql")}


class PlainWrite(NamedTuple):
    """What write_plain_days did with a write's polls, by their indexes."""

    written: set[int]  # their days stored
    seen: set[int]  # their days had seen them already (a replay) or were stored now: not told apart


def write_plain_days(
    connection: Connection,
    portal: str,
    polls: Sequence[tuple[int, Poll]],
    names: Mapping[int, Names],
    snapshots: Sequence[tuple[Any, ...]],
    snapshot_columns: tuple[str, ...],
) -> PlainWrite:
    """Store the days of those of `polls` (user_id, Poll of a write) that decide them alone.
    `names`: the directory's names of the polls' users; `snapshots`: each poll's snapshot row as
    driver values (bulk.driver_rows) of `snapshot_columns`, from which its day's row takes the
    values the two tables share, converted once. The polls left out of both sets of the answer
    go the full way."""
    chosen = _plain(connection, portal, polls)
    if not chosen:
        return PlainWrite(set(), set())
    dialect = connection.dialect
    whole = converter(workdays_table.c.worked_seconds.type, dialect.name, dialect)
    rows = day_rows(portal, polls, chosen, names, snapshots, snapshot_columns, whole)
    postgresql = dialect.name == "postgresql"
    stored_before = (
        count_by_key(connection, workdays_table, "time_start", portal, _keys(polls, chosen))
        if postgresql
        else 0
    )
    written = insert_tuples(
        connection,
        workdays_table,
        _COLUMNS,
        rows,
        keys=_KEY,
        replaced=_REPLACED,
        filled=("record_id", *_NAMES),
        only_if=_CONDITIONS[dialect.name],
        converted=True,
    )
    if postgresql:  # the planner's statistics count the new days (SQLite plans without them)
        note_rows_added(connection, "workdays", len(rows) - stored_before)
    if written == len(rows):
        return PlainWrite(set(chosen), set())
    keys = _keys(polls, chosen)
    found = rows_by_key(connection, workdays_table, "time_start", portal, keys, ("last_seen_at",))
    return PlainWrite(  # a day the condition refused holds another poll's moment, or this one's (a replay)
        set(),
        {
            keys[(row["user_id"], row["time_start"])]
            for row in found
            if row["last_seen_at"] == polls[keys[(row["user_id"], row["time_start"])]][1].last_seen_at
        },
    )


def day_rows(
    portal: str,
    polls: Sequence[tuple[int, Poll]],
    chosen: Sequence[int],
    names: Mapping[int, Names],
    snapshots: Sequence[tuple[Any, ...]],
    snapshot_columns: tuple[str, ...],
    whole: Convert | None = None,
) -> list[tuple[Any, ...]]:
    """The driver values of the workdays rows (_COLUMNS) of the `chosen` polls: what converting
    polled_day(None, poll) would give, the shared values taken as their snapshots have them
    (the columns' types are the same) and the worked time converted by `whole` (the integer
    column's conversion, None: none)."""
    shared = _shared_values(snapshot_columns)
    rows = []
    for index in chosen:
        poll = polls[index][1]
        user_id, start, work_date, finish, offset, leaks, seen, record_id = shared(snapshots[index])
        status = poll.status
        worked = worked_after(None, poll)
        rows.append(
            (
                portal, user_id, start, work_date, finish if status == "CLOSED" else None, offset, status,
                worked if whole is None or worked is None else whole(worked), status != "CLOSED", leaks,
                seen, seen, poll.active is False, "polls", record_id if poll.record_id else None,
                *names.get(polls[index][0], _UNNAMED),
            )
        )  # fmt: skip
    return rows


@cache
def _shared_values(snapshot_columns: tuple[str, ...]) -> itemgetter[tuple[Any, ...]]:
    """A snapshot row's values that its day's row takes: user, start, work date, finish, offset,
    leaks, the poll's moment (first and last seen), record ID (the columns' types are the same)."""
    return itemgetter(
        *map(
            snapshot_columns.index,
            (
                "user_id",
                "time_start",
                "work_date",
                "time_finish",
                "tz_offset",
                "time_leaks_seconds",
                "polled_at",
                "record_id",
            ),
        )
    )


def _keys(polls: Sequence[tuple[int, Poll]], chosen: Sequence[int]) -> dict[tuple[int, Any], int]:
    """The index of each chosen poll, by its day's key (user_id, time_start)."""
    return {(polls[index][0], polls[index][1].time_start): index for index in chosen}


def _plain(connection: Connection, portal: str, polls: Sequence[tuple[int, Poll]]) -> list[int]:
    """The indexes of the polls whose day the poll decides alone, but for the stored day's state
    (which the upsert's condition checks): not a pause, its user's only poll of the write, and
    its record ID (if any) not that of a stored record that starts elsewhere."""
    if len({user_id for user_id, _ in polls}) == len(polls):  # the usual write: a poll per user
        single = [index for index, (_, poll) in enumerate(polls) if poll.status != "PAUSED"]
    else:
        per_user = Counter(user_id for user_id, _ in polls)
        single = [
            index
            for index, (user_id, poll) in enumerate(polls)
            if per_user[user_id] == 1 and poll.status != "PAUSED"
        ]
    if not single or connection.execute(_ANY_RECORD, {"portal": portal}).first() is None:
        return single  # no record of the portal is stored (REST 3.0 records not fetched): none moved
    carried = {
        (poll.record_id, poll.time_start) for _, poll in map(polls.__getitem__, single) if poll.record_id
    }
    if not carried:
        return single
    moved = ids_matching(
        connection,
        workday_records_table,
        portal,
        carried,
        "x.record_id = wanted.u AND x.start_time <> wanted.t",
    )
    if not moved:
        return single
    return [index for index in single if polls[index][1].record_id not in moved]
