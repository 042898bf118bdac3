"""Which stored day a workday record belongs to, when a manager moved its start.

A poll carries the ID of the day's record; the record's own start wins over the poll's
TIME_START (`record_homes`), and a record whose start moved finds the stored days that still
hold its ID under the old start (`days_of_records`). Read for storage.workdays.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from poller.models import workday_records_table, workdays_table
from poller.storage.keyed import KEYS_PER_STATEMENT
from poller.storage.statements import chunks, one_of

WorkdayKey = tuple[int, datetime]  # user_id, time_start (a UTC instant)


def record_homes(
    connection: Connection, portal: str, carried: Collection[tuple[int, int]]
) -> dict[tuple[int, int], WorkdayKey]:
    """The day of each stored record among `carried` (user_id, record ID a poll carried): the
    record's own start, which wins over the poll's TIME_START when a manager edited it."""
    table = workday_records_table.c
    homes: dict[tuple[int, int], WorkdayKey] = {}
    for chunk in chunks(sorted({record_id for _, record_id in carried}), 1000):
        query = select(table.record_id, table.user_id, table.start_time).where(
            table.portal == portal, one_of(connection, table.record_id, chunk)
        )
        for record_id, user_id, start_time in connection.execute(query):
            if (user_id, record_id) in carried:
                homes[(user_id, record_id)] = (user_id, start_time)
    return homes


def days_of_records(
    connection: Connection, portal: str, records: Sequence[Mapping[str, Any]]
) -> dict[int, list[WorkdayKey]]:
    """The stored days that hold the ID of one of `records` under another start than the record's."""
    wanted = {(record["user_id"], record["record_id"]): record_key(record) for record in records}
    table = workdays_table.c
    found: dict[int, list[WorkdayKey]] = {}
    for chunk in chunks(sorted(wanted), KEYS_PER_STATEMENT):
        query = select(table.user_id, table.record_id, table.time_start).where(
            table.portal == portal,
            one_of(connection, table.user_id, {user_id for user_id, _ in chunk}),
            one_of(connection, table.record_id, {record_id for _, record_id in chunk}),
        )
        for user_id, record_id, time_start in connection.execute(query):
            home = wanted.get((user_id, record_id))
            if home is not None and home != (user_id, time_start):
                found.setdefault(record_id, []).append((user_id, time_start))
    return found


def record_key(record: Mapping[Any, Any]) -> WorkdayKey:
    return record["user_id"], record["start_time"]
