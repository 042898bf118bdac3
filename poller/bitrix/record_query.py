"""What to ask `timeman.record.list` (REST 3.0): one page of one user's records in a window."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

RECORDS_METHOD = "timeman.record.list"
PAGE_SIZE = 50
FIELDS = ("id", "userId", "startTime", "endTime", "duration", "breakLength", "state", "isApproved")
# A local date exists somewhere between UTC+14 and UTC-12: the window covers it everywhere.
EARLIEST_ZONE = timezone(timedelta(hours=14))
LATEST_ZONE = timezone(timedelta(hours=-12))


def record_window(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The instants whose local date lies in [date_from, date_to] in at least one time zone.

    Users of one portal live in different zones, and an instant names a local date only
    with a zone: from `date_from` 00:00 at UTC+14 to the end of `date_to` at UTC-12 takes
    every local day of the range, whatever the user's zone, and up to a day more at each end.
    """
    start = datetime.combine(date_from, time(), EARLIEST_ZONE)
    end = datetime.combine(date_to + timedelta(days=1), time(), LATEST_ZONE)
    return start, end


def record_query(user_id: int, window: tuple[datetime, datetime], page: int) -> dict[str, Any]:
    """The `timeman.record.list` query for one page of one user's records in `window`."""
    start, end = window
    return {
        "filter": [
            ["userId", user_id],
            ["startTime", ">=", start.isoformat()],
            ["startTime", "<", end.isoformat()],
        ],
        "select": list(FIELDS),
        "order": {"startTime": "ASC", "id": "ASC"},
        "pagination": {"page": page, "limit": PAGE_SIZE},
    }
