"""Rules judged over weeks or a year: averages, weekly rest, the year's overtime.

A week is reported in the month its Sunday falls in, so a report run after the month sees it
whole. Averages and the weekly rest look back through the days given before the month; a day
missing from the input counts as a day without work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from poller.compliance.days import WorkedDay
from poller.compliance.packs import Rule
from poller.compliance.violation import Month, Violation, finding, is_estimated, iso_week, overtime

_WEEK = timedelta(days=7)


def weekly_average(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Hours per week averaged over the `weeks` ending with each week of the month, above the limit."""
    return _averages(rule, days, month, divisor=rule.weeks, unit="s/week")


def daily_average(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Hours per working day (`days_per_week` of them a week) averaged over `weeks`, above the limit."""
    return _averages(rule, days, month, divisor=rule.weeks * rule.days_per_week, unit="s/workday")


def _averages(
    rule: Rule, days: Sequence[WorkedDay], month: Month, divisor: int, unit: str
) -> list[Violation]:
    """Compare totals, not rounded averages, so one second over the limit is found."""
    found = []
    for sunday in month.sundays():
        first = sunday - _WEEK * rule.weeks + timedelta(days=1)
        window = [day for day in days if first <= day.date <= sunday]
        total = sum(day.worked_seconds for day in window)
        if total > rule.limit * divisor:
            estimated = any(is_estimated(day) for day in window if day.worked_seconds)
            found.append(_weekly(rule, days[0].user_id, sunday, total / divisor, unit, estimated))
    return found


def weekly_rest(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """Each week of the month needs one rest of at least the limit that overlaps it.

    A rest counts whole for every week it touches (a rest from Saturday evening to Monday
    morning serves both weeks), and one not yet begun or ended in the data given counts as
    long enough: the input cannot tell.
    """
    spans = [(i.start_ts, i.end_ts, day) for day in days for i in day.intervals if i.seconds > 0]
    found = []
    for sunday in month.sundays():
        inside = [span for span in spans if _week_of(span[2], sunday)]
        if not inside:
            continue
        zone = inside[0][2].intervals[0].start.tzinfo
        start = datetime.combine(sunday - timedelta(days=6), time(), tzinfo=zone).timestamp()
        end = datetime.combine(sunday + timedelta(days=1), time(), tzinfo=zone).timestamp()
        longest = _longest_rest(spans, start, end)
        if longest < rule.limit:
            estimated = any(is_estimated(span[2]) for span in inside)
            found.append(_weekly(rule, days[0].user_id, sunday, longest, "s", estimated))
    return found


def _week_of(day: WorkedDay, sunday: date) -> bool:
    """Whether the day is in the week ending on `sunday`."""
    return sunday - timedelta(days=6) <= day.date <= sunday


def _longest_rest(spans: list[tuple[float, float, WorkedDay]], start: float, end: float) -> float:
    """The longest pause between work that overlaps [start, end); an unbounded one is infinite."""
    edges = sorted((a, b) for a, b, _ in spans)
    longest = 0.0
    previous_end = float("-inf")
    for a, b in [*edges, (float("inf"), float("inf"))]:
        if a > previous_end and a > start and previous_end < end:
            longest = max(longest, a - previous_end)
        previous_end = max(previous_end, b)
    return longest


def overtime_year(rule: Rule, days: Sequence[WorkedDay], month: Month) -> list[Violation]:
    """The year's overtime through the month above the limit, found on the month's days that added to it.

    Dated on the month's first day that added overtime beyond the limit; the figure is the
    year's total at the month's end, so each later month with more overtime is reported again.
    """
    year = [day for day in days if day.date.year == month.first.year and day.date <= month.last]
    running = 0
    on: date | None = None
    for day in year:
        extra = overtime(day, rule.daily_norm)
        running += extra
        if on is None and day.date in month and extra > 0 and running > rule.limit:
            on = day.date
    if on is None:
        return []
    estimated = any(is_estimated(day) for day in year if overtime(day, rule.daily_norm))
    return [finding(rule, days[0].user_id, on, str(month.first.year), running, estimated=estimated)]


def _weekly(rule: Rule, user_id: int, sunday: date, figure: float, unit: str, estimated: bool) -> Violation:
    """A finding dated on the week's Sunday."""
    return finding(rule, user_id, sunday, iso_week(sunday), figure, estimated=estimated, unit=unit)
