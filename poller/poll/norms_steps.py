"""The parts of a norms refresh, each read from the portal and stored: norms, schedules, calendar, absences.

Each part sends its requests one at a time, calling `pace()` before each (the refresh's way of
leaving the portal's bucket to the cycle, and of stopping), and stores what it read as it goes:
a refresh cut between two requests keeps what it stored. Portal-wide errors are raised
(BitrixError); the caller records them. `backfill` uses the calendar and absence parts for its
own range.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.bitrix.calendar import USERS_PER_REQUEST, PortalCalendar, fetch_absences, fetch_calendar_settings
from poller.bitrix.norms import fetch_schedule, fetch_settings
from poller.errors import BitrixError
from poller.poll.calendar_years import CalendarYear, calendar_year
from poller.redaction import redact
from poller.storage.calendars import get_calendar_years

logger = logging.getLogger(__name__)

Pace = Callable[[], None]
WARNINGS_SHOWN = 5  # per part: a portal with thousands of odd values logs a count, not each


@dataclass
class PartsDone:
    """What the parts read and stored; `failed_users` had their own sub-call refused."""

    users: int = 0
    norms_read: int = 0
    norms_changed: int = 0
    failed_users: dict[int, str] = field(default_factory=dict)
    schedules: int = 0
    schedules_missing: list[int] = field(default_factory=list)
    calendar_years: list[tuple[int, str]] = field(default_factory=list)  # (year, source)
    absence_days: int = 0
    absence_users: int = 0


def is_scope_error(exc: BitrixError) -> bool:
    code = exc.code.lower()
    return "insufficient" in code and "scope" in code


def save_norms_of(
    engine: Engine, client: PortalClient, user_ids: Sequence[int], pace: Pace, done: PartsDone
) -> None:
    """timeman.settings of every user, 50 per batch request, stored as versions."""
    name, shown = client.portal.name, 0
    done.users = len(user_ids)
    for start in range(0, len(user_ids), USERS_PER_REQUEST):
        pace()
        fetched = fetch_settings(client, user_ids[start : start + USERS_PER_REQUEST])
        saved = storage.save_norms(engine, name, fetched.norms.values(), client.clock.now())
        done.norms_read += len(fetched.norms)
        done.norms_changed += saved.changed
        done.failed_users.update((u, redact(e.message, client.secrets())) for u, e in fetched.errors.items())
        for norms in fetched.norms.values():
            for line in norms.warnings:
                shown = _warn(line, shown)


def save_schedules_of(engine: Engine, client: PortalClient, pace: Pace, done: PartsDone) -> None:
    """The schedules the config names, and its map of who works on which."""
    portal = client.portal
    found = []
    for schedule_id in portal.schedules_to_read():
        pace()
        schedule = fetch_schedule(client, schedule_id)
        if schedule is None:
            done.schedules_missing.append(schedule_id)
            logger.warning(
                "portal %s: schedule %d: the portal has none with this id", portal.name, schedule_id
            )
            continue
        found.append(schedule)
        for line in schedule.warnings[:WARNINGS_SHOWN]:
            logger.warning("%s", line)
    at = client.clock.now()
    if found:
        storage.save_schedules(engine, portal.name, found, at)
    storage.save_schedule_assignments(engine, portal.name, portal.schedules.assignments(), at)
    done.schedules = len(found)


def read_calendar(client: PortalClient, pace: Pace) -> PortalCalendar:
    """The portal's calendar settings (one request); a BitrixError when they cannot be read."""
    pace()
    read = fetch_calendar_settings(client)
    for line in read.warnings[:WARNINGS_SHOWN]:
        logger.warning("%s", line)
    return read


def save_calendar_years(
    engine: Engine, client: PortalClient, years: Sequence[int], read: PortalCalendar | None, done: PartsDone
) -> None:
    """Each year's calendar from the portal's (`read`, None: not readable), the config's extra
    holidays and the holidays package (poller.poll.calendar_years)."""
    at = client.clock.now()
    for year in years:
        built = calendar_year(client.portal, year, read)
        if built is not None:
            _store_year(engine, client.portal.name, built, at, done)


def _store_year(engine: Engine, portal: str, built: CalendarYear, at: datetime, done: PartsDone) -> None:
    storage.save_calendar(
        engine,
        portal,
        built.year,
        holidays=built.holidays,
        moved_workdays=built.moved_workdays,
        week_holidays=built.week_holidays,
        source=built.source,
        seen_at=at,
        raw=built.raw,
    )
    done.calendar_years.append((built.year, built.source))


def save_config_holidays(engine: Engine, client: PortalClient, years: Sequence[int], done: PartsDone) -> None:
    """When the portal's calendar could not be read (not for want of the scope): the config's
    extra holidays alone, for each of `years` that has no calendar stored. A stored year stays as
    it is, and the `holidays` package stands in for nothing: the portal's calendar exists."""
    missing = sorted(set(years) - get_calendar_years(engine, client.portal.name, years))
    without_package = replace(client.portal, holidays_country=None, holidays_subdivision=None)
    at = client.clock.now()
    for year in missing:
        built = calendar_year(without_package, year, None)
        if built is not None:
            _store_year(engine, client.portal.name, built, at, done)


def save_absences_of(
    engine: Engine,
    client: PortalClient,
    user_ids: Sequence[int],
    date_from: date,
    date_to: date,
    pace: Pace,
    done: PartsDone,
) -> None:
    """The `absent` events of every user in the window, 50 users per request, each request's
    users stored as the portal's whole answer for the window (a withdrawn absence is removed).
    A user whose answer could not be fully read is not: the days read are stored, and the
    stored days not read stay as they are."""
    name, shown = client.portal.name, 0
    for start in range(0, len(user_ids), USERS_PER_REQUEST):
        chunk = user_ids[start : start + USERS_PER_REQUEST]
        pace()
        fetched = fetch_absences(client, chunk, date_from, date_to)
        at: datetime = client.clock.now()
        unread = fetched.unread_users
        read = [user for user in chunk if user not in unread]
        saved = storage.save_absences(
            engine, name, read, date_from, date_to, fetched.absences, at, partly_read=unread
        )
        done.absence_days += saved.added + saved.unchanged
        done.absence_users += len(read)
        for line in fetched.warnings:
            shown = _warn(line, shown)
        for user in sorted(fetched.unread_users):
            line = f"portal {name} user {user}: absences not fully read: the stored ones are kept"
            shown = _warn(line, shown)


def _warn(line: str, shown: int) -> int:
    """Log the first WARNINGS_SHOWN lines of a part at WARNING, the rest at DEBUG."""
    logger.log(logging.WARNING if shown < WARNINGS_SHOWN else logging.DEBUG, "%s", line)
    return shown + 1
