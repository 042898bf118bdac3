"""find_violations: a pack's rules over many users' days, for one month, in a fixed order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from poller.compliance import daily, periods
from poller.compliance.days import WorkedDay
from poller.compliance.packs import Rule, RulePack
from poller.compliance.violation import Month, Violation

Check = Callable[[Rule, Sequence[WorkedDay], Month], list[Violation]]

CHECKS: dict[str, Check] = {
    "daily_rest": daily.daily_rest,
    "min_break": daily.min_break,
    "max_stretch": daily.max_stretch,
    "daily_max": daily.daily_max,
    "no_work_on": daily.no_work_on,
    "overtime_two_days": daily.overtime_two_days,
    "daily_average": periods.daily_average,
    "weekly_average": periods.weekly_average,
    "weekly_rest": periods.weekly_rest,
    "overtime_year": periods.overtime_year,
}


def find_violations(days: Iterable[WorkedDay], pack: RulePack, month: str | Month) -> list[Violation]:
    """Every violation of the pack's rules dated in `month`, by user, date, then the pack's rule order.

    Give the days the history rules need too: the day before the month (daily rest), the weeks
    an average spans, the year so far (yearly overtime). They are read, never reported.
    """
    if isinstance(month, str):
        month = Month.parse(month)
    order = {rule.id: index for index, rule in enumerate(pack.rules)}
    found: list[Violation] = []
    for user_days in group_by_user(days).values():
        for rule in pack.rules:
            found += CHECKS[rule.kind](rule, user_days, month)
    return sorted(found, key=lambda v: (v.user_id, v.on, order[v.rule_id], v.period))


def group_by_user(days: Iterable[WorkedDay]) -> dict[int, list[WorkedDay]]:
    """Each user's days in date order; two days of one user on one date are an input error."""
    users: dict[int, list[WorkedDay]] = defaultdict(list)
    for day in days:
        users[day.user_id].append(day)
    for user_id, user_days in users.items():
        user_days.sort(key=lambda day: day.date)
        dates = [day.date for day in user_days]
        if len(set(dates)) != len(dates):
            raise ValueError(f"user {user_id}: more than one day per date; merge a date's work into one day")
    return dict(sorted(users.items()))
