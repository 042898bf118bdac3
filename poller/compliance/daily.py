"""Rules judged on one day, or on a day and the one before it.

Each takes one user's days in date order and the month, and returns that month's findings;
days before the month are there only so the first day of the month has a predecessor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise

from poller.compliance.days import WorkedDay
from poller.compliance.packs import WEEKDAYS, Rule
from poller.compliance.violation import Month, Violation, finding, is_estimated, overtime, violation


def daily_rest(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Rest from the end of one day's work to the start of the next one's, shorter than the limit."""
    timed = [day for day in days if day.intervals and day.worked]
    found = []
    for before, after in pairwise(timed):
        rest = after.intervals[0].start_ts - before.intervals[-1].end_ts
        if after.date in month and rest < rule.limit:
            estimated = is_estimated(before) or is_estimated(after)
            found.append(violation(rule, after, rest, estimated=estimated))
    return found


def min_break(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Breaks under the limit on a day worked longer than `over`; pauses under `min_part` do not count.

    A day known only by its break total (records and polls give no parts) is judged on the
    total. The breaks that count are at most the total, so a total under the limit is surely a
    finding (its figure the total, which may hold parts under `min_part`); a total under
    `min_part` is all short parts, so it counts 0. A total that meets the limit cannot be
    proven to, as its parts may be short: that day is not reported (docs/compliance.md).
    """
    found = []
    for day in _in(days, month):
        if day.worked_seconds > rule.over:
            gaps = day.gaps(rule.min_part)
            breaks = day.break_seconds if gaps is None else sum(gaps)
            if gaps is None and breaks < rule.min_part:
                breaks = 0
            if breaks < rule.limit:
                found.append(violation(rule, day, breaks, estimated=is_estimated(day)))
    return found


def max_stretch(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Work without a break (of at least `min_part`) for longer than the limit."""
    found = []
    for day in _in(days, month):
        stretch = day.stretch(rule.min_part)
        if stretch > rule.limit:
            # A stretch known only as the polls saw it (longest_stretch) is an estimate.
            estimated = is_estimated(day) or day.longest_stretch is not None
            found.append(violation(rule, day, stretch, estimated=estimated))
    return found


def daily_max(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """More work on one day than the limit."""
    return [
        violation(rule, day, day.worked_seconds, estimated=is_estimated(day))
        for day in _in(days, month)
        if day.worked_seconds > rule.limit
    ]


def no_work_on(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Work beyond the limit (usually none) on the listed weekdays or kinds of day."""
    return [
        violation(rule, day, day.worked_seconds, estimated=is_estimated(day))
        for day in _in(days, month)
        if (WEEKDAYS[day.date.weekday()] in rule.weekdays or day.kind in rule.kinds)
        and day.worked_seconds > rule.limit
    ]


def overtime_two_days(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Overtime of a day and the calendar day before it together above the limit, dated on the second."""
    by_date = {day.date: day for day in days}
    found = []
    for day in _in(days, month):
        before = by_date.get(day.date - timedelta(days=1))
        first = overtime(before, rule.daily_norm) if before else 0
        total = first + overtime(day, rule.daily_norm)
        if total > rule.limit:
            estimated = is_estimated(day) or (before is not None and first > 0 and is_estimated(before))
            period = f"{day.date - timedelta(days=1)}/{day.date}"
            found.append(finding(rule, day.user_id, day.date, period, total, estimated=estimated))
    return found


def _in(days: Sequence[WorkedDay], month: Month) -> list[WorkedDay]:
    """The days of the month."""
    return [day for day in days if day.date in month]
