"""How a workday's figures follow from the polls that saw it and from the portal's record.

Pure functions over plain values. The write path applies `advance` poll by poll; a rebuild
(and revision 0004's fill) applies it to a day's stored snapshots in order: the same steps, so
a day kept up to date on write equals the day computed again from its snapshots.

The rules, per status of the newest poll of the day:
- CLOSED: DURATION.
- OPENED (or a status the poller does not know): from TIME_START to the last poll, less TIME_LEAKS.
- PAUSED: up to the start of the running pause, less TIME_LEAKS (which does not hold the running
  pause). The start is known only within the polls: after the last poll that saw the day
  running, at or before the first poll that saw it paused. With TIME_FINISH null (current
  builds) the estimate takes the earliest moment, the last poll that saw it running (TIME_START
  when no poll did), so a running pause never counts as worked and the error is at most one
  poll interval; with the pause moment in TIME_FINISH (2024 builds) that moment, held within
  the same bounds.
- EXPIRED: up to the suggested end if it came before the last poll, else to the last poll.
Then clamped: never below 0, never above the time from TIME_START to the end (TIME_FINISH of a
closed day, else the last poll) less TIME_LEAKS.

A closed record (`timeman.record.list` with an end) is the portal's own account and wins: its
end, duration, break, status and approval, source "record" (the work date stays the polls').
An open record does not replace the polls' estimate (the polls are newer); with no poll of
the day it is estimated up to when it was fetched (an EXPIRED one: unknown, null).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from poller.fields import MAX_DURATION

Day = dict[str, Any]  # the workdays columns below, without portal, user_id, time_start and names

DAY_COLUMNS = (
    "work_date",
    "time_finish",
    "tz_offset",
    "status",
    "worked_seconds",
    "worked_is_estimate",
    "leaks_seconds",
    "first_seen_at",
    "last_seen_at",
    "pending_approval",
    "source",
    "record_id",
)


class Poll(NamedTuple):
    """What the polls said of one workday from `polled_at` to `last_seen_at` (one snapshots row).

    A named tuple: a cycle makes one per answer, and a tuple is made several times faster than
    a frozen dataclass."""

    polled_at: datetime
    last_seen_at: datetime
    status: str | None
    time_start: datetime
    time_finish: datetime | None
    time_finish_default: datetime | None
    work_date: date | None
    duration_seconds: int | None
    leaks_seconds: int | None
    active: bool | None
    tz_offset: int | None = None
    record_id: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> Poll:
        """A Poll from a snapshots row (or mapping) that has a time_start."""
        return cls(
            polled_at=row["polled_at"],
            last_seen_at=row["last_seen_at"],
            status=row["status"],
            time_start=row["time_start"],
            time_finish=row["time_finish"],
            time_finish_default=row["time_finish_default"],
            work_date=row["work_date"],
            duration_seconds=row["duration_seconds"],
            leaks_seconds=row["time_leaks_seconds"],
            active=row["active"],
            tz_offset=row["tz_offset"],
            record_id=row["record_id"],
        )


def has_polls(day: Day | None) -> bool:
    """Whether `day` holds what polls said (not only a record)."""
    return day is not None and day["first_seen_at"] is not None


def is_late(day: Day | None, poll: Poll) -> bool:
    """Whether `poll` is no newer than what `day` has seen: a replay, or an answer out of order."""
    return day is not None and day["last_seen_at"] is not None and poll.polled_at <= day["last_seen_at"]


def advance(day: Day | None, poll: Poll) -> Day:
    """The day after one more poll, newer than any before it."""
    if day is not None and day["source"] == "record" and not day["worked_is_estimate"]:
        return {  # a closed record wins: the polls only say when they saw the day
            **day,
            "first_seen_at": min(day["first_seen_at"] or poll.polled_at, poll.polled_at),
            "last_seen_at": max(day["last_seen_at"] or poll.last_seen_at, poll.last_seen_at),
        }
    seen = day if day is not None and day["source"] == "polls" and has_polls(day) else None
    return dict(zip(DAY_COLUMNS, polled_day(seen, poll), strict=True))


def polled_day(seen: Day | None, poll: Poll) -> tuple[Any, ...]:
    """The values of DAY_COLUMNS of a day the polls decide after one more poll: `seen`, the
    stored day of polls (None: the polls have not seen it yet), moved on by `poll`. A tuple:
    the full way of a write makes one per poll (storage.workdays)."""
    status = poll.status
    return (  # in the order of DAY_COLUMNS
        poll.work_date,
        poll.time_finish if status == "CLOSED" else None,
        poll.tz_offset,
        status,
        worked_after(seen, poll),
        status != "CLOSED",
        poll.leaks_seconds,
        seen["first_seen_at"] if seen is not None else poll.polled_at,
        poll.last_seen_at,
        poll.active is False,
        "polls",
        poll.record_id or (seen["record_id"] if seen is not None else None),
    )


def worked_after(seen: Day | None, poll: Poll) -> int | None:
    """The worked_seconds of polled_day(seen, poll). Apart: the write of a cycle's plain days
    (storage.plain_days) takes the other values from the snapshot's driver values."""
    start, leaks, status = poll.time_start, poll.leaks_seconds or 0, poll.status
    last_seen = poll.last_seen_at
    end = (poll.time_finish or last_seen) if status == "CLOSED" else last_seen
    span = seconds(end, start) - leaks  # the most a day can have worked
    worked: int | None
    if status == "CLOSED":
        worked = poll.duration_seconds
    elif status == "PAUSED":
        if seen is not None and seen["status"] == "PAUSED" and seen["leaks_seconds"] == poll.leaks_seconds:
            worked = seen["worked_seconds"]  # the same pause: its start was bounded when it was first seen
        else:
            lowest = seen["last_seen_at"] if seen is not None else start
            pause = max(lowest, min(poll.time_finish or lowest, poll.polled_at))
            worked = seconds(pause, start) - leaks
    elif status == "EXPIRED":
        suggested = poll.time_finish_default
        worked = seconds(min(suggested, last_seen), start) - leaks if suggested else span
    else:
        worked = span
    return clamp(worked, span)


def with_record(polled: Day | None, record: Any, tz_offset: int | None = None) -> Day:
    """The day as the portal's record (a workday_records row) and the polls together say it.

    Its work_date and tz_offset are the polls' where they saw the day (TZ_OFFSET: the user's
    own), else the date at `tz_offset` (the caller's best knowledge of the user's zone), else
    at startTime's own offset (which older builds render in UTC).
    """
    closed = record["end_time"] is not None
    if not closed and polled is not None:
        return {**polled, "record_id": record["record_id"]}
    estimate = seconds(record["fetched_at"], record["start_time"]) - (record["break_seconds"] or 0)
    if closed:
        worked = record["duration_seconds"]
    else:  # an EXPIRED day has no end to estimate to: records carry no suggested end
        worked = None if record["status"] == "EXPIRED" else clamp(estimate, estimate)
    offset = tz_offset if tz_offset is not None else _own_offset(record)
    local = (
        record["work_date"] if offset is None else (record["start_time"] + timedelta(seconds=offset)).date()
    )
    return {
        "work_date": polled["work_date"] if polled is not None else local,
        "time_finish": record["end_time"],
        "tz_offset": polled["tz_offset"] if polled is not None else offset,
        "status": record["status"],
        "worked_seconds": worked,
        "worked_is_estimate": not closed,
        "leaks_seconds": record["break_seconds"],
        "first_seen_at": polled["first_seen_at"] if polled is not None else None,
        "last_seen_at": polled["last_seen_at"] if polled is not None else None,
        "pending_approval": record["approved"] is False,
        "source": "record",
        "record_id": record["record_id"],
    }


def _own_offset(record: Any) -> int | None:
    """The UTC offset startTime was written in, in seconds (None if the raw item has none)."""
    raw = record["raw"].get("startTime") if isinstance(record["raw"], dict) else None
    try:
        offset = datetime.fromisoformat(raw).utcoffset() if isinstance(raw, str) else None
    except ValueError:
        return None
    return None if offset is None else int(offset.total_seconds())


def seconds(later: datetime, earlier: datetime) -> int:
    """Whole seconds from `earlier` to `later`, rounded (negative when `later` is earlier)."""
    return round((later - earlier).total_seconds())


def clamp(worked: int | None, ceiling: int) -> int | None:
    """`worked` within 0 .. `ceiling` (0 when the ceiling itself is negative) and the longest
    duration a column holds (fields.MAX_DURATION); None stays None."""
    if worked is None:
        return None
    return max(0, min(worked, ceiling, MAX_DURATION))
