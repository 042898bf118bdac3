"""What the compliance report and the timesheet's pay categories read of `workdays`.

One typed row per stored workday over a range of local dates, with the columns the rules
need (start, end, offset, worked and break seconds, status, estimate flag) and the names the
report shows; and each day's overtime as the `attendance` view measures it, so the pay
categories count overtime by the view's one rule. The assembly into the rules' days is
poller.compliance.from_storage's job.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import Engine, select

from poller.models import user_norms_table, workdays_table
from poller.storage.failures import database_call
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
