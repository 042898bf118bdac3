"""Pay categories: a user's month of work split the way a payroll import wants it.

regular + overtime + weekend + holiday = worked: every worked second is in exactly one of them,
chosen by the kind of day (work on a day marked absent is regular). Overtime is work on a
workday beyond the day's own `overtime_norm` (the attendance view's threshold), else beyond
`daily_norm` (Russia's TK art. 99 and 152 count it per day); weekend and holiday
work is paid on its own (TK art. 153), so none of it is overtime. Night is a measure across
the others, not a fifth part: the seconds of work intervals inside the night window, which a
payroll adds a night supplement to on top of their category.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from poller.compliance.days import DayKind, Interval, WorkedDay
from poller.compliance.engine import group_by_user
from poller.compliance.violation import is_estimated, overtime

NIGHT = (time(22), time(6))  # TK RF art. 96; the config sets a portal's own bounds
DAILY_NORM = 8 * 3600


@dataclass(frozen=True)
class PayCategories:
    """One user's month (by the local date each work day began), in seconds."""

    user_id: int
    month: str
    worked: int
    regular: int
    overtime: int
    weekend: int
    holiday: int
    night: int
    estimated: bool


def pay_categories(
    days: Iterable[WorkedDay], night: tuple[time, time] = NIGHT, daily_norm: int = DAILY_NORM
) -> list[PayCategories]:
    """Per user and month, in that order: the categories of the days given.

    A day counts in the month its local date is in, night minutes after midnight included.
    Night is measured on `intervals`; a day known only by its outer span and a break total may
    count a break as night, and is marked estimated like any day resting on polls.
    """
    found = []
    for user_id, user_days in group_by_user(days).items():
        months: dict[str, list[WorkedDay]] = {}
        for day in user_days:
            months.setdefault(day.date.strftime("%Y-%m"), []).append(day)
        found += [_month(user_id, month, group, night, daily_norm) for month, group in months.items()]
    return found


def _month(
    user_id: int, month: str, days: list[WorkedDay], night: tuple[time, time], daily_norm: int
) -> PayCategories:
    """Sum one user's month."""
    worked = sum(day.worked_seconds for day in days)
    over = sum(overtime(day, daily_norm if day.overtime_norm is None else day.overtime_norm) for day in days)
    weekend = sum(day.worked_seconds for day in days if day.kind is DayKind.WEEKEND)
    holiday = sum(day.worked_seconds for day in days if day.kind is DayKind.HOLIDAY)
    nights = sum(night_seconds(i, *night) for day in days for i in day.intervals)
    return PayCategories(
        user_id=user_id,
        month=month,
        worked=worked,
        regular=worked - over - weekend - holiday,
        overtime=over,
        weekend=weekend,
        holiday=holiday,
        night=round(nights),
        estimated=any(is_estimated(day) or day.longest_stretch is not None for day in days),
    )


def night_seconds(interval: Interval, start: time, end: time) -> float:
    """Real seconds of `interval` inside the nightly window [start, end) of its own zone's wall clock.

    The window crosses midnight when end <= start. Its bounds are placed on the local clock
    and measured on the real timeline, so the night into the spring DST change is an hour
    shorter and the autumn one an hour longer, as worked.
    """
    zone = interval.start.tzinfo
    day = interval.start.date() - timedelta(days=1)
    last = interval.end.astimezone(zone).date()
    total = 0.0
    while day <= last:
        window_end_day = day + timedelta(days=1) if end <= start else day
        opens = datetime.combine(day, start, tzinfo=zone).timestamp()
        closes = datetime.combine(window_end_day, end, tzinfo=zone).timestamp()
        total += max(0.0, min(interval.end_ts, closes) - max(interval.start_ts, opens))
        day += timedelta(days=1)
    return total
