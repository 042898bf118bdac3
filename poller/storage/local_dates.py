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
    """`rows` with work_date taken in each user's directory zone (`zones`, by user) where known.
    One loop without a call per row: a write dates every answer it stores."""
    if not zones:
        return list(rows)
    dated = []
    for row in rows:
        zone = zones.get(row.user_id)
        start = row.parsed.values["time_start"]
        if zone is not None and isinstance(start, datetime):
            local: date | None
            try:
                local = start.astimezone(zone).date()
            except (OverflowError, ValueError):  # outside the calendar: the answer's own date stays
                local = None
            if local is not None and local != row.parsed.values["work_date"]:
                row = _dated(row, local)
        dated.append(row)
    return dated


def _dated(row: SnapshotRow, local: date) -> SnapshotRow:
    """`row` with `local` as its work_date."""
    parsed = row.parsed
    values = {**parsed.values, "work_date": local}
    return replace(row, parsed=ParsedStatus(values, parsed.raw, parsed.warnings))
