"""What the compliance report and the timesheet's pay categories read of `workdays`.

One typed row per stored workday over a range of local dates, with the columns the rules
need (start, end, offset, worked and break seconds, status, estimate flag) and the names the
report shows. The assembly into the rules' days is poller.compliance.from_storage's job.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, select

from poller.models import workdays_table
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


@database_call
def get_workday_portals(engine: Engine, date_from: date, date_to: date) -> Sequence[str]:
    """The portals with workdays in `date_from`..`date_to`, by name."""
    c = workdays_table.c
    query = (
        select(c.portal).where(c.work_date >= date_from, c.work_date <= date_to).distinct().order_by(c.portal)
    )
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())
