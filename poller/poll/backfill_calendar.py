"""What `backfill` reads besides the records: the absences and the calendar years of its own range.

A month filled after the fact is then judged like one polled live: the attendance view and the
compliance report find its holidays and its absences. The calendar is read once (one request),
the absences 50 users a request over the whole range; without the `calendar` scope both are
skipped (the config's and the `holidays` package's holidays are still stored) and the result's
`note` says so. A portal error here costs only this part: the records stay read.
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
    """Store the calendar of every year of `date_from`..`date_to` and the users' absences in it."""
    pace, done = stopping_pace(client), steps.PartsDone()
    years = tuple(range(date_from.year, date_to.year + 1))
    secrets = client.secrets()
    try:
        read = steps.read_calendar(client, pace)
    except BitrixError as exc:
        if not steps.is_scope_error(exc):
            return _failed(client, "calendar and absences not read", redact(exc.message, secrets))
        read = None
    try:
        steps.save_calendar_years(engine, client, years, read, done)
        if read is None:
            return CalendarBackfilled(
                tuple(done.calendar_years),
                0,
                "no `calendar` scope: the portal's calendar and absences skipped",
            )
        steps.save_absences_of(engine, client, user_ids, date_from, date_to, pace, done)
    except BitrixError as exc:
        return _failed(client, "absences not read", redact(exc.message, secrets), done)
    except storage.DatabaseFailure as exc:
        return _failed(client, "calendar or absences not stored", storage.describe_db_error(exc), done)
    return CalendarBackfilled(tuple(done.calendar_years), done.absence_days)


def _failed(
    client: PortalClient, what: str, why: str, done: steps.PartsDone | None = None
) -> CalendarBackfilled:
    logger.warning("portal %s: %s: %s", client.portal.name, what, why)
    done = done or steps.PartsDone()
    return CalendarBackfilled(tuple(done.calendar_years), done.absence_days, f"{what}: {why}")
