"""`report timesheet`: a month per person whose totals are the sum of its days, and the truth."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, portal

from poller import commands, storage
from poller.bitrix import fetch_departments, fetch_users
from poller.cli import main
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator, EmulatorSettings
from poller.emulator.world import World
from poller.history.timesheet import Day, Timesheet, Totals, build_timesheet, month_dates
from poller.poll.cycle import poll_portal
from poller.render.timesheet import ESTIMATE_LEGEND, render_timesheet, timesheet_json
from poller.storage.workday_rules import Poll, advance

OCTOBER = date(2026, 10, 1)
USERS = list(range(1, 9))
POLL_EVERY = timedelta(hours=6)  # a closed day stays CLOSED for 13 hours or more: each is seen


def workday(user_id: int, day: int, worked: int | None, **values: Any) -> dict[str, Any]:
    return {
        "portal": "emu",
        "user_id": user_id,
        "work_date": date(2026, 10, day),
        "worked_seconds": worked,
        "leaks_seconds": 600,
        "worked_is_estimate": False,
        "pending_approval": False,
        "user_name": "Anna Ivanova",
        "department": "Sales",
        **values,
    }


def test_days_add_up_into_rows_and_rows_into_the_totals() -> None:
    rows = [
        workday(5, 1, 3600),
        workday(5, 1, 1800, leaks_seconds=0),  # closed and opened again the same day
        workday(5, 2, None),  # unknown worked time: a day, an estimate, no time
        workday(5, 3, 7200, worked_is_estimate=True, pending_approval=True, user_name="Anna Petrova"),
        workday(1, 2, 100, department=None, user_name=None),
        workday(5, 1, 99999) | {"work_date": date(2026, 11, 1)},  # another month
    ]
    sheet = build_timesheet(date(2026, 10, 17), rows)
    assert sheet.month == OCTOBER and len(sheet.dates) == 31
    first, second = sheet.rows
    assert (first.user_id, first.user_name, first.department) == (1, None, None)
    assert (second.user_id, second.user_name, second.department) == (5, "Anna Petrova", "Sales")
    assert dict(second.days) == {
        date(2026, 10, 1): Day(5400, 600, False, False),
        date(2026, 10, 2): Day(0, 600, True, False),
        date(2026, 10, 3): Day(7200, 600, True, True),
    }
    assert second.totals == Totals(12600, 1800, days=3, days_pending_approval=1, days_estimated=2)
    assert sheet.totals == Totals(12700, 2400, days=4, days_pending_approval=1, days_estimated=2)
    assert sheet.day_totals()[date(2026, 10, 2)] == Day(100, 1200, True, False)


def test_corrected_days_are_counted_and_marked_after_the_close_first() -> None:
    rows = [
        workday(5, 1, 3600, corrections=2),
        workday(5, 2, 7200, corrections=1, corrections_after_close=1),
        workday(5, 3, 1800),
    ]
    sheet = build_timesheet(OCTOBER, rows)
    [row] = sheet.rows
    assert row.days[date(2026, 10, 2)] == Day(7200, 600, corrections=1, corrections_after_close=1)
    assert sheet.totals == Totals(12600, 1800, days=3, days_corrected=2, days_corrected_after_close=1)
    lines = render_timesheet(sheet, "table", None).splitlines()
    assert lines[1].split()[-1] == "corrected"
    assert lines[3].split()[4:7] == ["1.00*", "2.00!", "0.50"]  # after user, name, department
    assert lines[3].split()[-1] == "2"
    assert lines[-1] == (
        "* corrected after it was stored, ! after the month was closed: "
        "`report corrections --month 2026-10` lists what changed"
    )
    assert "corrected" not in render_timesheet(build_timesheet(OCTOBER, rows[2:]), "table", None)


def poll_october(database_url: str) -> World:
    """Poll 8 emulated users every 6 hours from 30 September to 2 November, names first."""
    clock = ManualClock(datetime(2026, 9, 30, tzinfo=UTC))
    emulator = Emulator(EmulatorSettings(users=8, rate=0, operating_limit=0), clock=clock).start()
    engine = storage.make_engine(database_url)
    try:
        storage.upgrade_database(engine)
        (client,) = make_clients(make_config(portal(emulator, USERS)), engine, clock=clock)
        storage.save_users(engine, "emu", fetch_users(client), clock.now())
        storage.save_departments(engine, "emu", fetch_departments(client), clock.now())
        while clock.now() < datetime(2026, 11, 2, tzinfo=UTC):
            poll_portal(client, engine, clock.now)
            clock.advance(POLL_EVERY.total_seconds())
    finally:
        engine.dispose()
        emulator.stop()
    return emulator.world


def truth(world: World, user_id: int) -> dict[date, Day]:
    """The emulator's plan for the user's October: every day closed, so nothing is an estimate."""
    days = {}
    for day in month_dates(OCTOBER):
        planned = world.workday(user_id, day)
        if planned is not None:
            worked = planned.worked_seconds()
            assert worked is not None
            days[day] = Day(worked, planned.leaks_seconds, False, not world.active_flag(user_id))
    return days


def test_a_timesheet_adds_up_to_the_sum_of_its_days_and_to_the_truth(
    database_url: str, october_template: tuple[Path, World]
) -> None:
    if database_url.startswith("sqlite:///"):  # the module's October, polled once
        template, world = october_template
        shutil.copyfile(template, database_url.removeprefix("sqlite:///"))
    else:
        world = poll_october(database_url)
    config = make_config(portal_stub(), database_url=database_url)
    sheet = commands.timesheet(config, OCTOBER)
    expected = {u: truth(world, u) for u in USERS}
    assert [row.user_id for row in sheet.rows] == [u for u in USERS if expected[u]]  # 2 and 3: no October
    for row in sheet.rows:
        assert dict(row.days) == expected[row.user_id], row.user_id
        assert row.totals == Totals.of(expected[row.user_id].values())
        assert row.user_name == world.user(row.user_id)["NAME"] + " " + world.user(row.user_id)["LAST_NAME"]
        assert row.department == ("Sales" if row.user_id % 2 else "Support")
    days = [day for row in sheet.rows for day in row.days.values()]
    assert sheet.totals == Totals.of(days)
    assert sheet.totals.worked_seconds == sum(
        sheet_day.worked_seconds for sheet_day in sheet.day_totals().values()
    )
    assert sheet.totals.days_pending_approval == len(expected[7]) > 0  # every 7th user awaits approval
    assert sheet.totals.days_estimated == 0

    as_json = json.loads(json.dumps(report_json(sheet)))
    assert as_json["totals"]["worked_seconds"] == sum(row["worked_seconds"] for row in as_json["rows"])
    for row in as_json["rows"]:
        assert row["worked_seconds"] == sum(day["worked_seconds"] for day in row["days"].values())


def report_json(sheet: Timesheet) -> dict[str, Any]:
    return timesheet_json(sheet)


def portal_stub() -> dict[str, object]:
    """A portal table for configs that only read the database."""
    return {"name": "emu", "webhook_url": "http://127.0.0.1:9/rest/1/unused/", "users": USERS}


@pytest.fixture(scope="module")
def october_template(tmp_path_factory: pytest.TempPathFactory, head_sqlite_file: Path) -> tuple[Path, World]:
    """October polled once into a SQLite file (a copy of the session's head: the upgrade finds
    nothing to do), and the world it was polled from."""
    database = tmp_path_factory.mktemp("october") / "october.sqlite3"
    shutil.copyfile(head_sqlite_file, database)
    return database, poll_october(f"sqlite:///{database}")


@pytest.fixture
def october(october_template: tuple[Path, World], tmp_path: Path) -> str:
    """A --database URL of a copy of the polled October (SQLite)."""
    database = tmp_path / "october.sqlite3"
    shutil.copyfile(october_template[0], database)
    return f"sqlite:///{database}"


def timesheet(capsys: pytest.CaptureFixture[str], database: str, *options: str) -> str:
    assert main(["report", "timesheet", "--month", "2026-10", "--database", database, *options]) == 0
    return capsys.readouterr().out


def test_the_csv_is_ready_for_a_spreadsheet_with_a_totals_line(
    october: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = list(csv.reader(io.StringIO(timesheet(capsys, october, "--format", "csv"))))
    header, people, total = lines[0], lines[1:-1], lines[-1]
    dates = [d.isoformat() for d in month_dates(OCTOBER)]
    assert header == [
        "portal", "user_id", "user_name", "department", *dates,
        "worked_hours", "break_hours", "days_worked", "days_pending_approval", "days_estimated",
        "days_corrected", "days_corrected_after_close",
        "regular_hours", "overtime_hours", "night_hours", "weekend_hours", "holiday_hours", "pay_estimated",
    ]  # fmt: skip
    assert [line[1] for line in people] == ["1", "4", "5", "6", "7", "8"]
    assert total[:4] == ["", "", "total", ""]
    for line in [*people, total]:
        hours = [float(cell) for cell in line[4:35] if cell]
        assert abs(sum(hours) - float(line[35])) <= 0.005 * len(hours) + 1e-9  # each cell rounded
    assert all(int(line[37]) == sum(1 for cell in line[4:35] if cell) for line in people)
    assert [sum(int(line[i]) for line in people) for i in (37, 38, 39)] == [
        int(total[i]) for i in (37, 38, 39)
    ]
    hours = [cell for line in people for cell in line[4:36] if cell]
    assert hours and all(re.fullmatch(r"\d+\.\d\d", cell) for cell in hours)  # 8.25, never 8:15


def test_a_department_keeps_its_people_whatever_the_case(
    october: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = json.loads(timesheet(capsys, october, "--department", "sUPPORT", "--format", "json"))
    assert [row["user_id"] for row in sheet["rows"]] == [4, 6, 8]
    assert {row["department"] for row in sheet["rows"]} == {"Support"}
    assert sheet["month"] == "2026-10" and len(sheet["dates"]) == 31
    assert sheet["totals"]["days_worked"] == sum(row["days_worked"] for row in sheet["rows"])


def test_the_table_fits_the_terminal_and_names_the_days_it_left_out(
    october: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    worked = sorted(
        int(d[-2:]) for d in json.loads(timesheet(capsys, october, "--format", "json"))["totals"]["days"]
    )
    assert 0 < len(worked) < 31  # weekends: nobody works
    monkeypatch.setenv("COLUMNS", "100")
    lines = timesheet(capsys, october).splitlines()
    assert lines[0] == "timesheet 2026-10 on portal emu (local work dates)"
    assert all(len(line) <= 100 for line in lines)
    heading = lines[1].split()
    assert heading[:2] == ["user", "name"]
    assert heading[-5:] == ["worked", "breaks", "days", "pending", "estimated"]
    shown_days = [int(word) for word in heading[2:-5]]
    assert shown_days == worked[: len(shown_days)]  # the days with work, from the first
    at = next(n for n, line in enumerate(lines) if line.startswith("not shown"))
    footer = " ".join(line.strip() for line in lines[at : lines.index("", at)])  # the pay table below
    hidden = [day for day in worked if day not in shown_days]
    assert footer == (
        f"not shown at 100 columns: {', '.join(day_ranges(hidden))}, department, "
        f"{31 - len(worked)} days without work; widen the terminal or use --format csv or json"
    )
    legend = next(n for n, line in enumerate(lines) if line.startswith("6 people; hours in decimals; ~"))
    assert lines[legend - 1].split()[0] == "total"
    monkeypatch.setenv("COLUMNS", "400")
    wide = timesheet(capsys, october).splitlines()
    assert "not shown" not in wide[-1]
    assert wide[1].split()[:4] == ["user", "name", "department", "1"]


def day_ranges(days: list[int]) -> list[str]:
    """`days 5-9`, `day 12`: consecutive days as one range."""
    ranges: list[list[int]] = []
    for day in days:
        if ranges and ranges[-1][-1] == day - 1:
            ranges[-1].append(day)
        else:
            ranges.append([day])
    return [f"day {r[0]}" if len(r) == 1 else f"days {r[0]}-{r[-1]}" for r in ranges]


def test_timesheet_options_are_checked(october: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["report", "timesheet", "--month", "2026-10", "--from", "2026-10-02", "--database", october])
        == 2
    )
    assert "give --month, not --from/--to" in capsys.readouterr().err
    assert main(["report", "--month", "2026-10", "--database", october]) == 2
    assert "--month and --department: only for `report timesheet`" in capsys.readouterr().err
    assert main(["report", "timesheet", "--month", "2026-13", "--database", october]) == 2
    assert "'2026-13' is not a month (YYYY-MM)" in capsys.readouterr().err


def test_at_80_columns_the_days_with_work_are_shown_and_the_empty_ones_counted() -> None:
    rows = [workday(5, day, 8 * 3600) for day in (4, 5, 6, 7, 8, 11, 12, 25)]
    lines = render_timesheet(build_timesheet(OCTOBER, rows), "table", 80).splitlines()
    assert all(len(line) <= 80 for line in lines)
    shown = [int(word) for word in lines[1].split()[2:-5]]
    assert shown and shown == [4, 5, 6, 7, 8, 11, 12, 25][: len(shown)]  # never an empty day first
    at = next(n for n, line in enumerate(lines) if line.startswith("not shown"))
    footer = " ".join(line.strip() for line in lines[at:])
    assert footer.endswith("widen the terminal or use --format csv or json")
    assert "23 days without work" in footer and "days 1-3" not in footer


def test_with_several_portals_the_portal_column_stays_at_80_columns() -> None:
    rows = [workday(5, 4, 3600), workday(5, 4, 7200) | {"portal": "other"}]
    lines = render_timesheet(build_timesheet(OCTOBER, rows), "table", 80).splitlines()
    assert lines[0] == "timesheet 2026-10 on 2 portals (local work dates)"
    assert lines[1].split()[:3] == ["portal", "user", "name"]
    assert [line.split()[:2] for line in lines[3:5]] == [["emu", "5"], ["other", "5"]]


def test_without_month_the_timesheet_is_of_the_current_month(
    october: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "timesheet", "--database", october]) == 0
    assert capsys.readouterr().out.startswith(f"timesheet {date.today():%Y-%m}")


def test_the_legend_marks_what_the_workday_rules_call_an_estimate() -> None:
    """`~` is on a day not closed when last seen (its hours counted up to then), and not on a
    closed day even when only polls saw it: the legend says so."""
    start = datetime(2026, 10, 5, 6, tzinfo=UTC)

    def polled(status: str) -> dict[str, Any]:
        poll = Poll(
            polled_at=start + timedelta(hours=9), last_seen_at=start + timedelta(hours=9), status=status,
            time_start=start, time_finish=start + timedelta(hours=8) if status == "CLOSED" else None,
            time_finish_default=None, work_date=date(2026, 10, 5), duration_seconds=7 * 3600,
            leaks_seconds=600, active=True,
        )  # fmt: skip
        day = advance(None, poll)
        return workday(1, 5, day["worked_seconds"], worked_is_estimate=day["worked_is_estimate"])

    closed, opened = polled("CLOSED"), polled("OPENED") | {"user_id": 2}
    lines = render_timesheet(build_timesheet(OCTOBER, [closed, opened]), "table", None).splitlines()
    assert lines[3].split()[4] == "7.00"  # user 1: closed, from polls only: the portal's DURATION
    assert lines[4].split()[4] == "~8.83"  # user 2: still open, 9 hours less the break, so far
    assert (
        ESTIMATE_LEGEND
        == "~ marks an estimate (the day was not closed when last seen: hours counted up to then)"
    )
    assert lines[-1] == f"2 people; hours in decimals; {ESTIMATE_LEGEND}"


def test_the_pay_categories_add_up_to_the_worked_hours_and_the_night_shift_has_night_hours(
    october: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = json.loads(timesheet(capsys, october, "--format", "json"))
    assert sheet["night"] == "22:00-06:00"
    for row in [*sheet["rows"], sheet["totals"]]:
        parts = ("regular_seconds", "overtime_seconds", "weekend_seconds", "holiday_seconds")
        assert sum(row[part] for part in parts) == row["worked_seconds"]
    nights = {row["user_id"]: row["night_seconds"] for row in sheet["rows"]}
    assert nights.pop(4) > 100 * 3600 and set(nights.values()) == {0}  # user 4 works a night shift
    table = timesheet(capsys, october).splitlines()
    at = next(n for n, line in enumerate(table) if line.split()[2:] == PAY_HEADINGS)
    assert (
        table[at].split()[:2] == ["user", "name"] and table[at + 9].split()[0] == "total"
    )  # heading, rule, 6 people, rule
    assert main(["report", "--night", "22:00-06:00", "--database", october]) == 2
    assert "--night: only for `report timesheet`" in capsys.readouterr().err


PAY_HEADINGS = ["regular", "overtime", "night", "weekend", "holiday"]
