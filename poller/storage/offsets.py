"""The UTC offset a workday record was lived in, for the local date of a day no poll saw.

A record's startTime is written in the portal's zone or, by older builds, in UTC; the user's
own offset on that day comes from the directory's TIME_ZONE where it names a known zone, else
from the offset startTime was written in, else from the TZ_OFFSET of the user's newest snapshot.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from poller.models import snapshots_table
from poller.status import start_offset
from poller.storage.directory import zones_of
from poller.storage.statements import chunks, one_of


def local_offsets(
    connection: Connection, portal: str, records: Sequence[Mapping[Any, Any]]
) -> dict[int, int]:
    """The user's UTC offset at each record's start, in seconds: from the directory's TIME_ZONE,
    else the offset startTime was written in, else (written in UTC, as older builds do) the
    TZ_OFFSET of the user's newest snapshot; records of users with none are left out."""
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
        elif user_id in newest:  # today's TZ_OFFSET: across a DST change the start's own is right
            raw = record["raw"].get("startTime") if isinstance(record["raw"], dict) else None
            offset = start_offset(raw, newest[user_id])
            if offset is not None:
                offsets[record["record_id"]] = offset
    return offsets


def _newest_offsets(connection: Connection, portal: str, user_ids: Collection[int]) -> dict[int, int]:
    """TZ_OFFSET of each user's newest snapshot that has one."""
    table = snapshots_table.c
    offsets: dict[int, int] = {}
    for chunk in chunks(sorted(user_ids), 1000):
        newest = (
            select(table.user_id, func.max(table.polled_at).label("polled_at"))
            .where(
                table.portal == portal, one_of(connection, table.user_id, chunk), table.tz_offset.is_not(None)
            )
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
