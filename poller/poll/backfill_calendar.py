"""What `backfill` reads besides the records: the absences and the calendar years of its own range.

A month filled after the fact is then judged like one polled live: the attendance view and the
compliance report find its holidays and its absences. The calendar is read once (one request)
and stored only for the years that have none: the portal's holidays are day.month pairs of
today's settings, and a year already stored keeps what was seen then. The absences come 50
users a request over the whole range. Without the `calendar` scope both are skipped (the
config's and the `holidays` package's holidays are still stored); when the calendar read fails
otherwise, the stored years stay, a year with none gets the config's extra holidays alone, and
the absences are still read. The result's `note` says what was skipped or failed. A portal
error here costs only this part: the records stay read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.errors import BitrixError
from poller.poll import norms_steps as steps
from poller.poll.norms_turns import stopping_pace
from poller.redaction import redact
from poller.storage.calendars import get_calendar_years

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalendarBackfilled:
    """The calendar years and absence days stored; `note` a line on what was skipped or failed."""

    years: tuple[tuple[int, str], ...]
    absence_days: int
    note: str | None = None


def backfill_calendar(
    engine: Engine, client: PortalClient, user_ids: Sequence[int], date_from: date, date_to: date
) -> CalendarBackfilled:
    """Store the calendar of every year of `date_from`..`date_to` that has none yet and the
    users' absences in it."""
    pace, done = stopping_pace(client), steps.PartsDone()
    years = tuple(range(date_from.year, date_to.year + 1))
    secrets, notes = client.secrets(), []
    read, scope, unread = None, True, False
    try:
        read = steps.read_calendar(client, pace)
    except BitrixError as exc:
        if steps.is_scope_error(exc):
            scope = False
        else:
            unread = True
            notes.append(_warned(client, "calendar not read", redact(exc.message, secrets)))
    try:
        if unread:
            steps.save_config_holidays(engine, client, years, done)
        else:
            stored = get_calendar_years(engine, client.portal.name, years)
            new_years = [year for year in years if year not in stored]
            steps.save_calendar_years(engine, client, new_years, read, done)
        if not scope:
            notes.append("no `calendar` scope: the portal's calendar and absences skipped")
        else:
            steps.save_absences_of(engine, client, user_ids, date_from, date_to, pace, done)
    except BitrixError as exc:
        notes.append(_warned(client, "absences not read", redact(exc.message, secrets)))
    except storage.DatabaseFailure as exc:
        notes.append(_warned(client, "calendar or absences not stored", storage.describe_db_error(exc)))
    return CalendarBackfilled(tuple(done.calendar_years), done.absence_days, "; ".join(notes) or None)


def _warned(client: PortalClient, what: str, why: str) -> str:
    logger.warning("portal %s: %s: %s", client.portal.name, what, why)
    return f"{what}: {why}"
