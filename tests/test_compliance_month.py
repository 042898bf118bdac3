"""A month of generated work judged by the engine and by plain arithmetic written here, compared whole.

The generator keeps each day as wall-clock minutes (start, then work and pause lengths); the
expected findings are computed from those numbers alone, with none of the engine's helpers, so
a shared mistake would have to be made twice. March 2026 holds the spring DST change in Berlin.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from poller.compliance import DayKind, DayStatus, Interval, Violation, WorkedDay, find_violations, load_pack

BERLIN = ZoneInfo("Europe/Berlin")
H = 3600
FIRST, MONTH_FIRST, MONTH_LAST = date(2025, 9, 1), date(2026, 3, 1), date(2026, 3, 31)
HOLIDAYS = {date(2025, 10, 3), date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1), date(2026, 3, 18)}
USERS = (1, 2, 3)  # user 3 works long weeks, so the averages are broken too


@dataclass
class Plan:
    """One generated day: wall-clock start and alternating work/pause minutes."""

    user: int
    day: date
    kind: DayKind
    start: int  # minutes after local midnight
    work: list[int]
    pauses: list[int]
    estimated: bool
    expired: bool

    def utc(self, minute: int) -> float:
        """Unix seconds of a wall-clock minute of this day (may pass midnight)."""
        local = datetime(self.day.year, self.day.month, self.day.day, tzinfo=BERLIN) + timedelta(
            minutes=minute
        )
        wall = datetime(local.year, local.month, local.day, local.hour, local.minute, tzinfo=BERLIN)
        return wall.astimezone(UTC).timestamp()

    def pieces(self) -> list[tuple[int, int]]:
        """Wall minutes (start, end) of each work piece."""
        found, at = [], self.start
        for index, minutes in enumerate(self.work):
            found.append((at, at + minutes))
            at += minutes + (self.pauses[index] if index < len(self.pauses) else 0)
        return found

    @property
    def worked(self) -> int:
        return sum(self.work) * 60

    @property
    def flagged(self) -> bool:
        return self.estimated or self.expired


def plan(user: int, day: date) -> Plan | None:
    """Whether and how `user` works on `day`; the same answer every run."""
    rng = random.Random(f"{user}/{day}")
    kind = DayKind.HOLIDAY if day in HOLIDAYS else DayKind.WORKDAY if day.weekday() < 5 else DayKind.WEEKEND
    if kind is DayKind.WORKDAY and rng.random() < 0.04:
        return Plan(user, day, DayKind.ABSENT, 0, [], [], False, False)
    chance = {DayKind.WORKDAY: 0.92, DayKind.WEEKEND: 0.5 if user == 3 else 0.12, DayKind.HOLIDAY: 0.3}[kind]
    if rng.random() > chance:
        return None
    long = user == 3
    start = rng.choice([5 * 60, 6 * 60, 7 * 60 + 30, 8 * 60, 9 * 60] + ([] if long else [12 * 60]))
    pieces = rng.randint(2, 3) if long else rng.randint(1, 3)
    work = [rng.randint(200 if long else 60, 330 if long else 270) for _ in range(pieces)]
    pauses = [rng.choice([0, 5, 14, 15, 20, 30, 45]) for _ in range(pieces - 1)]
    while start + sum(work) + sum(pauses) > 23 * 60 + 30:  # keep the day before midnight
        if work[-1] > 60:
            work[-1] -= 30
        else:
            work.pop()
            pauses.pop()
    return Plan(user, day, kind, start, work, pauses, rng.random() < 0.1, rng.random() < 0.05)


def to_day(p: Plan) -> WorkedDay:
    """The engine's view of a plan."""
    origin = datetime(p.day.year, p.day.month, p.day.day, tzinfo=BERLIN)
    intervals = tuple(Interval(_wall(origin, a), _wall(origin, b)) for a, b in p.pieces() if b > a)
    return WorkedDay(
        user_id=p.user,
        date=p.day,
        kind=p.kind,
        intervals=intervals,
        worked_seconds=p.worked,
        break_seconds=sum(p.pauses) * 60,
        status=DayStatus.EXPIRED if p.expired else DayStatus.CLOSED,
        estimated=p.estimated,
    )


def _wall(origin: datetime, minute: int) -> datetime:
    moved = origin + timedelta(minutes=minute)
    return datetime(moved.year, moved.month, moved.day, moved.hour, moved.minute, tzinfo=BERLIN)


def plans() -> list[Plan]:
    found, day = [], FIRST
    while day <= MONTH_LAST:
        found += [p for user in USERS if (p := plan(user, day)) is not None]
        day += timedelta(days=1)
    return found


DE_SOURCES = {
    "daily_rest": "ArbZG §5(1)",
    "break_30m_over_6h": "ArbZG §4 sentence 1 and 2",
    "break_45m_over_9h": "ArbZG §4 sentence 1 and 2",
    "no_6h_without_break": "ArbZG §4 sentence 3",
    "daily_10h": "ArbZG §3 sentence 2",
    "daily_8h_average": "ArbZG §3 sentence 2",
    "no_sunday_holiday_work": "ArbZG §9(1)",
}
DE_ORDER = list(DE_SOURCES)


def day_figures(p: Plan, previous: Plan) -> list[tuple[str, float, int, bool]]:
    """(rule, figure, limit, estimated) of each German day rule `p` breaks."""
    found = []
    rest = p.utc(p.start) - previous.utc(previous.pieces()[-1][1])
    if rest < 11 * H:
        found.append(("daily_rest", rest, 11 * H, p.flagged or previous.flagged))
    breaks = sum(m for m in p.pauses if m >= 15) * 60
    if p.worked > 6 * H and breaks < 30 * 60:
        found.append(("break_30m_over_6h", breaks, 30 * 60, p.flagged))
    if p.worked > 9 * H and breaks < 45 * 60:
        found.append(("break_45m_over_9h", breaks, 45 * 60, p.flagged))
    stretch, run = 0, 0
    for piece, minutes in enumerate(p.work):
        run += minutes
        stretch = max(stretch, run)
        pause = p.pauses[piece] if piece < len(p.pauses) else 99
        run = run + pause if pause < 15 else 0
    if stretch * 60 > 6 * H:
        found.append(("no_6h_without_break", stretch * 60, 6 * H, p.flagged))
    if p.worked > 10 * H:
        found.append(("daily_10h", p.worked, 10 * H, p.flagged))
    if p.day.weekday() == 6 or p.kind is DayKind.HOLIDAY:
        found.append(("no_sunday_holiday_work", p.worked, 0, p.flagged))
    return found


def expected_de(all_plans: list[Plan]) -> list[Violation]:
    """The German pack's findings for March, from the plans' minutes."""
    rows: list[tuple[int, date, int, Violation]] = []
    for user in USERS:
        mine = [p for p in all_plans if p.user == user and p.worked > 0]
        for previous, p in pairwise(mine):
            if MONTH_FIRST <= p.day <= MONTH_LAST:
                for rule, figure, limit, est in day_figures(p, previous):
                    v = Violation(
                        user, p.day, p.day.isoformat(), rule, figure, limit, "s", est, DE_SOURCES[rule]
                    )
                    rows.append((user, p.day, DE_ORDER.index(rule), v))
        for sunday in (date(2026, 3, d) for d in (1, 8, 15, 22, 29)):
            window = [p for p in mine if sunday - timedelta(days=167) <= p.day <= sunday]
            total = sum(p.worked for p in window)
            if total > 8 * H * 144:
                week = f"2026-W{sunday.isocalendar()[1]:02d}"
                est = any(p.flagged for p in window)
                v = Violation(
                    user,
                    sunday,
                    week,
                    "daily_8h_average",
                    total / 144,
                    8 * H,
                    "s/workday",
                    est,
                    DE_SOURCES["daily_8h_average"],
                )
                rows.append((user, sunday, DE_ORDER.index("daily_8h_average"), v))
    return [row[-1] for row in sorted(rows, key=lambda row: row[:3])]


def test_a_generated_month_gives_the_german_findings_computed_by_hand() -> None:
    all_plans = plans()
    days = [to_day(p) for p in all_plans]
    found = find_violations(days, load_pack("de"), "2026-03")
    assert found == expected_de(all_plans)
    kinds = {v.rule_id for v in found}
    assert kinds == {
        "daily_rest",
        "break_30m_over_6h",
        "break_45m_over_9h",
        "no_6h_without_break",
        "daily_10h",
        "daily_8h_average",
        "no_sunday_holiday_work",
    }, "the generated month should break every rule at least once"
    assert {v.estimated for v in found} == {True, False}


def overtime_of(p: Plan | None) -> int:
    """Seconds beyond 8 hours on a workday; none on other days."""
    return max(0, p.worked - 8 * H) if p is not None and p.kind is DayKind.WORKDAY else 0


def longest_rest(pieces: list[tuple[float, float]], week_start: float, week_end: float) -> float:
    """The longest time without work touching the week; before the first and after the last piece: endless."""
    ends = [float("-inf")] + [b for _, b in pieces]
    starts = [a for a, _ in pieces] + [float("inf")]
    rests = [s - e for e, s in zip(ends, starts, strict=True) if s > week_start and e < week_end]
    return max(rests)


def expected_ru(all_plans: list[Plan]) -> list[Violation]:
    """The Russian pack's findings for March, from the plans' minutes."""
    rows: list[tuple[int, date, int, str, Violation]] = []
    art99, art110 = "TK RF art. 99", "TK RF art. 110"
    for user in USERS:
        mine = {p.day: p for p in all_plans if p.user == user}
        for day, p in mine.items():
            before = mine.get(day - timedelta(days=1))
            total = overtime_of(before) + overtime_of(p)
            if MONTH_FIRST <= day <= MONTH_LAST and total > 4 * H:
                est = p.flagged or (overtime_of(before) > 0 and before is not None and before.flagged)
                v = Violation(
                    user,
                    day,
                    f"{day - timedelta(days=1)}/{day}",
                    "overtime_4h_in_2_days",
                    total,
                    4 * H,
                    "s",
                    est,
                    art99,
                )
                rows.append((user, day, 0, v.period, v))
        year = [p for day, p in sorted(mine.items()) if day.year == 2026]
        running, first_over = 0, None
        for p in year:
            running += overtime_of(p)
            if first_over is None and p.day >= MONTH_FIRST and overtime_of(p) and running > 120 * H:
                first_over = p.day
        if first_over is not None:
            est = any(p.flagged for p in year if overtime_of(p))
            v = Violation(user, first_over, "2026", "overtime_120h_a_year", running, 120 * H, "s", est, art99)
            rows.append((user, first_over, 1, "2026", v))
        pieces = sorted((p.utc(a), p.utc(b)) for p in mine.values() for a, b in p.pieces() if b > a)
        for sunday in (date(2026, 3, d) for d in (1, 8, 15, 22, 29)):
            week = [p for p in mine.values() if sunday - timedelta(days=6) <= p.day <= sunday and p.worked]
            if not week:
                continue
            midnight = datetime(
                sunday.year, sunday.month, sunday.day, tzinfo=BERLIN
            )  # wall-clock arithmetic:
            start, end = midnight - timedelta(days=6), midnight + timedelta(days=1)  # local midnights
            rest = longest_rest(pieces, start.timestamp(), end.timestamp())
            if rest < 42 * H:
                est = any(p.flagged for p in week)
                name = f"2026-W{sunday.isocalendar()[1]:02d}"
                v = Violation(user, sunday, name, "weekly_rest_42h", rest, 42 * H, "s", est, art110)
                rows.append((user, sunday, 2, name, v))
    return [row[-1] for row in sorted(rows, key=lambda row: row[:4])]


def test_a_generated_month_gives_the_russian_findings_computed_by_hand() -> None:
    all_plans = plans()
    found = find_violations([to_day(p) for p in all_plans], load_pack("ru"), "2026-03")
    assert found == expected_ru(all_plans)
    assert {v.rule_id for v in found} == {"overtime_4h_in_2_days", "overtime_120h_a_year", "weekly_rest_42h"}
