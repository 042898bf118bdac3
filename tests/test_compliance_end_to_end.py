"""A month of emulated work through the real path, judged, and checked against the world's own truth.

The emulator (over loopback HTTP) is polled once, which refreshes the directory and the norms
(`timeman.settings`), the calendar and the recent absences; then `backfill` copies January 2026
and the weeks the rules look back on (records, calendar years, absences). `report compliance
--month 2026-01 --rules de`, the timesheet's pay categories and the `attendance` view are then
compared whole with what this module works out by plain arithmetic from the emulator's world:
its planned workdays (`World.workday`), its calendar (`portal_calendar`), its absences and its
norms (`norms.user_norms`), never through `poller.compliance`.

What records determine, and so what is compared: a day's start, end, DURATION and break total.
Where the rules' figure would need where the pauses fell, the comparison keeps to what the
records say, and the test says so where it matters:
- `no_6h_without_break` (the longest stretch without a break) rests on the polls' estimate of
  where the pause fell: it is left out of the compared set;
- `break_30m_over_6h` and `break_45m_over_9h` count the record's break total (breakLength);
  the pack's `min_part` (only pauses of 15 minutes count) needs each pause, which a record
  does not carry, so the expected figure is the total too (user 7, who pauses three times a
  day, has six January days under 30 minutes in parts of 15 that no record can show);
- night hours are the span's (start to end) inside 22:00-06:00: a break's place is not stored,
  so a line with breaks is estimated; the world's exact night (pauses left out) must be no more
  (the night-shift user 4: 99.6 h by the span, 91.6 h worked).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, text

from poller import commands, storage
from poller.bitrix import PortalClient
from poller.cli import main
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.compliance import PayCategories
from poller.config import Config
from poller.emulator import Emulator, EmulatorSettings, absences, norms, portal_calendar
from poller.emulator.simclock import SimClock
from poller.emulator.workday import Workday
from poller.emulator.world import World
from poller.poll.backfill import backfill
from poller.poll.cycle import poll_once
from poller.poll.housekeeping import PortalChores

NOW = datetime(2026, 2, 9, 9, 30, tzinfo=UTC)  # a Monday after the month
FIRST, LAST = date(2026, 1, 1), date(2026, 1, 31)  # holidays on the 1st, 2nd and 7th
READ_FROM = FIRST - timedelta(weeks=25)  # de's 24-week average and the rest before the 1st
USERS = list(range(1, 13))
H = 3600
NIGHT = (time(22), time(6))

# The de pack's rules this module recomputes (all but the stretch without a break), and sources.
CHECKED = {
    "daily_rest": "ArbZG §5(1)",
    "break_30m_over_6h": "ArbZG §4 sentence 1 and 2",
    "break_45m_over_9h": "ArbZG §4 sentence 1 and 2",
    "daily_10h": "ArbZG §3 sentence 2",
    "daily_8h_average": "ArbZG §3 sentence 2",
    "no_sunday_holiday_work": "ArbZG §9(1)",
}
RULE_ORDER = list(CHECKED)


# -- the real path ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """The emulated portal, the config that polled it, and the database it wrote."""

    emulator: Emulator
    config: Config
    database_url: str


@pytest.fixture
def stored(
    request: pytest.FixtureRequest, engine: Engine, database_url: str, make_emulator: MakeEmulator
) -> Stored:
    """Poll once (directory, norms, calendar, absences), then backfill the month and its history.

    The tests that take it only read: on SQLite each gets a copy of the module's one filling
    (`stored_on_sqlite`), on PostgreSQL the scratch database is filled for each.
    """
    if not database_url.startswith("sqlite:///"):
        return store(engine, database_url, make_emulator, poll_first=True)
    filled: Stored = request.getfixturevalue("stored_on_sqlite")
    engine.dispose()  # nothing open on the file it is about to replace
    shutil.copyfile(filled.database_url.removeprefix("sqlite:///"), database_url.removeprefix("sqlite:///"))
    return Stored(filled.emulator, config_of(filled.emulator, database_url), database_url)


@pytest.fixture(scope="module")
def stored_on_sqlite(tmp_path_factory: pytest.TempPathFactory, head_sqlite_file: Path) -> Iterator[Stored]:
    """`stored`'s poll and backfill into a SQLite file, once for the module (its emulator runs
    until the module ends, as conftest's `make_emulator` would start it)."""
    database = tmp_path_factory.mktemp("stored") / "stored.sqlite3"
    shutil.copyfile(head_sqlite_file, database)
    clock = ManualClock(NOW)
    emulator = Emulator(EmulatorSettings(users=len(USERS), rate=0, seed=7), clock=clock).start()
    url = f"sqlite:///{database}"
    engine = storage.make_engine(url)
    try:
        filled = fill(engine, url, emulator, clock, poll_first=True)
    finally:
        engine.dispose()
    try:
        yield filled
    finally:
        emulator.stop()


def store(engine: Engine, database_url: str, make_emulator: MakeEmulator, *, poll_first: bool) -> Stored:
    """The emulated portal polled once and backfilled, in the order `poll_first` says."""
    clock = ManualClock(NOW)
    return fill(
        engine,
        database_url,
        make_emulator(clock=clock, users=len(USERS), rate=0),
        clock,
        poll_first=poll_first,
    )


def config_of(emulator: Emulator, database_url: str) -> Config:
    return make_config(
        portal(emulator, USERS),
        database_url=database_url,
        directory={"refresh_hours": 24},
        reconcile={"days": 0},
    )


def fill(
    engine: Engine, database_url: str, emulator: Emulator, clock: ManualClock, *, poll_first: bool
) -> Stored:
    """Poll `emulator` once and backfill it into `engine`, in the order `poll_first` says."""
    config = config_of(emulator, database_url)
    client = PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)
    steps = [
        lambda: (
            poll_once(
                make_clients(config, engine, clock=clock),
                engine,
                clock=clock.now,
                chores=PortalChores(config, engine),
            ).ok
        ),
        lambda: not backfill(config, engine, [client], since=READ_FROM, until=LAST).interrupted,
    ]
    for step in steps if poll_first else steps[::-1]:
        assert step()
    return Stored(emulator, config, database_url)


# -- the world's truth -----------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """One planned workday in the user's own (fixed) zone, as the world holds it."""

    day: Workday
    zone: timezone

    @property
    def user_id(self) -> int:
        return self.day.user_id

    @property
    def date(self) -> date:
        return self.day.work_date

    @property
    def start(self) -> datetime:
        return self.day.opened.astimezone(self.zone)

    @property
    def end(self) -> datetime:
        assert self.day.closed is not None
        return self.day.closed.astimezone(self.zone)

    @property
    def duration(self) -> int:
        """DURATION as the portal records it."""
        worked = self.day.worked_seconds()
        assert worked is not None
        return worked

    @property
    def breaks(self) -> int:
        return self.day.leaks_seconds

    def kind(self) -> str:
        """The day's kind: absent wins over the calendar (the world never works an absent day)."""
        return (
            "absent" if absences.is_absent(self.user_id, self.date) else portal_calendar.day_kind(self.date)
        )

    def local_seconds(self, moment: datetime) -> int:
        """Seconds from the work date's local midnight (past 86400 on the next day)."""
        midnight = datetime.combine(self.date, time(), tzinfo=self.zone)
        return int((moment - midnight).total_seconds())


def world_days(world: World, first: date, last: date) -> dict[int, list[Truth]]:
    """Each user's planned workdays of `first`..`last`, in date order."""
    found: dict[int, list[Truth]] = {}
    for user_id in USERS:
        zone = timezone(timedelta(seconds=world.tz_offset(user_id)))
        day = first
        while day <= last:
            planned = world.workday(user_id, day)
            if planned is not None and planned.opened <= NOW:
                found.setdefault(user_id, []).append(Truth(planned, zone))
            day += timedelta(days=1)
    return found


def in_month(day: date) -> bool:
    return FIRST <= day <= LAST


# -- compliance: expected by hand ------------------------------------------------------------


def expected_findings(world: World) -> list[dict[str, Any]]:
    """The de pack's findings of January for the rules in CHECKED, from the world's days."""
    found: list[dict[str, Any]] = []
    departments = {int(row["ID"]): row["NAME"] for row in world.departments()}
    for user_id, days in world_days(world, READ_FROM, LAST).items():
        rows: list[tuple[date, str, float, int, str]] = []
        for before, after in pairwise(days):
            rest = (after.day.opened - before.end).total_seconds()
            if in_month(after.date) and rest < 11 * H:
                rows.append((after.date, "daily_rest", rest, 11 * H, after.date.isoformat()))
        for d in (d for d in days if in_month(d.date)):
            if d.duration > 6 * H and d.breaks < 30 * 60:
                rows.append((d.date, "break_30m_over_6h", d.breaks, 30 * 60, d.date.isoformat()))
            if d.duration > 9 * H and d.breaks < 45 * 60:
                rows.append((d.date, "break_45m_over_9h", d.breaks, 45 * 60, d.date.isoformat()))
            if d.duration > 10 * H:
                rows.append((d.date, "daily_10h", d.duration, 10 * H, d.date.isoformat()))
            if d.date.weekday() == 6 or d.kind() == portal_calendar.HOLIDAY:
                rows.append((d.date, "no_sunday_holiday_work", d.duration, 0, d.date.isoformat()))
        sunday = FIRST + timedelta(days=(6 - FIRST.weekday()) % 7)
        while sunday <= LAST:  # 8 h per working day (Monday to Saturday) over 24 weeks
            window = [d.duration for d in days if sunday - timedelta(weeks=24) < d.date <= sunday]
            if sum(window) > 8 * H * 24 * 6:
                week = f"{sunday.isocalendar()[0]}-W{sunday.isocalendar()[1]:02d}"
                rows.append((sunday, "daily_8h_average", sum(window) / 144, 8 * H, week))
            sunday += timedelta(days=7)
        person = world.user(user_id)
        department = departments[person["UF_DEPARTMENT"][0]] if person["UF_DEPARTMENT"] else None
        for on, rule, figure, limit, period in sorted(rows, key=lambda r: (r[0], RULE_ORDER.index(r[1]))):
            found.append(
                {
                    "portal": "emu", "user_id": user_id,
                    "user_name": f"{person['NAME']} {person['LAST_NAME']}", "department": department,
                    "date": on.isoformat(), "period": period, "rule": rule, "figure": figure,
                    "limit": limit, "unit": "s/workday" if rule == "daily_8h_average" else "s",
                    "estimated": False, "source": CHECKED[rule],
                }
            )  # fmt: skip
    return found


def test_the_world_breaks_the_rules_the_comparison_is_about() -> None:
    """A guard on the test itself: the month holds findings of several rules, holiday work among them."""
    world = World(len(USERS), SimClock(NOW, base=ManualClock(NOW)))
    rules = {row["rule"] for row in expected_findings(world)}
    assert {"daily_rest", "break_30m_over_6h", "no_sunday_holiday_work"} <= rules


def test_the_de_report_of_the_month_equals_the_worlds_truth(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["report", "compliance", "--month", "2026-01", "--database", stored.database_url,
         "--rules", "de", "--format", "json"]
    )  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    stretch = [row for row in rows if row["rule"] == "no_6h_without_break"]
    assert all(row["estimated"] for row in stretch)  # where the pause fell: the polls' estimate
    assert [row for row in rows if row["rule"] in CHECKED] == expected_findings(stored.emulator.world)


# -- pay categories: expected by hand ----------------------------------------------------------


def night_of(start: datetime, end: datetime) -> float:
    """Seconds of [start, end) inside 22:00-06:00 on the local clock of `start`'s zone."""
    zone = start.tzinfo
    total = 0.0
    day = start.date() - timedelta(days=1)
    while day <= end.date():
        opens = datetime.combine(day, NIGHT[0], tzinfo=zone)
        closes = datetime.combine(day + timedelta(days=1), NIGHT[1], tzinfo=zone)
        total += max(0.0, (min(end, closes) - max(start, opens)).total_seconds())
        day += timedelta(days=1)
    return total


def expected_pay(world: World) -> dict[tuple[str, int], PayCategories]:
    """Each user's January: overtime beyond their own minimum duration on a workday, weekend and
    holiday work apart, night over the day's span (see the module docstring)."""
    found = {}
    for user_id, days in world_days(world, FIRST, LAST).items():
        norm = norms.user_norms(user_id).min_duration
        worked = sum(d.duration for d in days)
        over = sum(max(0, d.duration - norm) for d in days if d.kind() == portal_calendar.WORKDAY)
        weekend = sum(d.duration for d in days if d.kind() == portal_calendar.WEEKEND)
        holiday = sum(d.duration for d in days if d.kind() == portal_calendar.HOLIDAY)
        found[("emu", user_id)] = PayCategories(
            user_id=user_id,
            month="2026-01",
            worked=worked,
            regular=worked - over - weekend - holiday,
            overtime=over,
            weekend=weekend,
            holiday=holiday,
            night=round(sum(night_of(d.start, d.end) for d in days)),
            estimated=any(d.breaks for d in days),
        )
    return found


def exact_night(world: World, user_id: int) -> float:
    """The world's night work of the user's January, pauses left out."""
    total = 0.0
    for d in world_days(world, FIRST, LAST).get(user_id, []):
        total += night_of(d.start, d.end)
        total -= sum(night_of(a.astimezone(d.zone), b.astimezone(d.zone)) for a, b in d.day.pauses)
    return total


def test_the_timesheets_pay_categories_equal_the_worlds_truth(stored: Stored) -> None:
    sheet = commands.timesheet(stored.config, FIRST)
    want = expected_pay(stored.emulator.world)
    assert sheet.pay == want
    night_worker = want[("emu", norms.NIGHT_SHIFT_USER)]
    assert night_worker.night > 50 * H and night_worker.holiday > 0  # the shape is really tested
    for (_, user_id), pay in want.items():
        assert exact_night(stored.emulator.world, user_id) <= pay.night


# -- the attendance view ---------------------------------------------------------------------


def expected_attendance(world: World) -> dict[tuple[int, date], dict[str, Any]]:
    """Late, early and short figures of January's workdays, by the user's own norms and zone."""
    found = {}
    for user_id, days in world_days(world, FIRST, LAST).items():
        rule = norms.user_norms(user_id)
        for d in days:
            if d.kind() != portal_calendar.WORKDAY:
                continue
            start, finish = d.local_seconds(d.start), d.local_seconds(d.end)
            late = start > rule.max_start + rule.allowed_delta
            early = finish < rule.min_finish - rule.allowed_delta
            short = d.duration < rule.min_duration - rule.allowed_delta
            if late or early or short:
                found[(user_id, d.date)] = {
                    "late_seconds": start - rule.max_start if late else None,
                    "early_leave_seconds": rule.min_finish - finish if early else None,
                    "short_seconds": rule.min_duration - d.duration if short else None,
                }
    return found


def attendance_rows(engine: Engine) -> list[dict[str, Any]]:
    query = text(
        "SELECT user_id, work_date, day_kind, late, late_seconds, early_leave, early_leave_seconds,"
        " short_day, short_seconds FROM attendance WHERE work_date >= :first AND work_date <= :last"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"first": FIRST, "last": LAST}).mappings().all()
    return [{**row, "work_date": date.fromisoformat(str(row["work_date"])[:10])} for row in rows]


def test_the_attendance_views_kinds_and_flags_equal_the_worlds_truth(stored: Stored, engine: Engine) -> None:
    rows = attendance_rows(engine)
    worked = world_days(stored.emulator.world, FIRST, LAST)
    kinds = {(row["user_id"], row["work_date"]): row["day_kind"] for row in rows}
    every_day = {(u, FIRST + timedelta(days=n)) for u in worked for n in range((LAST - FIRST).days + 1)}
    assert every_day <= set(kinds)  # a row per day for everyone who worked
    assert kinds == {
        (u, day): "absent" if absences.is_absent(u, day) else portal_calendar.day_kind(day)
        for u, day in kinds
    }
    flagged = {
        (row["user_id"], row["work_date"]): {
            "late_seconds": row["late_seconds"],
            "early_leave_seconds": row["early_leave_seconds"],
            "short_seconds": row["short_seconds"],
        }
        for row in rows
        if row["late"] or row["early_leave"] or row["short_day"]
    }
    want = expected_attendance(stored.emulator.world)
    assert flagged == want
    lates = {key for key, flags in want.items() if flags["late_seconds"] is not None}
    assert len(lates) >= 5  # the world's habits do come late


# -- a backfill before the first poll ----------------------------------------------------------


def test_a_backfill_before_the_first_poll_dates_each_day_in_the_users_zone(
    engine: Engine, database_url: str, make_emulator: MakeEmulator
) -> None:
    """User 5 (Asia/Tokyo, +09:00) has records written in UTC: a morning start is the evening
    before in UTC, so only the user's zone gives its date (the directory names it)."""
    emulator = store(engine, database_url, make_emulator, poll_first=False).emulator
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, work_date FROM workdays WHERE work_date >= :first AND work_date <= :last"),
            {"first": FIRST, "last": LAST},
        ).all()
    dates = {(user_id, date.fromisoformat(str(day)[:10])) for user_id, day in rows}
    want = {(u, d.date) for u, days in world_days(emulator.world, FIRST, LAST).items() for d in days}
    assert dates == want
