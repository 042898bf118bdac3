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
from datetime import date, datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any, cast

from poller.status import ParsedStatus

if TYPE_CHECKING:
    from poller.storage.snapshots import SnapshotRow


def dated_in_zones(rows: Sequence[SnapshotRow], zones: Mapping[int, tzinfo]) -> list[SnapshotRow]:
    """`rows` with work_date taken in each user's directory zone (`zones`, by user) where known.
    One loop without a call per row where the (start, zone) was dated before: a write dates
    every answer it stores, and an open day's start comes again poll after poll."""
    if not zones:
        return list(rows)
    dated = []
    known = _LOCAL_DATES.get
    for row in rows:
        zone = zones.get(row.user_id)
        if zone is not None:
            values = row.parsed.values
            start = values["time_start"]
            if start is None:
                dated.append(row)
                continue
            local = known((start, zone), _UNKNOWN) if start.__class__ is datetime else _UNKNOWN
            if local is _UNKNOWN:
                local = _local_date(start, zone)
            if local is not None and local != values["work_date"]:
                row = _dated(row, cast(date, local))
        dated.append(row)
    return dated


# The local dates of starts dated lately, by (start, zone). Only a start with a fixed offset is
# kept: two instants of a zone's repeated hour compare equal. Emptied when full (some 3 MB).
_LOCAL_DATES: dict[tuple[datetime, tzinfo], date | None] = {}
_DATES_KEPT = 1 << 15
_UNKNOWN = object()


def _local_date(start: Any, zone: tzinfo) -> date | None:
    """The date of `start` in `zone` (None: no datetime, or outside the calendar there)."""
    if not isinstance(start, datetime):
        return None
    try:
        local: date | None = start.astimezone(zone).date()
    except (OverflowError, ValueError):  # outside the calendar: the answer's own date stays
        local = None
    if type(start.tzinfo) is timezone:
        if len(_LOCAL_DATES) >= _DATES_KEPT:
            _LOCAL_DATES.clear()
        _LOCAL_DATES[(start, zone)] = local
    return local


def _dated(row: SnapshotRow, local: date) -> SnapshotRow:
    """`row` with `local` as its work_date."""
    parsed = row.parsed
    values = {**parsed.values, "work_date": local}
    return replace(row, parsed=ParsedStatus(values, parsed.raw, parsed.warnings))
