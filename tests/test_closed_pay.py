"""`report timesheet --as-closed` judges a closed month's pay by what was stored at the close.

A month closed, then the portal's calendar loses a holiday, an absence is marked removed and a
user's norms are seen for the first time: the plain timesheet's pay categories follow the new
data, the closed one's stay what they were right after the close. --user and --department keep
the same people with and without --as-closed. SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import norm_rows
import pytest
from sqlalchemy import Engine, insert

from poller import commands, storage
from poller.errors import ConfigError
from poller.history import closing, reports
from poller.models import users_table, workdays_table

H = 3600
PORTAL = "acme"
NOVEMBER = date(2026, 11, 1)
SEEN = datetime(2026, 11, 1, 6, tzinfo=UTC)
CLOSED_AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 8, tzinfo=UTC)
HOLIDAY = date(2026, 11, 4)  # a Wednesday
ABSENT = date(2026, 11, 5)  # a Thursday


def workday(user_id: int, day: date, worked: int) -> dict[str, Any]:
    """A closed workdays row in UTC starting at 08:00, without breaks."""
    start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    return {
        "portal": PORTAL, "user_id": user_id, "work_date": day, "tz_offset": 0, "status": "CLOSED",
        "time_start": start, "time_finish": start + timedelta(seconds=worked), "worked_seconds": worked,
        "worked_is_estimate": False, "leaks_seconds": 0, "pending_approval": False, "source": "polls",
    }  # fmt: skip


def pay(sheet: Any) -> dict[int, tuple[int, int, int, int]]:
    """Per user: regular, overtime, weekend and holiday seconds."""
    return {
        user_id: (part.regular, part.overtime, part.weekend, part.holiday)
        for (_, user_id), part in (sheet.pay or {}).items()
    }


def calendar(engine: Engine, holidays: list[date], seen_at: datetime) -> None:
    storage.save_calendar(
        engine, PORTAL, 2026, holidays=holidays, moved_workdays=[], week_holidays=[5, 6],
        source="config", seen_at=seen_at,
    )  # fmt: skip


def test_a_closed_months_pay_keeps_the_calendar_absences_and_norms_of_its_close(
    engine: Engine, database_url: str
) -> None:
    # User 1 works the holiday; user 2 works a day they are absent; users 3 and 4 have no norms;
    # user 5 has a schedule of 7.5 h; user 6's department is assigned schedule 2, not read yet.
    calendar(engine, [date(2026, 1, 1), HOLIDAY], SEEN)
    storage.save_absences(
        engine,
        PORTAL,
        [2],
        NOVEMBER,
        date(2026, 11, 30),
        [norm_rows.absence(2, ABSENT, ABSENT, event_id="7", name="Leave")],
        SEEN,
    )
    storage.save_norms(engine, PORTAL, [norm_rows.norms(1), norm_rows.norms(2)], SEEN)
    storage.save_schedules(
        engine, PORTAL, [norm_rows.schedule(1, (norm_rows.shift(9 * H, 17 * H, 1800),))], SEEN
    )
    storage.save_schedule_assignments(engine, PORTAL, {("user", 5): 1, ("department", 9): 2}, SEEN)
    users = [
        {
            "portal": PORTAL,
            "user_id": user,
            "active": True,
            "department_ids": [department],
            "updated_at": SEEN,
        }
        for user, department in ((5, 8), (6, 9))
    ]
    with engine.begin() as connection:
        connection.execute(
            insert(workdays_table),
            [
                workday(1, HOLIDAY, 9 * H),
                workday(2, ABSENT, 10 * H),
                workday(3, date(2026, 11, 2), 9 * H),
                workday(4, date(2026, 11, 3), 9 * H),
                workday(5, date(2026, 11, 2), 9 * H),
                workday(6, date(2026, 11, 2), 9 * H),
            ],
        )
        connection.execute(insert(users_table), users)
    config = commands.database_only(database_url)
    closing.close_month(config, NOVEMBER, now=CLOSED_AT)
    at_close = {
        1: (0, 0, 0, 9 * H),  # all holiday
        2: (10 * H, 0, 0, 0),  # work on a day marked absent is regular
        3: (8 * H, H, 0, 0),  # no norms: over 8 hours
        4: (8 * H, H, 0, 0),
        5: (15 * H // 2, 3 * H // 2, 0, 0),  # over the shift
        6: (8 * H, H, 0, 0),  # no shift known yet, no norms: over 8 hours
    }
    assert pay(reports.timesheet(config, NOVEMBER)) == at_close
    assert pay(reports.closed_timesheet(config, NOVEMBER)) == at_close

    # After the close: the holiday is dropped from the calendar, the absence is no longer
    # listed (marked removed), user 3's norms are seen (6 h, standing for the days before
    # them in the view), user 2's change (from December on), user 4's absence is listed, and
    # schedule 2 (6 h) is read, its first version standing for the days before it.
    calendar(engine, [date(2026, 1, 1)], LATER)
    storage.save_absences(engine, PORTAL, [2], NOVEMBER, date(2026, 11, 30), [], LATER)
    storage.save_norms(
        engine,
        PORTAL,
        [norm_rows.norms(2, min_duration=4 * H), norm_rows.norms(3, min_duration=6 * H)],
        LATER,
    )
    late = norm_rows.absence(
        4,
        date(2026, 11, 3),
        date(2026, 11, 3),
        event_id="8",
        name="Leave",
        starts_at=datetime(2026, 11, 5, tzinfo=UTC),
        ends_at=datetime(2026, 11, 6, tzinfo=UTC),
    )
    storage.save_absences(engine, PORTAL, [4], NOVEMBER, date(2026, 11, 30), [late], LATER)
    later_schedules = [
        norm_rows.schedule(1, (norm_rows.shift(9 * H, 19 * H, 0),)),
        norm_rows.schedule(2, (norm_rows.shift(8 * H, 14 * H, 0),)),
    ]
    storage.save_schedules(engine, PORTAL, later_schedules, LATER)

    assert pay(reports.timesheet(config, NOVEMBER)) == {
        1: (8 * H, H, 0, 0),  # a workday now, over user 1's 8 h
        2: (8 * H, 2 * H, 0, 0),  # a workday now, over the 8 h in force on the day
        3: (6 * H, 3 * H, 0, 0),  # over the 6 h seen after the close
        4: (9 * H, 0, 0, 0),  # absent now
        5: (15 * H // 2, 3 * H // 2, 0, 0),  # schedule 1's change counts from December on
        6: (6 * H, 3 * H, 0, 0),  # over schedule 2's 6 h
    }
    assert pay(reports.closed_timesheet(config, NOVEMBER)) == at_close


def test_the_closed_timesheet_keeps_the_people_the_plain_one_keeps_and_needs_a_close(
    engine: Engine, database_url: str
) -> None:
    departments = {1: "Sales", 2: "Support", 3: "Sales", 4: None}
    with engine.begin() as connection:
        connection.execute(
            insert(workdays_table),
            [
                {**workday(user, date(2026, 11, 2), 9 * H), "department": department}
                for user, department in departments.items()
            ],
        )
    config = commands.database_only(database_url)
    with pytest.raises(ConfigError, match=r"^--as-closed: 2026-11 is not closed on any portal$"):
        reports.closed_timesheet(config, NOVEMBER)
    [close] = closing.close_month(config, NOVEMBER, now=CLOSED_AT)
    with pytest.raises(ConfigError, match=r"^--as-closed: 2026-11 is not closed on portal other$"):
        reports.closed_timesheet(config, NOVEMBER, portals=["other"])

    for department, wanted_users, kept in (
        (None, (), [(1, "Sales"), (2, "Support"), (3, "Sales"), (4, None)]),
        ("sALES", (), [(1, "Sales"), (3, "Sales")]),
        (None, (2, 3), [(2, "Support"), (3, "Sales")]),
        ("sales", (2, 3), [(3, "Sales")]),
        ("Nowhere", (), []),
    ):
        plain = reports.timesheet(config, NOVEMBER, department=department, users=wanted_users)
        closed = reports.closed_timesheet(config, NOVEMBER, department=department, users=wanted_users)
        assert [(row.user_id, row.department) for row in plain.rows] == kept
        assert [(row.user_id, row.department) for row in closed.rows] == kept
        assert set(closed.pay or {}) == {(PORTAL, user_id) for user_id, _ in kept}
        assert closed.as_closed == f"as closed: {PORTAL} at 2026-12-01 10:00 UTC, sha256 {close.digest[:16]}"
