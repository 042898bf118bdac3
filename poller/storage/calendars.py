"""A portal's calendar per year (holidays, moved working days, weekly days off), versioned.

One row per portal, year and version in portal_calendars: a refresh that finds the same days
and the same source adds nothing; a different one closes the current version and adds one
(poller.storage.versioned), so what a closed month was judged by can still be read. Days are
kept as ISO dates and weekday codes in comma-separated text ("2026-01-01,2026-01-07",
"SA,SU"), which the attendance view matches with LIKE on both databases.
"""

from __future__ import annotations

import calendar as month_days
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select

from poller.models import portal_calendars_table
from poller.storage.failures import database_call
from poller.storage.versioned import VersionsSaved, save_versions

WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # date.weekday() order
SOURCES = ("portal", "config", "holidays-package")
DEFAULT_WEEK_HOLIDAYS = "SA,SU"  # what the view assumes for a year without a calendar
WORKDAY, WEEKEND, HOLIDAY = "workday", "weekend", "holiday"


@dataclass(frozen=True)
class CalendarMonth:
    """The kind of each day of a month; `source` None: no calendar stored for its year (then
    Saturday and Sunday are the days off, as in the attendance view)."""

    days: dict[date, str] = field(default_factory=dict)
    source: str | None = None


@database_call
def save_calendar(
    engine: Engine,
    portal: str,
    year: int,
    *,
    holidays: Iterable[date],
    moved_workdays: Iterable[date],
    week_holidays: Iterable[int],
    source: str,
    seen_at: datetime,
    raw: Mapping[str, Any] | None = None,
) -> VersionsSaved:
    """Store `year`'s calendar as read (or built) at `seen_at`.

    `week_holidays`: weekday numbers, 0 = Monday (date.weekday()). `source`: 'portal',
    'config' or 'holidays-package'; a change of source alone is a new version too.
    """
    if source not in SOURCES:
        raise ValueError(f"calendar source {source!r}: expected one of {SOURCES}")
    values = {
        "holidays": _dates(holidays, year),
        "moved_workdays": _dates(moved_workdays, year),
        "week_holidays": ",".join(WEEKDAY_CODES[day] for day in sorted(set(week_holidays))),
        "source": source,
        "raw": dict(raw) if raw is not None else None,
    }
    compared = ("holidays", "moved_workdays", "week_holidays", "source")
    with engine.begin() as connection:
        return save_versions(
            connection,
            portal_calendars_table,
            portal,
            ("year",),
            {(year,): values},
            seen_at,
            compared=compared,
        )


def _dates(days: Iterable[date], year: int) -> str:
    chosen = sorted(set(days))
    stray = [day for day in chosen if day.year != year]
    if stray:
        raise ValueError(f"calendar of {year} given days of another year: {stray[0].isoformat()}")
    return ",".join(day.isoformat() for day in chosen)


@database_call
def get_calendar_days(engine: Engine, portal: str, month: date) -> CalendarMonth:
    """Each day of `month`'s month: 'workday', 'weekend' or 'holiday', by the year's current
    calendar (a moved working day is a workday)."""
    table = portal_calendars_table.c
    query = select(table.holidays, table.moved_workdays, table.week_holidays, table.source).where(
        table.portal == portal, table.year == month.year, table.valid_to.is_(None)
    )
    with engine.connect() as connection:
        row = connection.execute(query).one_or_none()
    return calendar_month(row, month)


def calendar_month(row: Any, month: date) -> CalendarMonth:
    """The days of `month`'s month by one stored calendar `row` (holidays, moved_workdays,
    week_holidays, source); without one, Saturday and Sunday off and no holidays."""
    holidays = set(_split(row.holidays)) if row else set()
    moved = set(_split(row.moved_workdays)) if row else set()
    week = set(_split(row.week_holidays if row else DEFAULT_WEEK_HOLIDAYS))
    days: dict[date, str] = {}
    for number in range(1, month_days.monthrange(month.year, month.month)[1] + 1):
        day = month.replace(day=number)
        if day.isoformat() in moved:
            days[day] = WORKDAY
        elif day.isoformat() in holidays:
            days[day] = HOLIDAY
        else:
            days[day] = WEEKEND if WEEKDAY_CODES[day.weekday()] in week else WORKDAY
    return CalendarMonth(days, row.source if row else None)


def _split(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


@database_call
def get_calendar_years(engine: Engine, portal: str, years: Iterable[int]) -> set[int]:
    """Which of `years` have a calendar stored (any version): a backfill adds none over them,
    since a past year's stored calendar is what was seen then."""
    wanted = sorted(set(years))
    if not wanted:
        return set()
    table = portal_calendars_table.c
    query = select(table.year).where(table.portal == portal, table.year.in_(wanted)).distinct()
    with engine.connect() as connection:
        return set(connection.scalars(query))
