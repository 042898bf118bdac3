"""What the compliance rules read: one user's worked day, as plain frozen values.

The database (workdays, norms, calendar, absences) fills these later; keeping them free of
SQL and HTTP lets the rules be tested with days written by hand. Times are aware datetimes in
the user's own zone, because the law counts local days, nights and Sundays, while every
duration is measured on the real (UTC) timeline so a DST change neither adds nor loses an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from itertools import pairwise


class DayKind(StrEnum):
    """What the calendar says the day is for this user (absence wins over the calendar)."""

    WORKDAY = "workday"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    ABSENT = "absent"


class DayStatus(StrEnum):
    """How the work day ended: Bitrix24's CLOSED and EXPIRED, and OPEN for OPENED or PAUSED."""

    CLOSED = "closed"
    EXPIRED = "expired"
    OPEN = "open"


@dataclass(frozen=True)
class Interval:
    """A stretch of work; its end is exclusive. Both ends carry the user's zone."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise ValueError(f"an interval needs aware datetimes, got {self.start!r} .. {self.end!r}")
        if self.end_ts < self.start_ts:
            raise ValueError(f"an interval ends before it starts: {self.start} .. {self.end}")

    @property
    def start_ts(self) -> float:
        """Unix seconds: aware datetimes sharing a ZoneInfo subtract as wall time, timestamps do not."""
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        """Unix seconds of the end (see start_ts)."""
        return self.end.timestamp()

    @property
    def seconds(self) -> float:
        """Real elapsed seconds, DST included."""
        return self.end_ts - self.start_ts


@dataclass(frozen=True)
class Norms:
    """The user's Bitrix24 norms (timeman.settings) as seconds from midnight or durations; None: unknown."""

    max_start: int | None = None
    min_finish: int | None = None
    min_duration: int | None = None
    allowed_delta: int | None = None


@dataclass(frozen=True)
class WorkedDay:
    """One user's calendar day: its kind, its work and the figures Bitrix24 gave for it.

    Breaks come in one of two shapes. Either `intervals` lists the work stretches and the gaps
    between them are the breaks (`longest_stretch` left None), or only a poll estimate is known:
    `intervals` holds the day's outer span, `break_seconds` the total of pauses, and
    `longest_stretch` the longest stretch without a break as far as the polls saw it. `estimated`
    marks a day whose figures rest on such estimates; the violations built from it say so.
    """

    user_id: int
    date: date
    kind: DayKind
    intervals: tuple[Interval, ...] = ()
    worked_seconds: int = 0
    break_seconds: int = 0
    status: DayStatus = DayStatus.CLOSED
    norms: Norms = Norms()
    longest_stretch: int | None = None
    estimated: bool = False
    # Seconds of work before overtime begins, as the attendance view measures this day (a
    # schedule's shift, 0 on a day off the schedule, the minimum duration); None: the caller's norm.
    overtime_norm: int | None = None

    def __post_init__(self) -> None:
        stamps = [(i.start_ts, i.end_ts) for i in self.intervals]
        if stamps != sorted(stamps) or any(a[1] > b[0] for a, b in pairwise(stamps)):
            raise ValueError(f"user {self.user_id} {self.date}: intervals must be ordered and not overlap")

    @property
    def worked(self) -> bool:
        """Whether the day holds any work at all."""
        return self.worked_seconds > 0 or any(i.seconds > 0 for i in self.intervals)

    def gaps(self, min_part: int = 0) -> list[float] | None:
        """The pauses between intervals of at least `min_part` seconds; None when only totals are known."""
        if self.longest_stretch is not None:
            return None
        pairs = pairwise(self.intervals)
        return [gap for a, b in pairs if (gap := b.start_ts - a.end_ts) > 0 and gap >= min_part]

    def stretch(self, min_part: int = 0) -> float:
        """The longest work without a pause of at least `min_part` seconds; shorter pauses do not end it."""
        if self.longest_stretch is not None:
            return self.longest_stretch
        longest = 0.0
        run_start: float | None = None
        previous_end = 0.0
        for interval in self.intervals:
            if run_start is None or interval.start_ts - previous_end >= max(min_part, 1):
                run_start = interval.start_ts
            previous_end = interval.end_ts
            longest = max(longest, previous_end - run_start)
        return longest
