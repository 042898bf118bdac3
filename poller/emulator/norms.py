"""The emulated portal's working-time norms: `timeman.settings` per user, and two schedules.

The norms fit the world's ordinary days: those start between 08:00 and 09:31 local time and
last 8-9 hours plus breaks, so an ordinary day is never late, early or short by these norms.
What breaks them are the habits (`habits.py`): a late start is after max start plus the
allowed delta, an early leave before min finish less the delta. The night-shift user and the
user without records keep a free schedule; the latter has tracking off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poller.emulator.record import render_hms

NO_RECORDS_USER = 2
NIGHT_SHIFT_USER = 4


@dataclass(frozen=True)
class Norms:
    """One user's norms; times are seconds from local midnight, durations seconds."""

    tracked: bool
    free: bool
    max_start: int
    min_finish: int
    min_duration: int
    allowed_delta: int


_PLANS = (
    Norms(True, False, 9 * 3600 + 30 * 60, 16 * 3600, 8 * 3600, 15 * 60),
    Norms(True, False, 9 * 3600 + 45 * 60, 16 * 3600, 8 * 3600, 10 * 60),
    Norms(True, False, 10 * 3600, 15 * 3600 + 30 * 60, 7 * 3600 + 30 * 60, 30 * 60),
)
_NIGHT = Norms(True, True, 21 * 3600 + 45 * 60, 4 * 3600, 8 * 3600, 15 * 60)


def user_norms(user_id: int) -> Norms:
    """The norms of `user_id`: one of three plans by id; every 10th user has a free schedule."""
    if user_id == NIGHT_SHIFT_USER:
        return _NIGHT
    norms = _PLANS[user_id % len(_PLANS)]
    if user_id == NO_RECORDS_USER:
        return Norms(False, True, norms.max_start, norms.min_finish, norms.min_duration, norms.allowed_delta)
    if user_id % 10 == 0:
        return Norms(True, True, norms.max_start, norms.min_finish, norms.min_duration, norms.allowed_delta)
    return norms


def settings_result(user_id: int, admin: bool | None) -> dict[str, Any]:
    """The `timeman.settings` result; ADMIN only in the caller's own answer (`admin` not None)."""
    norms = user_norms(user_id)
    result: dict[str, Any] = {
        "UF_TIMEMAN": norms.tracked,
        "UF_TM_FREE": norms.free,
        "UF_TM_MAX_START": render_hms(norms.max_start),
        "UF_TM_MIN_FINISH": render_hms(norms.min_finish),
        "UF_TM_MIN_DURATION": render_hms(norms.min_duration),
        "UF_TM_ALLOWED_DELTA": render_hms(norms.allowed_delta),
    }
    if admin is not None:
        result["ADMIN"] = admin
    return result


def _schedule(
    schedule_id: int,
    name: str,
    kind: str,
    shift: tuple[int, int, int, str],
    rules: tuple[int, int],
    for_all: bool,
) -> dict[str, Any]:
    """A schedule as the portal sends it; `rules` are MAX_EXACT_START and MIN_EXACT_END (-1: off)."""
    start, end, break_seconds, days = shift
    return {
        "ID": schedule_id,
        "NAME": name,
        "SCHEDULE_TYPE": kind,
        "REPORT_PERIOD": "MONTH",
        "REPORT_PERIOD_OPTIONS": {"START_WEEK_DAY": 0},
        "CALENDAR_ID": schedule_id,
        "ALLOWED_DEVICES": {"browser": True},
        "DELETED": "0",
        "IS_FOR_ALL_USERS": for_all,
        "WORKTIME_RESTRICTIONS": ["[]"],
        "CONTROLLED_ACTIONS": 3,
        "UPDATED_BY": 1,
        "DELETED_BY": 0,
        "DELETED_AT": "",
        "CREATED_BY": 0,
        "CREATED_AT": "2019-09-19T21:22:22+02:00",
        "SHIFTS": [
            {
                "ID": schedule_id,
                "NAME": "",
                "BREAK_DURATION": break_seconds,
                "WORK_TIME_START": start,
                "WORK_TIME_END": end,
                "WORK_DAYS": days,
                "SCHEDULE_ID": schedule_id,
                "DELETED": False,
            }
        ],
        "CALENDAR": {
            "ID": schedule_id,
            "NAME": "",
            "PARENT_CALENDAR_ID": 0,
            "SYSTEM_CODE": "",
            "EXCLUSIONS": [],
        },
        "SCHEDULE_VIOLATION_RULES": {
            "ID": schedule_id,
            "SCHEDULE_ID": schedule_id,
            "ENTITY_CODE": "UA",
            "MAX_EXACT_START": rules[0],
            "MIN_EXACT_END": rules[1],
            "MAX_OFFSET_START": -1,
            "MIN_OFFSET_END": -1,
            "RELATIVE_START_FROM": -1,
            "RELATIVE_START_TO": -1,
            "RELATIVE_END_FROM": -1,
            "RELATIVE_END_TO": -1,
            "MIN_DAY_DURATION": 8 * 3600,
            "MAX_ALLOWED_TO_EDIT_WORK_TIME": 300,
            "MAX_WORK_TIME_LACK_FOR_PERIOD": 3600,
            "PERIOD_TIME_LACK_AGENT_ID": 309429 + schedule_id,
            "MAX_SHIFT_START_DELAY": 900 if kind == "SHIFT" else -1,
            "MISSED_SHIFT_START": 0,
            "USERS_TO_NOTIFY": {
                "FIXED_START_END": ["U1"],
                "FIXED_PER_RECORD": ["U1"],
                "FIXED_EDIT_WORKTIME": ["U1"],
                "FIXED_PERIODIC": ["U1"],
                "SHIFT_DELAY": [],
                "SHIFT_MISSED_START": [],
            },
        },
    }


SCHEDULES: dict[int, dict[str, Any]] = {
    1: _schedule(
        1,
        "For all employees",
        "FIXED",
        (9 * 3600, 18 * 3600, 3600, "12345"),
        (9 * 3600 + 45 * 60, 16 * 3600),
        True,
    ),
    4: _schedule(4, "Night shift", "SHIFT", (20 * 3600, 5 * 3600, 3600, "12345"), (-1, -1), False),
}
"""`timeman.schedule.get` results by id; any other id answers an empty array."""
