"""Each day's overtime threshold of a closed month, by the `attendance` view's rule over the
versions stored at the close (poller.storage.schedule_reads).

The view measures overtime over the shift of the user's schedule (their own assignment, else
their first department's), all of a day the schedule does not work, else over the minimum
duration of their norms; but it reads today's versions. `report timesheet --as-closed` applies
the same rule to what was stored at the close, so its pay stays what payroll saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from poller.compliance.days import WorkedDay
from poller.storage.schedule_reads import SchedulesAsOf, ShiftVersion


def with_closed_overtime_norms(days: Sequence[WorkedDay], schedules: SchedulesAsOf) -> list[WorkedDay]:
    """`days` with each one's threshold; None (no schedule, no norms) leaves the caller's 8 hours."""
    return [replace(day, overtime_norm=threshold(day, schedules)) for day in days]


def threshold(day: WorkedDay, schedules: SchedulesAsOf) -> int | None:
    """Seconds of work `day` holds before overtime, as the view would have measured it."""
    shift = _shift(day, schedules)
    if shift is None:
        return day.norms.min_duration
    if shift.work_days and str(day.date.isoweekday()) not in shift.work_days:
        return 0  # a day the schedule does not work: all of it
    return shift.seconds


def _shift(day: WorkedDay, schedules: SchedulesAsOf) -> ShiftVersion | None:
    schedule_id = _assigned(schedules, ("user", day.user_id), day)
    department = schedules.departments.get(day.user_id)
    if schedule_id is None and department is not None:
        schedule_id = _assigned(schedules, ("department", department), day)
    if schedule_id is None:
        return None
    return next((s for s in schedules.shifts.get(schedule_id, []) if s.period.holds(day.date)), None)


def _assigned(schedules: SchedulesAsOf, subject: tuple[str, int], day: WorkedDay) -> int | None:
    periods = schedules.assigned.get(subject, [])
    return next((schedule_id for schedule_id, period in periods if period.holds(day.date)), None)
