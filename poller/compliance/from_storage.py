"""The stored history as the rules' days: workdays, the calendar, absences and norms, judged.

`report compliance` and the timesheet's pay categories read the database here and hand plain
WorkedDay values to the pure rules. A day is a user's local work date with work on it (a day
without work breaks no rule and pays nothing); its kind is an absence if the portal lists one,
else the portal's calendar (Saturday and Sunday off for a year it has none of).

`workdays` keeps one start, one end and a break total per TIME_START, not where the pauses
fell. A day without breaks has exact intervals; a day with breaks has its outer span, its
break total and, for the longest stretch without a break, the span less the breaks halved
(the pause taken mid-day, the shortest longest stretch one pause allows): findings built on
that stretch say `estimated`, like every figure of a day still open or never closed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine

from poller.compliance.closed_overtime import with_closed_overtime_norms
from poller.compliance.days import DayKind, DayStatus, Interval, Norms, WorkedDay
from poller.compliance.engine import find_violations
from poller.compliance.overtime_norms import thresholds, with_overtime_norms
from poller.compliance.packs import RulePack
from poller.compliance.pay import DAILY_NORM, NIGHT, PayCategories, pay_categories
from poller.compliance.violation import Month, Violation
from poller.storage import (
    NormVersion,
    WorkdayFigures,
    get_absences,
    get_calendar_days,
    get_norms,
    get_workday_figures,
    get_workday_portals,
    norm_on,
)
from poller.storage.compliance_reads import (
    get_absent_days_as_of,
    get_calendar_days_as_of,
    get_norms_as_of,
    get_overtime_figures,
)
from poller.storage.schedule_reads import get_schedules_as_of

_STATUS = {"CLOSED": DayStatus.CLOSED, "EXPIRED": DayStatus.EXPIRED}  # else OPENED, PAUSED: open
# Days read before the month besides what the pack's own periods need: the first week's rest
# may begin in the week before it.
_LEAD = timedelta(days=14)


@dataclass(frozen=True)
class Person:
    """Whose finding or pay line it is: name and department as of the newest day read."""

    portal: str
    user_id: int
    user_name: str | None
    department: str | None


@dataclass(frozen=True)
class Finding:
    """A violation and the person it concerns."""

    person: Person
    violation: Violation


@dataclass(frozen=True)
class ComplianceReport:
    """A month judged by a pack on some portals: every finding, and how many people worked in it."""

    month: Month
    pack: RulePack
    portals: tuple[str, ...]
    people: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class StoredDays:
    """One portal's days over a range, and the people they belong to."""

    days: list[WorkedDay]
    people: dict[int, Person]


def history_start(pack: RulePack, month: Month) -> date:
    """The first date the pack's rules read for `month`: its longest period back, or the year's start."""
    start = month.first - _LEAD
    for rule in pack.rules:
        if rule.kind in ("weekly_average", "daily_average"):
            start = min(start, month.first - timedelta(weeks=rule.weeks) - _LEAD)
        if rule.kind == "overtime_year":
            start = min(start, month.first.replace(month=1, day=1))
    return start


def find_stored_violations(
    engine: Engine,
    month: Month,
    pack: RulePack,
    *,
    portals: Sequence[str] = (),
    users: Collection[int] | None = None,
    department: str | None = None,
) -> ComplianceReport:
    """Judge `month` of each portal (every portal with workdays in it when none is named)."""
    first = history_start(pack, month)
    last = month.last + timedelta(days=1)  # a rest running past the month's end is seen ending
    names = tuple(dict.fromkeys(portals)) or tuple(get_workday_portals(engine, month.first, month.last))
    findings: list[Finding] = []
    people = 0
    for portal in names:
        stored = read_days(engine, portal, first, last, month, users=users, department=department)
        people += len({day.user_id for day in stored.days if day.date in month})
        findings += [Finding(stored.people[v.user_id], v) for v in find_violations(stored.days, pack, month)]
    return ComplianceReport(month, pack, names, people, tuple(findings))


def stored_pay(
    engine: Engine,
    portal: str,
    month: Month,
    *,
    night: tuple[time, time] = NIGHT,
    users: Collection[int] | None = None,
    frozen: Sequence[Mapping[str, Any]] | None = None,
    as_of: datetime | None = None,
) -> dict[int, PayCategories]:
    """Each user's pay categories of `month` on `portal`; overtime beyond each day's threshold
    in the `attendance` view (the schedule's shift, else the minimum duration), 8 hours where
    the view has no basis for the day.

    `frozen`: the workdays rows a month close froze, judged instead of the stored ones; a
    frozen row keeps no offset, so it takes its day's stored one (else the user's, else UTC).
    `as_of` (a close's time): the calendar, absences, norms and schedules as stored then,
    overtime by the view's rule over them (poller.compliance.closed_overtime).
    """
    rows = None if frozen is None else _thawed(engine, portal, month, frozen)
    stored = read_days(engine, portal, month.first, month.last, month, users=users, rows=rows, as_of=as_of)
    if not stored.days:
        return {}
    if as_of is not None:
        schedules = get_schedules_as_of(engine, portal, as_of, list(stored.people))
        days = with_closed_overtime_norms(stored.days, schedules)
    else:
        figures = get_overtime_figures(engine, portal, month.first, month.last, user_ids=list(stored.people))
        days = with_overtime_norms(stored.days, thresholds(figures))
    return {part.user_id: part for part in pay_categories(days, night=night, daily_norm=DAILY_NORM)}


def _thawed(
    engine: Engine, portal: str, month: Month, frozen: Sequence[Mapping[str, Any]]
) -> list[WorkdayFigures]:
    """Frozen workdays rows as WorkdayFigures, each with the offset of its stored day."""
    live = get_workday_figures(
        engine, portal, month.first, month.last, user_ids={r["user_id"] for r in frozen}
    )
    by_start = {(row.user_id, row.time_start): row.tz_offset for row in live}
    by_user = {row.user_id: row.tz_offset for row in live if row.tz_offset is not None}
    names = [field.name for field in fields(WorkdayFigures)]
    thawed = []
    for row in frozen:
        key = (row["user_id"], row["time_start"])
        offset = row.get("tz_offset", by_start.get(key, by_user.get(row["user_id"])))
        values: dict[str, Any] = {name: row.get(name) for name in names}
        values |= {"portal": portal, "tz_offset": offset}
        values["worked_is_estimate"] = bool(values["worked_is_estimate"])
        thawed.append(WorkdayFigures(**values))
    return sorted(thawed, key=lambda row: (row.user_id, row.work_date, row.time_start))


def read_days(
    engine: Engine,
    portal: str,
    first: date,
    last: date,
    month: Month,
    *,
    users: Collection[int] | None = None,
    department: str | None = None,
    rows: Sequence[WorkdayFigures] | None = None,
    as_of: datetime | None = None,
) -> StoredDays:
    """The days with work of `first`..`last` (of `rows` when given); people named as of their
    newest day up to the month's end, `department` matched on that name ignoring case; kinds
    and norms as stored at `as_of` when given, else the current ones."""
    if rows is None:
        rows = get_workday_figures(engine, portal, first, last, user_ids=users)
    elif users is not None:
        rows = [row for row in rows if row.user_id in users]
    people: dict[int, Person] = {}
    for row in rows:
        if row.work_date <= month.last:
            people[row.user_id] = Person(portal, row.user_id, row.user_name, row.department)
    if department is not None:
        wanted = department.casefold()
        people = {k: p for k, p in people.items() if (p.department or "").casefold() == wanted}
    rows = [row for row in rows if row.user_id in people]
    if not rows:
        return StoredDays([], people)
    kinds = _DayKinds(engine, portal, first, last, list(people), as_of)
    if as_of is None:
        norms = get_norms(engine, portal, first, last, user_ids=list(people))
    else:
        norms = get_norms_as_of(engine, portal, as_of, user_ids=list(people))
    grouped: dict[tuple[int, date], list[WorkdayFigures]] = defaultdict(list)
    for row in rows:
        grouped[(row.user_id, row.work_date)].append(row)
    days = [
        build_day(group, kinds.kind(user_id, day), _norms(norms.get(user_id, []), day))
        for (user_id, day), group in grouped.items()
    ]
    return StoredDays(days, people)


class _DayKinds:
    """Absent, else the calendar's kind, for the users and dates read (a month's calendar read
    once); as stored at `as_of` when given."""

    def __init__(
        self, engine: Engine, portal: str, first: date, last: date, users: list[int], as_of: datetime | None
    ) -> None:
        self._engine, self._portal, self._as_of = engine, portal, as_of
        if as_of is None:
            self._absent = {(a.user_id, a.day) for a in get_absences(engine, portal, first, last, users)}
        else:
            self._absent = get_absent_days_as_of(engine, portal, first, last, as_of, users)
        self._months: dict[date, dict[date, str]] = {}

    def kind(self, user_id: int, day: date) -> DayKind:
        if (user_id, day) in self._absent:
            return DayKind.ABSENT
        first = day.replace(day=1)
        if first not in self._months:
            if self._as_of is None:
                self._months[first] = get_calendar_days(self._engine, self._portal, first).days
            else:
                self._months[first] = get_calendar_days_as_of(
                    self._engine, self._portal, first, self._as_of
                ).days
        return DayKind(self._months[first][day])


def _norms(versions: Sequence[NormVersion], day: date) -> Norms:
    version = norm_on(versions, day)
    if version is None:
        return Norms()
    return Norms(version.max_start, version.min_finish, version.min_duration, version.allowed_delta)


def build_day(rows: Sequence[WorkdayFigures], kind: DayKind, norms: Norms) -> WorkedDay:
    """One user's date from its workdays (in start order): intervals in each row's own offset.

    A row not yet closed ends where its worked and break time reach (its figures are then
    estimates); a row starting before the previous one ended is cut to start there.
    """
    intervals: list[Interval] = []
    stretches: list[float] = []
    for row in rows:
        zone = timezone(timedelta(seconds=row.tz_offset or 0))
        leaks = row.leaks_seconds or 0
        start, end = row.time_start, row.time_finish
        if end is None:
            end = start + timedelta(seconds=(row.worked_seconds or 0) + leaks)
        if intervals and start < intervals[-1].end:
            start = intervals[-1].end
        interval = Interval(start.astimezone(zone), max(start, end).astimezone(zone))
        intervals.append(interval)
        stretches.append(interval.seconds if leaks == 0 else math.ceil(max(0, interval.seconds - leaks) / 2))
    leaks_total = sum(row.leaks_seconds or 0 for row in rows)
    gaps = sum(b.start_ts - a.end_ts for a, b in pairwise(intervals))
    statuses = {_STATUS.get(row.status or "", DayStatus.OPEN) for row in rows}
    status = next(s for s in (DayStatus.EXPIRED, DayStatus.OPEN, DayStatus.CLOSED) if s in statuses)
    return WorkedDay(
        user_id=rows[0].user_id,
        date=rows[0].work_date,
        kind=kind,
        intervals=tuple(intervals),
        worked_seconds=sum(row.worked_seconds or 0 for row in rows),
        break_seconds=leaks_total + round(gaps),
        status=status,
        norms=norms,
        longest_stretch=round(max(stretches)) if leaks_total else None,
        estimated=any(row.worked_is_estimate or row.worked_seconds is None for row in rows),
    )
