"""Each day's overtime threshold as the `attendance` view measures it, for the pay categories.

The view holds the one rule (over the shift of the user's schedule where one applies, all of
a day the schedule does not work, else over the user's minimum duration); the timesheet's pay
categories take their threshold from its figures instead of a rule of their own, so the two
agree. A threshold rather than the view's overtime itself, because a closed month's pay is
judged on its frozen rows, whose worked time may differ from the stored rows the view reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from poller.compliance.days import WorkedDay
from poller.storage.compliance_reads import OvertimeFigures


@dataclass(frozen=True)
class Threshold:
    """Seconds of work a day holds before overtime: exact, or only known to be at least this."""

    seconds: int
    at_least: bool = False


def thresholds(figures: Iterable[OvertimeFigures]) -> dict[tuple[int, date], Threshold]:
    """Each day's threshold, from the view's overtime and its basis.

    Overtime above 0 gives it exactly (worked less overtime); none on the minimum duration's
    basis gives the norm the view used; none on a schedule's only says the shift is at least
    the day's worked time.
    """
    found = {}
    for f in figures:
        if f.worked_seconds is not None and f.overtime_seconds:
            found[(f.user_id, f.work_date)] = Threshold(f.worked_seconds - f.overtime_seconds)
        elif f.basis == "min_duration" and f.min_duration is not None:
            found[(f.user_id, f.work_date)] = Threshold(f.min_duration)
        elif f.worked_seconds is not None:
            found[(f.user_id, f.work_date)] = Threshold(f.worked_seconds, at_least=True)
    return found


def with_overtime_norms(
    days: Sequence[WorkedDay], found: dict[tuple[int, date], Threshold]
) -> list[WorkedDay]:
    """`days` with the view's threshold of each; a day without one keeps the caller's norm.

    A day worked longer than a lower bound (a frozen day longer than the stored one) is measured
    against the bound and marked estimated.
    """
    judged = []
    for day in days:
        threshold = found.get((day.user_id, day.date))
        if threshold is None:
            judged.append(day)
            continue
        unsure = threshold.at_least and day.worked_seconds > threshold.seconds
        judged.append(replace(day, overtime_norm=threshold.seconds, estimated=day.estimated or unsure))
    return judged
