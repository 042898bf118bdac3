"""The portal's calendar (`calendar.settings.get`) and its users' absences (`calendar.accessibility.get`).

Both need the `calendar` scope. Holidays and moved working days come as "day.month" lists
that hold for every year ("1.01,2.01,..."), the weekly days off as ["SA", "SU"]. Absences
are the calendar events marked ACCESSIBILITY "absent" (vacations, sick leave entered in the
calendar); the portal's Absence Chart itself has no REST read. A bad value or event costs
only itself and is named in one line.
"""

from __future__ import annotations

import calendar as weekdays
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from poller.bitrix.client import PortalClient
from poller.bitrix.values import Problems, integer, show, text
from poller.errors import TransportError

SETTINGS_METHOD = "calendar.settings.get"
ACCESSIBILITY_METHOD = "calendar.accessibility.get"
USERS_PER_REQUEST = 50
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WORKDAY, WEEKEND, HOLIDAY = "workday", "weekend", "holiday"
DayMonth = tuple[int, int]


@dataclass(frozen=True)
class PortalCalendar:
    """Holidays and moved working days as (day, month) pairs for every year; days off as weekday
    numbers (0 = Monday); the working hours' bounds in seconds from midnight."""

    holidays: frozenset[DayMonth]
    moved_workdays: frozenset[DayMonth]
    week_holidays: frozenset[int]
    work_time_start: int | None
    work_time_end: int | None
    raw: Mapping[str, Any]
    warnings: tuple[str, ...] = ()

    @property
    def week_holiday_codes(self) -> tuple[str, ...]:
        """The weekly days off as the portal names them, Monday first: ("SA", "SU")."""
        return tuple(WEEKDAY_CODES[day] for day in sorted(self.week_holidays))

    def holidays_in(self, year: int) -> tuple[date, ...]:
        """The holidays of `year`, in order (29.02 only in a leap year)."""
        return _dates(self.holidays, year)

    def moved_workdays_in(self, year: int) -> tuple[date, ...]:
        """The working days of `year` moved onto a day off, in order."""
        return _dates(self.moved_workdays, year)

    def day_kind(self, day: date) -> str:
        """WORKDAY, WEEKEND or HOLIDAY by this calendar; a moved working day is a WORKDAY."""
        key = (day.day, day.month)
        if key in self.moved_workdays:
            return WORKDAY
        if key in self.holidays:
            return HOLIDAY
        return WEEKEND if day.weekday() in self.week_holidays else WORKDAY


def fetch_calendar_settings(client: PortalClient) -> PortalCalendar:
    """Read the portal's calendar settings (one request)."""
    result = client.call(SETTINGS_METHOD, {}).get("result")
    if not isinstance(result, dict):
        raise TransportError(
            f"portal {client.portal.host}: {SETTINGS_METHOD} result is not an object",
            code="BAD_RESPONSE",
            http_status=200,
        )
    return parse_calendar_settings(result, f"portal {client.portal.name} calendar")


def parse_calendar_settings(result: dict[str, Any], whose: str) -> PortalCalendar:
    problems = Problems(whose)
    return PortalCalendar(
        holidays=_day_months(result, "year_holidays", problems),
        moved_workdays=_day_months(result, "year_workdays", problems),
        week_holidays=_week_days(result.get("week_holidays"), problems),
        work_time_start=_hour(result, "work_time_start", problems),
        work_time_end=_hour(result, "work_time_end", problems),
        raw=result,
        warnings=tuple(problems.lines),
    )


def _day_months(result: dict[str, Any], key: str, problems: Problems) -> frozenset[DayMonth]:
    """ "1.01,2.01,8.03" as {(1, 1), (2, 1), (8, 3)}; a bad item is skipped and named."""
    value = result.get(key)
    if value is None or value == "":
        return frozenset()
    if not isinstance(value, str):
        problems.add(key, value, "is not a day.month list")
        return frozenset()
    found = set()
    for item in (part.strip() for part in value.split(",")):
        day, _, month = item.partition(".")
        if day.isdigit() and month.isdigit() and _valid(int(day), int(month)):
            found.add((int(day), int(month)))
        elif item:
            problems.add(key, item, "is not a day.month date: skipped")
    return frozenset(found)


def _valid(day: int, month: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= weekdays.monthrange(2024, month)[1]  # 2024: 29.02 exists


def _week_days(value: Any, problems: Problems) -> frozenset[int]:
    if value is None:
        return frozenset()
    items = value if isinstance(value, list) else [value]
    found = set()
    for item in items:
        code = item.strip().upper() if isinstance(item, str) else None
        if code in WEEKDAY_CODES:
            found.add(WEEKDAY_CODES.index(code))
        else:
            problems.add("week_holidays", item, f"is not one of {', '.join(WEEKDAY_CODES)}: skipped")
    return frozenset(found)


def _hour(result: dict[str, Any], key: str, problems: Problems) -> int | None:
    """ "9" or "9.30" (hours, then minutes) as seconds from midnight."""
    value = result.get(key)
    if value is None or value == "":
        return None
    hours, _, minutes = str(value).partition(".")
    if hours.isdigit() and (minutes == "" or minutes.isdigit()) and not isinstance(value, bool):
        seconds = int(hours) * 3600 + int(minutes or 0) * 60
        if int(hours) <= 24 and int(minutes or 0) < 60 and seconds <= 86400:
            return seconds
    problems.add(key, value, "is not an hour of the day")
    return None


def _dates(pairs: frozenset[DayMonth], year: int) -> tuple[date, ...]:
    return tuple(sorted(date(year, m, d) for d, m in pairs if d <= weekdays.monthrange(year, m)[1]))


@dataclass(frozen=True)
class Absence:
    """One `absent` event of one user. `starts_at`/`ends_at` are UTC instants (a whole-day
    event ends at the end of its last day); `first_day`/`last_day` the user's local dates."""

    user_id: int
    event_id: str
    name: str | None
    starts_at: datetime
    ends_at: datetime
    whole_day: bool
    first_day: date
    last_day: date
    raw: Mapping[str, Any]


@dataclass
class AbsenceFetch:
    """The absences found, in the order the portal listed them, and the events that could not be read.

    `unread_users`: users whose answer was not a list or had an event that could not be read;
    their answer is not the whole truth of the window, so their stored days must stay as they are.
    """

    absences: list[Absence] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unread_users: set[int] = field(default_factory=set)


def fetch_absences(
    client: PortalClient, user_ids: Sequence[int], date_from: date, date_to: date
) -> AbsenceFetch:
    """The `absent` events of `user_ids` touching `date_from`..`date_to`, 50 users per request."""
    fetched = AbsenceFetch()
    for start in range(0, len(user_ids), USERS_PER_REQUEST):
        chunk = list(user_ids[start : start + USERS_PER_REQUEST])
        params = {"users": chunk, "from": date_from.isoformat(), "to": date_to.isoformat()}
        result = client.call(ACCESSIBILITY_METHOD, params).get("result")
        if result in ([], None):
            continue  # PHP sends an empty object as []
        if not isinstance(result, dict):
            raise TransportError(
                f"portal {client.portal.host}: {ACCESSIBILITY_METHOD} result is not an object",
                code="BAD_RESPONSE",
                http_status=200,
            )
        for user_id in chunk:
            _read_user(client, user_id, result.get(str(user_id)), fetched)
    return fetched


def _read_user(client: PortalClient, user_id: int, events: Any, fetched: AbsenceFetch) -> None:
    """One user's events into `fetched`; a user with an answer or event that could not be read
    goes to `unread_users`."""
    problems = Problems(f"portal {client.portal.name} user {user_id}")
    skipped = False
    if events in (None, {}):
        events = []  # no key, or PHP's empty array sent as an empty object
    if not isinstance(events, list):
        problems.add("events", events, "are not a list: skipped")
        events, skipped = [], True
    for event in events:
        if not isinstance(event, dict):
            problems.add("event", event, "is not an object: skipped")
            skipped = True
        elif event.get("ACCESSIBILITY") == "absent":
            absence = parse_absence(user_id, event, problems)
            if absence is None:
                skipped = True
            else:
                fetched.absences.append(absence)
    if skipped:
        fetched.unread_users.add(user_id)
    fetched.warnings += problems.lines


def parse_absence(user_id: int, event: dict[str, Any], problems: Problems) -> Absence | None:
    """One `absent` event, or None (named in `problems`) when its span cannot be read."""
    event_id = str(event.get("ID", ""))[:50]
    problems = Problems(f"{problems.whose} event {show(event_id)}", problems.lines)
    starts = integer(event, "DATE_FROM_TS_UTC", problems, low=0, high=2**40)
    ends = integer(event, "DATE_TO_TS_UTC", problems, low=0, high=2**40)
    offset = integer(event, "~USER_OFFSET_FROM", problems, low=-50400, high=50400) or 0
    if starts is None or ends is None or ends < starts:
        problems.add(
            "span", (event.get("DATE_FROM_TS_UTC"), event.get("DATE_TO_TS_UTC")), "is unusable: skipped"
        )
        return None
    whole_day = event.get("DT_SKIP_TIME") == "Y"
    starts_at = datetime.fromtimestamp(starts, UTC)
    ends_at = datetime.fromtimestamp(ends, UTC) + (timedelta(days=1) if whole_day else timedelta())
    local = timedelta(seconds=offset)
    last_instant = ends_at - timedelta(seconds=1) if ends_at > starts_at else ends_at
    return Absence(
        user_id=user_id,
        event_id=event_id,
        name=text(event, "NAME", problems),
        starts_at=starts_at,
        ends_at=ends_at,
        whole_day=whole_day,
        first_day=(starts_at + local).date(),
        last_day=(last_instant + local).date(),
        raw=event,
    )
