"""The local date a polled day is filed under: from the user's time zone where the directory
knows it.

parse_status can only read the answer: it takes the offset TIME_START was written in, or
TZ_OFFSET where the start came in UTC (older builds). TZ_OFFSET is the user's offset when the
portal answered, which on a DST night is not the one the day began in: a Berlin start at
2026-10-24T22:30:00+00:00 (00:30 CEST on the 25th) answered with TZ_OFFSET 3600 would be
filed under the 24th. The directory's TIME_ZONE (users.time_zone, an IANA name) says the
offset at any instant, so where it names a known zone the date is the start's in that zone.
Only `work_date` changes: TZ_OFFSET stays as the portal sent it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING

from poller.status import ParsedStatus

if TYPE_CHECKING:
    from poller.storage.snapshots import SnapshotRow


def dated_in_zones(rows: Sequence[SnapshotRow], zones: Mapping[int, tzinfo]) -> list[SnapshotRow]:
    """`rows` with work_date taken in each user's directory zone (`zones`, by user) where known."""
    if not zones:
        return list(rows)
    return [_dated(row, zones[row.user_id]) if row.user_id in zones else row for row in rows]


def zone_date(instant: datetime, zone: tzinfo) -> date | None:
    """The calendar date in `zone` at `instant`; None where it falls outside the calendar."""
    try:
        return instant.astimezone(zone).date()
    except (OverflowError, ValueError):
        return None


def _dated(row: SnapshotRow, zone: tzinfo) -> SnapshotRow:
    start = row.parsed.values["time_start"]
    if not isinstance(start, datetime):
        return row
    local = zone_date(start, zone)
    if local is None or local == row.parsed.values["work_date"]:
        return row
    parsed = row.parsed
    values = {**parsed.values, "work_date": local}
    return replace(row, parsed=ParsedStatus(values, parsed.raw, parsed.warnings))
