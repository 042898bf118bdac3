"""A month of worked time per person, for payroll: built from `workdays` rows, totals included.

Figures stay in seconds here, so every total is exactly the sum of its days; hours are a
matter of display (poller.render.report). A day is a user's local work date; two workdays that
start on the same date (rare: a day closed and opened again) add up into one day.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

from poller.compliance.pay import PayCategories


@dataclass(frozen=True)
class Day:
    """One user's work on one local date: seconds worked and on breaks, and how final they are."""

    worked_seconds: int = 0
    break_seconds: int = 0
    estimate: bool = False  # the day is still open, or known from polls only
    pending_approval: bool = False  # a change awaits the supervisor's approval
    corrections: int = 0  # times its figures or record changed after they were stored
    corrections_after_close: int = 0  # of those, after its month was closed

    def __add__(self, other: Day) -> Day:
        return Day(
            self.worked_seconds + other.worked_seconds,
            self.break_seconds + other.break_seconds,
            self.estimate or other.estimate,
            self.pending_approval or other.pending_approval,
            self.corrections + other.corrections,
            self.corrections_after_close + other.corrections_after_close,
        )


@dataclass(frozen=True)
class Totals:
    """Sums over days: seconds worked and on breaks, days worked, days pending, days estimated."""

    worked_seconds: int = 0
    break_seconds: int = 0
    days: int = 0
    days_pending_approval: int = 0
    days_estimated: int = 0
    days_corrected: int = 0
    days_corrected_after_close: int = 0

    @classmethod
    def of(cls, days: Iterable[Day]) -> Totals:
        listed = list(days)
        return cls(
            worked_seconds=sum(d.worked_seconds for d in listed),
            break_seconds=sum(d.break_seconds for d in listed),
            days=len(listed),
            days_pending_approval=sum(d.pending_approval for d in listed),
            days_estimated=sum(d.estimate for d in listed),
            days_corrected=sum(d.corrections > 0 for d in listed),
            days_corrected_after_close=sum(d.corrections_after_close > 0 for d in listed),
        )

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.worked_seconds + other.worked_seconds,
            self.break_seconds + other.break_seconds,
            self.days + other.days,
            self.days_pending_approval + other.days_pending_approval,
            self.days_estimated + other.days_estimated,
            self.days_corrected + other.days_corrected,
            self.days_corrected_after_close + other.days_corrected_after_close,
        )


@dataclass(frozen=True)
class TimesheetRow:
    """One person's month; `user_name` and `department` as of their newest day in it."""

    portal: str
    user_id: int
    user_name: str | None
    department: str | None
    days: Mapping[date, Day] = field(default_factory=dict)

    @property
    def totals(self) -> Totals:
        return Totals.of(self.days.values())


@dataclass(frozen=True)
class Timesheet:
    """Every person of a month, ordered by portal and user id, and the sums over them."""

    month: date  # its first day
    rows: tuple[TimesheetRow, ...]
    as_closed: str | None = None  # the figures a month close froze: which close (else: as they stand)
    # Pay categories per (portal, user id), and the night window they were measured with;
    # None: not computed (a closed month's frozen rows keep no calendar of their own).
    pay: Mapping[tuple[str, int], PayCategories] | None = None
    night: tuple[time, time] | None = None

    @property
    def dates(self) -> tuple[date, ...]:
        return month_dates(self.month)

    @property
    def totals(self) -> Totals:
        return sum((row.totals for row in self.rows), Totals())

    def pay_of(self, row: TimesheetRow) -> PayCategories | None:
        """The row's pay categories; a person without work in the month has zeros."""
        if self.pay is None:
            return None
        zero = PayCategories(row.user_id, f"{self.month:%Y-%m}", 0, 0, 0, 0, 0, 0, False)
        return self.pay.get((row.portal, row.user_id), zero)

    def pay_totals(self) -> PayCategories | None:
        """The pay categories summed over every person."""
        if self.pay is None:
            return None
        parts = [part for row in self.rows if (part := self.pay_of(row)) is not None]
        return PayCategories(
            user_id=0,
            month=f"{self.month:%Y-%m}",
            worked=sum(p.worked for p in parts),
            regular=sum(p.regular for p in parts),
            overtime=sum(p.overtime for p in parts),
            weekend=sum(p.weekend for p in parts),
            holiday=sum(p.holiday for p in parts),
            night=sum(p.night for p in parts),
            estimated=any(p.estimated for p in parts),
        )

    def day_totals(self) -> dict[date, Day]:
        """Per date, the sum over every person (what a totals row shows under each day)."""
        sums: dict[date, Day] = {}
        for row in self.rows:
            for day, work in row.days.items():
                sums[day] = sums.get(day, Day()) + work
        return sums


def month_dates(month: date) -> tuple[date, ...]:
    """Every date of the month `month` falls in."""
    first = month.replace(day=1)
    length = calendar.monthrange(first.year, first.month)[1]
    return tuple(first + timedelta(days=n) for n in range(length))


def build_timesheet(
    month: date, workdays: Iterable[Mapping[str, Any]], as_closed: str | None = None
) -> Timesheet:
    """Fold `workdays` rows of one month into a Timesheet.

    Rows outside the month are ignored. A day whose worked time is unknown (NULL) counts as a
    day and as an estimate, with no time: payroll must look at it, not trust a zero.
    """
    dates = set(month_dates(month))
    people: dict[tuple[str, int], dict[date, Day]] = {}
    names: dict[tuple[str, int], tuple[date, str | None, str | None]] = {}
    for row in workdays:
        work_date = row["work_date"]
        if work_date not in dates:
            continue
        key = (str(row["portal"]), int(row["user_id"]))
        worked = row.get("worked_seconds")
        day = Day(
            worked_seconds=int(worked or 0),
            break_seconds=int(row.get("leaks_seconds") or 0),
            estimate=bool(row.get("worked_is_estimate")) or worked is None,
            pending_approval=bool(row.get("pending_approval")),
            corrections=int(row.get("corrections") or 0),
            corrections_after_close=int(row.get("corrections_after_close") or 0),
        )
        days = people.setdefault(key, {})
        days[work_date] = days.get(work_date, Day()) + day
        if key not in names or names[key][0] <= work_date:
            names[key] = (work_date, row.get("user_name"), row.get("department"))
    rows = tuple(
        TimesheetRow(portal, user_id, names[(portal, user_id)][1], names[(portal, user_id)][2], days)
        for (portal, user_id), days in sorted(people.items())
    )
    return Timesheet(month.replace(day=1), rows, as_closed)
