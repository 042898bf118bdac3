"""Who is away when: whole-day absences, and the calendar events `calendar.accessibility.get` lists.

Each user takes one or two vacations a year and is sometimes sick, a pure function of the user
id and the year, so a test can ask for the truth. An absent user does not work that day (the
world asks `is_absent`). The calendar also holds a weekly meeting (ACCESSIBILITY `busy`) on
Tuesdays a user works, so a reader must keep only the `absent` events. Users 3 and 11 (the
world's EXPIRED and expiring days) are never absent: their one open day must stay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

NEVER_ABSENT = frozenset({3, 11})
_EPOCH = date(2020, 1, 1)


@dataclass(frozen=True)
class Absence:
    """Whole local days `first`..`last` (both included) a user is away."""

    event_id: int
    name: str
    first: date
    last: date

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@lru_cache(maxsize=65536)
def absences_in_year(user_id: int, year: int) -> tuple[Absence, ...]:
    """`user_id`'s absences that start in `year`, in order, none overlapping."""
    if user_id in NEVER_ABSENT:
        return ()
    rnd = random.Random(user_id * 7_777_777 + year * 13)
    days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    wanted = [("Vacation", rnd.randint(5, 12))]
    if rnd.random() < 0.6:
        wanted.append(("Vacation", rnd.randint(3, 7)))
    wanted += [("Sick leave", rnd.randint(1, 4)) for _ in range(rnd.randint(0, 3))]
    if rnd.random() < 0.5:
        wanted.append(("Day off", 1))
    found: list[Absence] = []
    for index, (name, length) in enumerate(wanted):
        first = date(year, 1, 1) + timedelta(days=rnd.randint(0, days - length))
        last = first + timedelta(days=length - 1)
        if any(a.first <= last + timedelta(days=1) and first <= a.last + timedelta(days=1) for a in found):
            continue  # keep spans apart: one event per absence
        found.append(Absence(user_id * 100_000 + (year % 100) * 100 + index, name, first, last))
    return tuple(sorted(found, key=lambda a: a.first))


def is_absent(user_id: int, day: date) -> bool:
    """Whether `user_id` is away on the local date `day`."""
    return any(a.covers(day) for a in absences_in_year(user_id, day.year))


def absences_between(user_id: int, first: date, last: date) -> list[Absence]:
    """The absences that touch `first`..`last` (both included)."""
    return [
        a
        for year in range(first.year, last.year + 1)
        for a in absences_in_year(user_id, year)
        if a.first <= last and first <= a.last
    ]


def absence_event(absence: Absence, offset: int, zone: str) -> dict[str, Any]:
    """A whole-day `absent` event as `calendar.accessibility.get` sends it (DATE_TO: the last day)."""
    start = datetime.combine(absence.first, datetime.min.time(), UTC) - timedelta(seconds=offset)
    end = datetime.combine(absence.last, datetime.min.time(), UTC) - timedelta(seconds=offset)
    return _event(absence.event_id, absence.name, (start, end), offset, zone, whole_day=True)


def meeting_event(user_id: int, day: date, offset: int, zone: str) -> dict[str, Any]:
    """The weekly meeting, 11:00-12:00 local: `busy`, not an absence."""
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=11, seconds=-offset)
    event_id = 1_000_000_000 + user_id * 10_000 + (day - _EPOCH).days
    return _event(event_id, "Weekly team meeting", (start, start + timedelta(hours=1)), offset, zone)


def _event(
    event_id: int,
    name: str,
    span: tuple[datetime, datetime],
    offset: int,
    zone: str,
    *,
    whole_day: bool = False,
) -> dict[str, Any]:
    start, end = span
    shown = "%d.%m.%Y" if whole_day else "%d.%m.%Y %H:%M:%S"
    local = timedelta(seconds=offset)
    return {
        "ID": str(event_id),
        "NAME": name,
        "DATE_FROM": (start + local).strftime(shown),
        "DATE_TO": (end + local).strftime(shown),
        "DATE_FROM_TS_UTC": str(int(start.timestamp())),
        "DATE_TO_TS_UTC": str(int(end.timestamp())),
        "~USER_OFFSET_FROM": offset,
        "~USER_OFFSET_TO": offset,
        "DT_SKIP_TIME": "Y" if whole_day else "N",
        "TZ_FROM": zone,
        "TZ_TO": zone,
        "ACCESSIBILITY": "absent" if whole_day else "busy",
        "IMPORTANCE": "normal",
        "EVENT_TYPE": "",
    }
