"""What the compliance report and the timesheet's pay categories read of `workdays`.

One typed row per stored workday over a range of local dates, with the columns the rules
need (start, end, offset, worked and break seconds, status, estimate flag) and the names the
report shows; and each day's overtime as the `attendance` view measures it, so the pay
categories count overtime by the view's one rule. The assembly into the rules' days is
poller.compliance.from_storage's job.

The `*_as_of` reads give the calendar, absences and norms as the database held them at an
instant (a month's close): versions seen after it are left out, and one replaced after it is
read as still current, so a closed month's pay is judged by what was known when it was closed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import Engine, or_, select

from poller.models import (
    absences_table,
    portal_calendars_table,
    user_norms_table,
    workdays_table,
)
from poller.storage.calendars import CalendarMonth, calendar_month
from poller.storage.failures import database_call
from poller.storage.norms import NormVersion, read_norm_versions
from poller.storage.statements import one_of


@dataclass(frozen=True)
class WorkdayFigures:
    """One row of `workdays`, as the compliance rules read it."""

    portal: str
    user_id: int
    work_date: date
    time_start: datetime
    time_finish: datetime | None
    tz_offset: int | None
    status: str | None
    worked_seconds: int | None
    worked_is_estimate: bool
    leaks_seconds: int | None
    user_name: str | None
    department: str | None


_COLUMNS = (
    "portal", "user_id", "work_date", "time_start", "time_finish", "tz_offset", "status",
    "worked_seconds", "worked_is_estimate", "leaks_seconds", "user_name", "department",
)  # fmt: skip


@database_call
def get_workday_figures(
    engine: Engine,
    portal: str,
    date_from: date,
    date_to: date,
    user_ids: Collection[int] | None = None,
) -> list[WorkdayFigures]:
    """The portal's workdays of local dates `date_from`..`date_to`, by user, date and start."""
    c = workdays_table.c
    query = (
        select(*(c[name] for name in _COLUMNS))
        .where(c.portal == portal, c.work_date >= date_from, c.work_date <= date_to)
        .order_by(c.user_id, c.work_date, c.time_start)
    )
    with engine.connect() as connection:
        if user_ids is not None:
            query = query.where(one_of(connection, c.user_id, list(user_ids)))
        return [WorkdayFigures(*row) for row in connection.execute(query)]


@dataclass(frozen=True)
class OvertimeFigures:
    """A day's overtime in the `attendance` view: what it was measured against and the figures.

    `basis` is 'schedule', 'min_duration' or None (no figure); `min_duration` is the norm the
    view used that day, so a day whose overtime is 0 still tells its threshold on that basis.
    """

    user_id: int
    work_date: date
    basis: str | None
    worked_seconds: int | None
    overtime_seconds: int | None
    min_duration: int | None


_ATTENDANCE = sa.table(
    "attendance",
    sa.column("portal", sa.String),
    sa.column("user_id", sa.Integer),
    sa.column("work_date", sa.Date),
    sa.column("worked_seconds", sa.Integer),
    sa.column("overtime_seconds", sa.Integer),
    sa.column("overtime_basis", sa.String),
    sa.column("norm_id", sa.Integer),
)


@database_call
def get_overtime_figures(
    engine: Engine,
    portal: str,
    date_from: date,
    date_to: date,
    user_ids: Collection[int] | None = None,
) -> list[OvertimeFigures]:
    """The `attendance` view's overtime of the portal's days `date_from`..`date_to` that have a basis."""
    a, n = _ATTENDANCE.c, user_norms_table.c
    query = (
        select(a.user_id, a.work_date, a.overtime_basis, a.worked_seconds, a.overtime_seconds, n.min_duration)
        .select_from(_ATTENDANCE.outerjoin(user_norms_table, n.id == a.norm_id))
        .where(a.portal == portal, a.work_date >= date_from, a.work_date <= date_to)
        .where(a.overtime_basis.is_not(None))
        .order_by(a.user_id, a.work_date)
    )
    with engine.connect() as connection:
        if user_ids is not None:
            query = query.where(one_of(connection, a.user_id, list(user_ids)))
        return [OvertimeFigures(*row) for row in connection.execute(query)]


@database_call
def get_workday_portals(engine: Engine, date_from: date, date_to: date) -> Sequence[str]:
    """The portals with workdays in `date_from`..`date_to`, by name."""
    c = workdays_table.c
    query = (
        select(c.portal).where(c.work_date >= date_from, c.work_date <= date_to).distinct().order_by(c.portal)
    )
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


@database_call
def get_calendar_days_as_of(engine: Engine, portal: str, month: date, as_of: datetime) -> CalendarMonth:
    """Each day of `month`'s month by the year's calendar version in force at `as_of`; the
    first version stands for the time before it, as in the attendance view."""
    c = portal_calendars_table.c
    query = (
        select(c.holidays, c.moved_workdays, c.week_holidays, c.source, c.valid_from)
        .where(c.portal == portal, c.year == month.year)
        .where(or_(c.valid_to.is_(None), c.valid_to > as_of))
        .order_by(c.valid_from)
    )
    with engine.connect() as connection:
        versions = connection.execute(query).all()
    known = [row for row in versions if row.valid_from <= as_of]
    return calendar_month(known[-1] if known else (versions[0] if versions else None), month)


@database_call
def get_absent_days_as_of(
    engine: Engine,
    portal: str,
    date_from: date,
    date_to: date,
    as_of: datetime,
    user_ids: Collection[int] | None = None,
) -> set[tuple[int, date]]:
    """The (user, day) pairs of `date_from`..`date_to` listed as absent at `as_of`: fetched by
    then and not yet marked removed."""
    c = absences_table.c
    query = (
        select(c.user_id, c.day)
        .where(c.portal == portal, c.day >= date_from, c.day <= date_to, c.fetched_at <= as_of)
        .where(or_(c.removed_at.is_(None), c.removed_at > as_of))
        .distinct()
    )
    with engine.connect() as connection:
        if user_ids is not None:
            query = query.where(one_of(connection, c.user_id, list(user_ids)))
        return {(row.user_id, row.day) for row in connection.execute(query)}


@database_call
def get_norms_as_of(
    engine: Engine, portal: str, as_of: datetime, user_ids: Collection[int] | None = None
) -> dict[int, list[NormVersion]]:
    """Each user's norm versions as stored at `as_of`, oldest first (for `norm_on`): those seen
    by then, the last one open-ended. A user whose norms were first seen later has none: the
    view would let that first version stand for the days before it, which is what changed."""
    stored = read_norm_versions(engine, portal, user_ids)
    found = {user_id: _as_of(versions, as_of) for user_id, versions in stored.items()}
    return {user_id: versions for user_id, versions in found.items() if versions}


def _as_of(versions: list[NormVersion], as_of: datetime) -> list[NormVersion]:
    known = [v for v in versions if v.valid_from <= as_of]
    return [v if v.valid_to is None or v.valid_to <= as_of else replace(v, valid_to=None) for v in known]
