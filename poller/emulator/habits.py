"""Whether a simulated employee works on a day, and whether they come late or leave early.

The world's ordinary days keep the norms (`norms.py`). On top of them, from the user id and
the date alone: an absent user does not work; weekly days off are not worked; a portal holiday
is worked by about one user in ten; about one working day in twelve starts late (after max
start plus the allowed delta) and one in sixteen ends early (before min finish less the
delta). The night-shift user keeps a free schedule and neither comes late nor leaves early.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from poller.emulator import absences, norms, portal_calendar

HOLIDAY_WORKERS = 0.1
LATE_DAYS = 1 / 12
EARLY_DAYS = 1 / 16


@dataclass(frozen=True)
class Habit:
    """How a worked day departs from the ordinary: local seconds from midnight, None: as planned."""

    start: int | None = None  # a late start
    finish: int | None = None  # an early finish


ORDINARY = Habit()


def habit(user_id: int, local_day: date) -> Habit | None:
    """How `user_id` works on `local_day`; None: not at all (day off, holiday, absence)."""
    kind = portal_calendar.day_kind(local_day)
    if kind == portal_calendar.WEEKEND or absences.is_absent(user_id, local_day):
        return None
    rnd = random.Random(user_id * 2_000_029 + local_day.toordinal() * 7 + 3)
    if kind == portal_calendar.HOLIDAY and rnd.random() >= HOLIDAY_WORKERS:
        return None
    if user_id == norms.NIGHT_SHIFT_USER:
        return ORDINARY
    roll = rnd.random()
    rule = norms.user_norms(user_id)
    if roll < LATE_DAYS:
        return Habit(start=rule.max_start + rule.allowed_delta + rnd.randint(60, 3600))
    if roll < LATE_DAYS + EARLY_DAYS:
        return Habit(finish=rule.min_finish - rule.allowed_delta - rnd.randint(300, 3600))
    return ORDINARY
