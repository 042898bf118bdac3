"""A portal's calendar of one year, from the portal, the config's extra holidays and the `holidays` package.

The portal's own calendar (calendar.settings.get) wins. When it has no holidays, or could not
be read (no `calendar` scope), the holidays of the portal's `holidays_country` (and
`holidays_subdivision`) from the `holidays` package stand in; the config's `extra_holidays`
of the year are added either way. `source` says where the holidays came from: 'portal',
'holidays-package', or 'config' (the config's extra holidays alone, or added to the
portal's). Without the portal's calendar the days off are Saturday and Sunday.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from poller.bitrix.calendar import PortalCalendar
from poller.config import PortalConfig

WEEKEND = frozenset({5, 6})  # date.weekday(): Saturday, Sunday


@dataclass(frozen=True)
class CalendarYear:
    """What save_calendar stores for one year."""

    year: int
    holidays: tuple[date, ...]
    moved_workdays: tuple[date, ...]
    week_holidays: frozenset[int]
    source: str
    raw: Mapping[str, Any]


def calendar_year(portal: PortalConfig, year: int, read: PortalCalendar | None) -> CalendarYear | None:
    """The year's calendar for `portal`; None when there is nothing to go by (no portal
    calendar, no country, no extra holidays in the year): the attendance view then assumes
    Saturday and Sunday off and no holidays."""
    extra = tuple(day for day in portal.extra_holidays if day.year == year)
    raw: dict[str, Any] = {"portal": dict(read.raw) if read is not None else None}
    if extra:
        raw["extra_holidays"] = [day.isoformat() for day in extra]
    holidays: tuple[date, ...] = read.holidays_in(year) if read is not None else ()
    source = "portal"
    if not holidays and portal.holidays_country is not None:
        holidays = package_holidays(portal.holidays_country, portal.holidays_subdivision, year)
        raw["holidays_package"] = {
            "country": portal.holidays_country,
            "subdivision": portal.holidays_subdivision,
        }
        source = "holidays-package"
    elif extra:
        source = "config"
    elif read is None:
        return None
    return CalendarYear(
        year=year,
        holidays=tuple(sorted({*holidays, *extra})),
        moved_workdays=read.moved_workdays_in(year) if read is not None else (),
        week_holidays=read.week_holidays if read is not None and read.week_holidays else WEEKEND,
        source=source,
        raw=raw,
    )


def package_holidays(country: str, subdivision: str | None, year: int) -> tuple[date, ...]:
    """The public holidays of `country` (and `subdivision`) in `year`, from the `holidays` package."""
    import holidays  # imported here, where a country is configured: most configs never need it

    return tuple(sorted(holidays.country_holidays(country, subdiv=subdivision, years=year)))
