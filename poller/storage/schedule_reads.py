"""The schedule map and the schedules as stored at an instant (a month's close), for the
overtime of `report timesheet --as-closed`.

The `attendance` view measures overtime over the shift of the user's schedule with the
versions stored now; a closed month's pay measures it by the same rule over the versions
seen by its close: those seen later are left out, one replaced later reads as current, and
each version's days are UTC dates with the first version standing for the days before it,
as in the view. The users' departments are today's: the directory keeps no history.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, select

from poller.models import schedule_assignments_table, schedules_table, users_table
from poller.storage.failures import database_call
from poller.storage.statements import one_of


@dataclass(frozen=True)
class Period:
    """A version's days as the view counts them (UTC dates; from None: the first version,
    standing for the days before it; to None: still current at the instant read)."""

    from_day: date | None
    to_day: date | None

    def holds(self, day: date) -> bool:
        return (self.from_day is None or day >= self.from_day) and (self.to_day is None or day < self.to_day)


@dataclass(frozen=True)
class ShiftVersion:
    """A schedule version with a shift: seconds worked in its first shift and its ISO weekdays."""

    schedule_id: int
    seconds: int
    work_days: str
    period: Period


@dataclass(frozen=True)
class SchedulesAsOf:
    """The schedule map, the shifts and the users' first departments as stored at an instant."""

    assigned: dict[tuple[str, int], list[tuple[int, Period]]]
    shifts: dict[int, list[ShiftVersion]]
    departments: dict[int, int | None]


@database_call
def get_schedules_as_of(
    engine: Engine, portal: str, as_of: datetime, user_ids: Collection[int]
) -> SchedulesAsOf:
    """The schedule assignments and schedule versions seen by `as_of` (those replaced later read
    as current), and the users' first departments (the directory keeps only today's)."""
    a, v, u = schedule_assignments_table.c, schedules_table.c, users_table.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(a.subject, a.subject_id, a.schedule_id, a.valid_from, a.valid_to)
            .where(a.portal == portal, a.valid_from <= as_of)
            .order_by(a.valid_from)
        ).all()
        versions = connection.execute(
            select(
                v.schedule_id,
                v.shift_start,
                v.shift_end,
                v.shift_break,
                v.work_days,
                v.valid_from,
                v.valid_to,
            )
            .where(v.portal == portal, v.valid_from <= as_of)
            .order_by(v.schedule_id, v.valid_from)
        ).all()
        users = connection.execute(
            select(u.user_id, u.department_ids).where(
                u.portal == portal, one_of(connection, u.user_id, list(user_ids))
            )
        ).all()
    assigned: dict[tuple[str, int], list[tuple[int, Period]]] = {}
    first_seen = rows[0].valid_from if rows else None
    for row in rows:
        period = _period(row.valid_from, row.valid_to, first_seen, as_of)
        assigned.setdefault((row.subject, row.subject_id), []).append((row.schedule_id, period))
    shifts: dict[int, list[ShiftVersion]] = {}
    firsts = {version.schedule_id: version.valid_from for version in reversed(versions)}
    for version in versions:
        start, end = version.shift_start, version.shift_end
        if start is None or end is None:
            continue
        seconds = max(end - start + (86400 if end <= start else 0) - (version.shift_break or 0), 0)
        period = _period(version.valid_from, version.valid_to, firsts[version.schedule_id], as_of)
        shift = ShiftVersion(version.schedule_id, seconds, version.work_days or "", period)
        shifts.setdefault(version.schedule_id, []).append(shift)
    departments = {user.user_id: _first(user.department_ids) for user in users}
    return SchedulesAsOf(assigned, shifts, departments)


def _first(department_ids: object) -> int | None:
    """The first department, as the view takes it (a list in JSON, else none)."""
    if isinstance(department_ids, list) and department_ids:
        return int(department_ids[0])
    return None


def _period(
    valid_from: datetime, valid_to: datetime | None, first_seen: datetime | None, as_of: datetime
) -> Period:
    start = None if valid_from == first_seen else valid_from.date()
    return Period(start, valid_to.date() if valid_to is not None and valid_to <= as_of else None)
