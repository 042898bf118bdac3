"""`report compliance` and the timesheet's pay categories over a month stored the real way.

November 2026 of three people is written as the portal's closed records (the backfill's write
path), with the portal's calendar (a holiday on the 18th) and an absence; what the rules must
find and how the hours split is computed here from the plan alone, by plain arithmetic.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import make_config
from helpers import seeded_copy
from norm_rows import absence
from sqlalchemy import Engine

from poller import commands, storage
from poller.cli import main
from poller.compliance import DayKind, DayStatus, Month, Norms, PayCategories, RulePack, load_pack
from poller.compliance.from_storage import build_day, find_stored_violations
from poller.storage import WorkdayFigures

PORTAL = "acme"
ZONE = timezone(timedelta(hours=1))  # CET all month: no DST change in November
NOVEMBER = date(2026, 11, 1)
HOLIDAY = date(2026, 11, 18)
ABSENT = (2, date(2026, 11, 20))  # user 2 is marked absent that day, and works all the same
NAMES = {1: ("Anna", "Berg", 1), 2: ("Boris", "Chen", 2), 3: ("Carla", "Diaz", 1)}
DEPARTMENTS = {1: "Sales", 2: "Support"}
FETCHED = datetime(2026, 12, 2, 8, tzinfo=UTC)


@dataclass(frozen=True)
class Planned:
    """One planned day: local start, end (on the next day when not after the start), break minutes."""

    user_id: int
    day: date
    start: str
    end: str
    break_minutes: int

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.day, time.fromisoformat(self.start), tzinfo=ZONE)

    @property
    def ends(self) -> datetime:
        ends = datetime.combine(self.day, time.fromisoformat(self.end), tzinfo=ZONE)
        return ends if ends > self.starts else ends + timedelta(days=1)

    @property
    def worked(self) -> int:
        return int((self.ends - self.starts).total_seconds()) - self.break_minutes * 60


def nov(day: int) -> date:
    return date(2026, 11, day)


def weekdays(*days: int) -> list[int]:
    return [d for d in days if nov(d).weekday() < 5]


def plan() -> list[Planned]:
    """Anna: a day without a break (3rd), a short rest (4th to 5th), ten days on end (7th-16th).
    Boris: a long day with a short break (9th), the holiday, the absence, a night shift (27th).
    Carla: one short morning."""
    days = [
        Planned(1, nov(d), "09:00", "17:30", 30) for d in [2, 6, *range(7, 18), 19, 20, *range(23, 28), 30]
    ]
    days += [
        Planned(1, nov(3), "08:00", "15:00", 0),
        Planned(1, nov(4), "13:00", "23:00", 30),
        Planned(1, nov(5), "07:00", "15:30", 30),
    ]
    ordinary = [d for d in weekdays(*range(2, 31)) if d not in (9, 18, 27)]
    days += [Planned(2, nov(d), "10:00", "18:45", 45) for d in ordinary]
    days += [
        Planned(2, nov(9), "10:00", "20:30", 10),
        Planned(2, HOLIDAY, "10:00", "14:00", 0),
        Planned(2, nov(27), "20:00", "04:30", 30),
        Planned(3, nov(2), "09:00", "13:00", 0),
    ]
    return sorted(days, key=lambda p: (p.user_id, p.day))


def kind(user_id: int, day: date) -> DayKind:
    if (user_id, day) == ABSENT:
        return DayKind.ABSENT
    if day == HOLIDAY:
        return DayKind.HOLIDAY
    return DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WORKDAY


def seed(engine: Engine) -> None:
    """The directory, the calendar, the absence, then the month as closed records."""
    users = [
        {"ID": str(u), "NAME": n, "LAST_NAME": ln, "UF_DEPARTMENT": [dep], "ACTIVE": True}
        for u, (n, ln, dep) in NAMES.items()
    ]
    storage.save_departments(
        engine, PORTAL, [{"ID": str(k), "NAME": v} for k, v in DEPARTMENTS.items()], FETCHED
    )
    storage.save_users(engine, PORTAL, users, FETCHED)
    storage.save_calendar(
        engine, PORTAL, 2026, holidays=[HOLIDAY], moved_workdays=[], week_holidays=[5, 6], source="config",
        seen_at=FETCHED,
    )  # fmt: skip
    user_id, day = ABSENT
    starts = datetime.combine(day, time(), tzinfo=ZONE)
    event = absence(user_id, day, day, event_id="77", starts_at=starts, ends_at=starts + timedelta(days=1))
    storage.save_absences(engine, PORTAL, [user_id], NOVEMBER, nov(30), [event], FETCHED)
    records = [
        {
            "id": 1000 + n,
            "userId": p.user_id,
            "startTime": p.starts.isoformat(),
            "endTime": p.ends.isoformat(),
            "duration": p.worked,
            "breakLength": p.break_minutes * 60,
            "state": {"status": "CLOSED"},
            "isApproved": True,
        }
        for n, p in enumerate(plan())
    ]
    storage.save_records(engine, PORTAL, records, FETCHED)


@pytest.fixture(scope="module")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory, head_sqlite_file: Path) -> Path:
    """The seeded month in a SQLite file, once per module; `seeded` hands out copies."""
    return seeded_copy(head_sqlite_file, tmp_path_factory.mktemp("seeded") / "seeded.sqlite3", seed)


@pytest.fixture
def seeded(engine: Engine, database_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """`database_url` holding the seeded month: on SQLite a copy of the module's file, on
    PostgreSQL seeded anew."""
    if database_url.startswith("sqlite:///"):
        engine.dispose()  # no connection holds the file it is replaced under
        shutil.copyfile(request.getfixturevalue("seeded_sqlite"), database_url.removeprefix("sqlite:///"))
    else:
        seed(engine)
    yield database_url


# -- what the eu pack must find, by hand -------------------------------------------------------


def expected_eu() -> list[dict[str, object]]:
    """Daily rest under 11 h, a day over 6 h with under 15 minutes of breaks, a week without 35 h
    of rest, each as the CSV/JSON row says it."""
    found: list[dict[str, object]] = []
    by_user: dict[int, list[Planned]] = {}
    for p in plan():
        by_user.setdefault(p.user_id, []).append(p)
    for user_id, days in by_user.items():
        rows: list[tuple[date, int, dict[str, object]]] = []
        for before, after in pairwise(days):
            rest = int((after.starts - before.ends).total_seconds())
            if rest < 11 * 3600:
                rows.append((after.day, 0, finding(user_id, after.day, "daily_rest", rest, 11 * 3600)))
        for p in days:
            if p.worked > 6 * 3600 and p.break_minutes * 60 < 15 * 60:
                rows.append((p.day, 1, finding(user_id, p.day, "break_after_6h", p.break_minutes * 60, 900)))
        for sunday in (nov(8), nov(15), nov(22), nov(29)):
            monday = datetime.combine(sunday - timedelta(days=6), time(), tzinfo=ZONE)
            inside = [p for p in days if sunday - timedelta(days=6) <= p.day <= sunday]
            if not inside:
                continue
            edges = [datetime.min.replace(tzinfo=UTC), *(t for p in days for t in (p.starts, p.ends))]
            edges.append(datetime.max.replace(tzinfo=UTC))
            rests = [
                (edges[i + 1] - edges[i]).total_seconds() if i and i < len(edges) - 2 else float("inf")
                for i in range(0, len(edges) - 1, 2)
                if edges[i + 1] > monday and edges[i] < monday + timedelta(days=7)
            ]
            if max(rests) < 35 * 3600:
                row = finding(user_id, sunday, "weekly_rest", int(max(rests)), 35 * 3600)
                rows.append((sunday, 2, row | {"period": f"2026-W{sunday.isocalendar()[1]}"}))
        found += [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]))]
    return found


def finding(user_id: int, day: date, rule: str, figure: int, limit: int) -> dict[str, object]:
    first, last, department = NAMES[user_id]
    source = {
        "daily_rest": "Directive 2003/88/EC, art. 3",
        "break_after_6h": "Directive 2003/88/EC, art. 4",
        "weekly_rest": "Directive 2003/88/EC, art. 5",
    }[rule]
    return {
        "portal": PORTAL, "user_id": user_id, "user_name": f"{first} {last}",
        "department": DEPARTMENTS[department], "date": day.isoformat(), "period": day.isoformat(),
        "rule": rule, "figure": figure, "limit": limit, "unit": "s", "estimated": False, "source": source,
    }  # fmt: skip


def test_the_plan_breaks_what_it_is_meant_to() -> None:
    """The hand computation itself finds the four planned violations (a guard on the test)."""
    assert [(row["user_id"], row["date"], row["rule"]) for row in expected_eu()] == [
        (1, "2026-11-03", "break_after_6h"),
        (1, "2026-11-05", "daily_rest"),
        (1, "2026-11-15", "weekly_rest"),
        (2, "2026-11-09", "break_after_6h"),
    ]


def report(capsys: pytest.CaptureFixture[str], database: str, *options: str) -> tuple[int, str]:
    code = main(["report", "compliance", "--month", "2026-11", "--database", database, *options])
    return code, capsys.readouterr().out


def test_the_eu_pack_finds_the_planned_violations_and_exits_1(
    seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = report(capsys, seeded, "--format", "json")
    assert code == 1
    assert json.loads(out) == expected_eu()


def test_the_csv_names_its_columns_and_department_filters_people(
    seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = report(capsys, seeded, "--format", "csv", "--department", "SALES")
    assert code == 1
    lines = list(csv.DictReader(io.StringIO(out)))
    assert list(lines[0]) == [
        "portal", "user_id", "user_name", "department", "date", "period", "rule", "figure", "limit",
        "unit", "estimated", "source",
    ]  # fmt: skip
    expected = [row for row in expected_eu() if row["department"] == "Sales"]
    assert [(int(line["user_id"]), line["date"], line["rule"], int(line["figure"])) for line in lines] == [
        (row["user_id"], row["date"], row["rule"], row["figure"]) for row in expected
    ]
    assert {line["estimated"] for line in lines} == {"false"}


def test_none_found_is_exit_0_with_a_summary(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = report(capsys, seeded, "--user", "3")
    assert (code, out.strip()) == (
        0,
        "no violations of eu (EU Working Time Directive 2003/88/EC) in 2026-11 on acme: 1 person judged",
    )


def test_the_table_says_what_was_judged_and_the_de_pack_finds_the_long_stretch(
    seeded: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code, out = report(capsys, seeded, "--rules", "de", "--user", "1")
    lines = out.splitlines()
    assert code == 1 and all(len(line) <= 100 for line in lines)
    assert lines[0].split() == ["user", "name", "date", "rule", "figure", "limit", "estimated", "source"]
    stretch = [line for line in lines if "no_6h_without_break" in line]
    assert len(stretch) == 1 and "2026-11-03" in stretch[0] and "7:00" in stretch[0]
    sunday = [line for line in lines if "no_sunday_holiday_work" in line]
    assert [line.split()[3] for line in sunday] == ["2026-11-08", "2026-11-15"]
    assert lines[-1].startswith("not shown at 100 columns: period, portal")
    found = sum("Anna Berg" in line for line in lines)
    assert (
        f"{found} violations of de (Germany: Arbeitszeitgesetz (ArbZG)) in 2026-11 on acme: 1 of 1 person"
        in lines
    )


def test_a_bad_rules_file_is_one_line_naming_the_file_and_key(
    seeded: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pack = tmp_path / "company.toml"
    pack.write_text('[rules.daily_rest]\nkind = "daily_rest"\nlimit = 11\nsource = "ArbZG"\n')
    assert (
        main(["report", "compliance", "--month", "2026-11", "--database", seeded, "--rules", str(pack)]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{pack}: rules.daily_rest.limit: expected a duration" in err[0]
    assert main(["report", "compliance", "--database", seeded]) == 2
    assert "--month" in capsys.readouterr().err
    assert main(["report", "timesheet", "--month", "2026-11", "--database", seeded, "--rules", "de"]) == 2
    assert "--rules: only for `report compliance`" in capsys.readouterr().err
    assert main(["report", "compliance", "--month", "2026-11", "--database", seeded, "--as-closed"]) == 2
    assert "--as-closed: only for `report timesheet`" in capsys.readouterr().err


# -- pay categories --------------------------------------------------------------------------


def night_seconds(p: Planned) -> int:
    """Work (breaks included: only the span is stored) inside 22:00-06:00, by day windows."""
    total = 0
    for offset in (-1, 0, 1):
        opens = datetime.combine(p.day + timedelta(days=offset), time(22), tzinfo=ZONE)
        closes = opens + timedelta(hours=8)
        total += max(0, int((min(p.ends, closes) - max(p.starts, opens)).total_seconds()))
    return total


def expected_pay() -> dict[tuple[str, int], PayCategories]:
    found = {}
    for user_id in NAMES:
        days = [p for p in plan() if p.user_id == user_id]
        over = sum(max(0, p.worked - 8 * 3600) for p in days if kind(user_id, p.day) is DayKind.WORKDAY)
        weekend = sum(p.worked for p in days if kind(user_id, p.day) is DayKind.WEEKEND)
        holiday = sum(p.worked for p in days if kind(user_id, p.day) is DayKind.HOLIDAY)
        worked = sum(p.worked for p in days)
        found[(PORTAL, user_id)] = PayCategories(
            user_id=user_id,
            month="2026-11",
            worked=worked,
            regular=worked - over - weekend - holiday,
            overtime=over,
            weekend=weekend,
            holiday=holiday,
            night=sum(night_seconds(p) for p in days),
            estimated=any(p.break_minutes for p in days),  # a break's place is not stored
        )
    return found


def test_the_timesheet_splits_the_month_into_pay_categories(seeded: str) -> None:
    stub = {"name": PORTAL, "webhook_url": "http://127.0.0.1:9/rest/1/unused/", "users": [1, 2, 3]}
    sheet = commands.timesheet(make_config(stub, database_url=seeded), NOVEMBER)
    assert sheet.pay == expected_pay()
    boris = expected_pay()[(PORTAL, 2)]
    assert (boris.holiday, boris.night, boris.overtime) == (4 * 3600, 6.5 * 3600, 2 * 3600 + 20 * 60)


def test_the_pay_columns_are_named_for_a_payroll_import(
    seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "timesheet", "--month", "2026-11", "--database", seeded, "--format", "csv"]) == 0
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    pay = expected_pay()
    for line in lines[:-1]:
        want = pay[(PORTAL, int(line["user_id"]))]
        assert {
            name: float(line[f"{name}_hours"])
            for name in ("regular", "overtime", "night", "weekend", "holiday")
        } == {
            name: round(getattr(want, name) / 3600, 2)
            for name in ("regular", "overtime", "night", "weekend", "holiday")
        }
    total = lines[-1]
    assert float(total["holiday_hours"]) == 4.0 and total["pay_estimated"] == "true"
    night = ["report", "timesheet", "--month", "2026-11", "--database", seeded, "--format", "json"]
    assert main([*night, "--night", "23:00-05:00"]) == 0
    sheet = json.loads(capsys.readouterr().out)
    assert sheet["night"] == "23:00-05:00"
    boris = next(row for row in sheet["rows"] if row["user_id"] == 2)
    assert boris["night_seconds"] == 5.5 * 3600 and boris["weekend_hours"] == 0.0
    assert main([*night, "--night", "22:00"]) == 2
    assert "is not a night window (HH:MM-HH:MM)" in capsys.readouterr().err


# -- one day from stored rows ------------------------------------------------------------------


def figures(
    start: str, finish: str | None, worked: int | None, leaks: int, **values: object
) -> WorkdayFigures:
    fields: dict[str, object] = {
        "portal": PORTAL, "user_id": 1, "work_date": nov(3), "time_start": datetime.fromisoformat(start),
        "time_finish": datetime.fromisoformat(finish) if finish else None, "tz_offset": 3600,
        "status": "CLOSED", "worked_seconds": worked, "worked_is_estimate": False, "leaks_seconds": leaks,
        "user_name": None, "department": None,
    }  # fmt: skip
    return WorkdayFigures(**(fields | values))  # type: ignore[arg-type]


def test_a_day_open_when_last_seen_is_estimated_and_ends_where_its_figures_reach() -> None:
    day = build_day(
        [
            figures("2026-11-03T07:00:00+00:00", "2026-11-03T09:00:00+00:00", 7200, 0),
            figures("2026-11-03T10:00:00+00:00", None, 3000, 600, status="OPENED", worked_is_estimate=True),
        ],
        DayKind.WORKDAY,
        Norms(),
    )
    assert [(i.start.isoformat(), i.end.isoformat()) for i in day.intervals] == [
        ("2026-11-03T08:00:00+01:00", "2026-11-03T10:00:00+01:00"),
        ("2026-11-03T11:00:00+01:00", "2026-11-03T12:00:00+01:00"),
    ]
    assert (day.worked_seconds, day.break_seconds, day.status, day.estimated) == (
        10200,
        4200,
        DayStatus.OPEN,
        True,
    )
    assert day.longest_stretch == 7200  # the closed first part, longer than half the open one


def test_a_stretch_that_rests_on_the_place_of_a_break_is_estimated(seeded: str, engine: Engine) -> None:
    """Anna's 4th, 13:00-23:00 with 30 minutes of breaks somewhere: 4:45 at least without one."""
    de = load_pack("de")
    stricter = RulePack(
        "strict", "", tuple(replace(r, limit=4 * 3600) for r in de.rules if r.kind == "max_stretch")
    )
    found = find_stored_violations(engine, Month.parse("2026-11"), stricter, users=[1])
    assert [(f.violation.on, f.violation.figure, f.violation.estimated) for f in found.findings] == [
        (nov(3), 7 * 3600, False),  # no break at all: the stretch is the span, exactly
        (nov(4), (10 * 3600 - 1800) / 2, True),  # 4:45; the ordinary days' 4:00 is not over 4:00
    ]
