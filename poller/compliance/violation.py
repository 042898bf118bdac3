"""A violation as the report shows it, and the calendar arithmetic every rule shares."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from poller.compliance.days import DayKind, DayStatus, WorkedDay
from poller.compliance.packs import Rule
from poller.errors import ConfigError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Violation:
    """One rule broken once: whose, when, by how much, against what, and on whose authority.

    `on` is the day the finding is dated (the day itself, the last day of a week or of a pair of
    days); `period` says what the figure covers ("2026-03-05", "2026-W10", "2026-03-04/2026-03-05",
    "2026"). Figures and limits are seconds, or seconds per week or per workday as `unit` says.
    """

    user_id: int
    on: date
    period: str
    rule_id: str
    figure: float
    limit: float
    unit: str
    estimated: bool
    source: str


@dataclass(frozen=True)
class Month:
    """A calendar month's first and last day."""

    first: date
    last: date

    @classmethod
    def parse(cls, text: str) -> Month:
        """Read 'YYYY-MM'; a bad month is the caller's input, hence ConfigError."""
        match = _MONTH.match(text)
        if match is None or not 1 <= int(match[2]) <= 12:
            raise ConfigError(f"month: expected YYYY-MM, got {text!r}")
        first = date(int(match[1]), int(match[2]), 1)
        return cls(first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1))

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def sundays(self) -> Iterator[date]:
        """The Sundays of the month: a week belongs to the month it ends in, so it is whole when reported."""
        day = self.first + timedelta(days=(6 - self.first.weekday()) % 7)
        while day <= self.last:
            yield day
            day += timedelta(days=7)


def iso_week(day: date) -> str:
    """'2026-W10' for any day of that ISO week."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def is_estimated(day: WorkedDay) -> bool:
    """Whether a day's figures rest on polls: marked so, or EXPIRED (its real end was never recorded)."""
    return day.estimated or day.status is DayStatus.EXPIRED


def overtime(day: WorkedDay, daily_norm: int) -> int:
    """Seconds worked beyond the norm on a workday; weekend and holiday work is its own category."""
    if day.kind is not DayKind.WORKDAY:
        return 0
    return max(0, day.worked_seconds - daily_norm)


def violation(rule: Rule, day: WorkedDay, figure: float, *, estimated: bool, unit: str = "s") -> Violation:
    """A finding dated on one day, the common case."""
    return finding(rule, day.user_id, day.date, day.date.isoformat(), figure, estimated=estimated, unit=unit)


def finding(
    rule: Rule, user_id: int, on: date, period: str, figure: float, *, estimated: bool, unit: str = "s"
) -> Violation:
    """A finding of `rule` dated `on` and covering `period`; the rule's id, limit and source are
    copied in one place, so every kind of rule names its authority the same way."""
    return Violation(
        user_id=user_id,
        on=on,
        period=period,
        rule_id=rule.id,
        figure=figure,
        limit=rule.limit,
        unit=unit,
        estimated=estimated,
        source=rule.source,
    )
