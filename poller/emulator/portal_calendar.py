"""The emulated portal's calendar: holidays, moved working days and the weekly days off.

One calendar for every year, as `calendar.settings.get` gives it (day.month lists without a
year). The world plans workdays by it: a weekday that is a holiday is mostly not worked, a
moved working day is, a weekly day off is not.
"""

from __future__ import annotations

from datetime import date
from typing import Any

YEAR_HOLIDAYS = "1.01,2.01,7.01,23.02,8.03,1.05,9.05,12.06,4.11"
YEAR_WORKDAYS = "31.12"
WEEK_HOLIDAYS = ("SA", "SU")
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

WORKDAY = "workday"
WEEKEND = "weekend"
HOLIDAY = "holiday"


def _day_months(listing: str) -> frozenset[tuple[int, int]]:
    pairs = (part.strip().split(".") for part in listing.split(",") if part.strip())
    return frozenset((int(day), int(month)) for day, month in pairs)


_HOLIDAYS = _day_months(YEAR_HOLIDAYS)
_MOVED_WORKDAYS = _day_months(YEAR_WORKDAYS)
_DAYS_OFF = frozenset(WEEKDAY_CODES.index(code) for code in WEEK_HOLIDAYS)


def day_kind(day: date) -> str:
    """WORKDAY, WEEKEND or HOLIDAY; a moved working day is a WORKDAY whatever its weekday."""
    key = (day.day, day.month)
    if key in _MOVED_WORKDAYS:
        return WORKDAY
    if key in _HOLIDAYS:
        return HOLIDAY
    return WEEKEND if day.weekday() in _DAYS_OFF else WORKDAY


def settings_result() -> dict[str, Any]:
    """The `calendar.settings.get` result, the display settings included as the portal sends them."""
    return {
        "work_time_start": "9",
        "work_time_end": "19",
        "year_holidays": YEAR_HOLIDAYS,
        "year_workdays": YEAR_WORKDAYS,
        "week_holidays": list(WEEK_HOLIDAYS),
        "week_start": "MO",
        "user_name_template": "#NAME# #LAST_NAME#",
        "sync_by_push": False,
        "user_show_login": True,
        "path_to_user": "/company/personal/user/#user_id#/",
        "path_to_user_calendar": "/company/personal/user/#user_id#/calendar/",
        "path_to_group": "/workgroups/group/#group_id#/",
        "path_to_group_calendar": "/workgroups/group/#group_id#/calendar/",
        "path_to_vr": "",
        "path_to_rm": "",
        "rm_iblock_type": "",
        "rm_iblock_id": "",
        "dep_manager_sub": True,
        "denied_superpose_types": [],
        "pathes_for_sites": "",
        "forum_id": "8",
        "rm_for_sites": True,
        "path_to_type_company_calendar": "",
        "path_to_type_location": "",
        "path_to_type_open_event": "",
    }
