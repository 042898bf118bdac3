"""The timesheet's overtime and the `attendance` view's agree: over the schedule's shift where one
applies (all of a day off it), else over the minimum duration, 8 hours only where the view has
no basis. Expected figures are worked out here from the rows written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import norm_rows
from conftest import make_config
from sqlalchemy import Engine, insert, text

from poller import commands, storage
from poller.compliance import DayKind, Month
from poller.compliance.days import WorkedDay
from poller.compliance.from_storage import stored_pay
from poller.compliance.overtime_norms import Threshold, thresholds, with_overtime_norms
from poller.models import users_table, workdays_table
from poller.storage.compliance_reads import OvertimeFigures

H = 3600
SEEN = datetime(2026, 3, 1, 6, tzinfo=UTC)
PORTAL = "acme"


def march(day: int) -> date:
    return date(2026, 3, day)


def workday(user_id: int, day: date, start_hour: int, worked: int) -> dict[str, Any]:
    """A closed workdays row in UTC+1 starting at `start_hour`, without breaks."""
    start = datetime(day.year, day.month, day.day, start_hour, tzinfo=UTC) - timedelta(hours=1)
    return {
        "portal": PORTAL, "user_id": user_id, "work_date": day, "tz_offset": H, "status": "CLOSED",
        "time_start": start, "time_finish": start + timedelta(seconds=worked), "worked_seconds": worked,
        "worked_is_estimate": False, "leaks_seconds": 0, "pending_approval": False, "source": "polls",
    }  # fmt: skip


# User 1: their own schedule, 09:00-17:00 less 30 minutes (7.5 h), Monday to Friday; norms 8 h.
# User 2: no schedule, a minimum duration of 7 h. User 3: their department's schedule, 08:00-16:00
# (8 h) Monday to Thursday, so a Friday is all overtime. User 4: neither, so 8 h. No calendar: SA, SU
# off; March 2nd 2026 is a Monday.
ROWS = [
    workday(1, march(2), 8, 9 * H),  # 1.5 h over the shift (1 h over the norms)
    workday(1, march(3), 9, 7 * H),
    workday(1, march(4), 9, 8 * H),  # 0.5 h over the shift (none over the norms)
    workday(2, march(2), 8, 9 * H),  # 2 h over the minimum duration
    workday(2, march(3), 9, 6 * H),
    workday(3, march(5), 8, 9 * H),  # 1 h over the shift
    workday(3, march(6), 9, 5 * H),  # a Friday, off the schedule: all 5 h
    workday(3, march(7), 9, 2 * H),  # a Saturday: weekend, not overtime
    workday(4, march(2), 8, 10 * H),  # 2 h over the 8 h fallback
]
EXPECTED = {1: 2 * H, 2: 2 * H, 3: 6 * H, 4: 2 * H}


def fill(engine: Engine) -> None:
    week, four_days = (1, 2, 3, 4, 5), (1, 2, 3, 4)
    schedules = [
        norm_rows.schedule(1, (norm_rows.shift(9 * H, 17 * H, 1800, week),)),
        norm_rows.schedule(2, (norm_rows.shift(8 * H, 16 * H, 0, four_days),)),
    ]
    storage.save_schedules(engine, PORTAL, schedules, SEEN)
    storage.save_schedule_assignments(engine, PORTAL, {("user", 1): 1, ("department", 7): 2}, SEEN)
    storage.save_norms(
        engine, PORTAL, [norm_rows.norms(1), norm_rows.norms(2, min_duration=7 * H), norm_rows.norms(3)], SEEN
    )
    departments = {1: [8], 2: [8], 3: [7, 8], 4: [8]}
    users = [
        {"portal": PORTAL, "user_id": user, "active": True, "department_ids": ids, "updated_at": SEEN}
        for user, ids in departments.items()
    ]
    with engine.begin() as connection:
        connection.execute(insert(workdays_table), ROWS)
        connection.execute(insert(users_table), users)


def view_overtime(engine: Engine) -> dict[int, tuple[int, set[str | None]]]:
    """Per user: the view's overtime of March and the bases it was measured on (days with work)."""
    query = text(
        "SELECT user_id, overtime_seconds, overtime_basis FROM attendance WHERE portal = :portal"
        " AND work_date BETWEEN '2026-03-01' AND '2026-03-31' AND worked_seconds IS NOT NULL"
    )
    found: dict[int, tuple[int, set[str | None]]] = {}
    with engine.connect() as connection:
        for user_id, seconds, basis in connection.execute(query, {"portal": PORTAL}):
            total, bases = found.get(user_id, (0, set()))
            found[user_id] = (total + (seconds or 0), bases | {basis})
    return found


def test_the_pay_categories_count_overtime_as_the_attendance_view_does(
    engine: Engine, database_url: str
) -> None:
    fill(engine)
    view = view_overtime(engine)
    assert view == {
        1: (2 * H, {"schedule"}),
        2: (2 * H, {"min_duration"}),
        3: (6 * H, {"schedule", None}),  # the Saturday has no overtime figure
        4: (0, {None}),  # neither a schedule nor norms: the view has no figure
    }
    pay = stored_pay(engine, PORTAL, Month.parse("2026-03"))
    assert {user_id: part.overtime for user_id, part in pay.items()} == EXPECTED
    assert all(pay[user].overtime == view[user][0] for user in (1, 2, 3))
    assert (pay[3].weekend, pay[3].regular) == (2 * H, 16 * H - 6 * H - 2 * H)
    stub = {"name": PORTAL, "webhook_url": "http://127.0.0.1:9/rest/1/unused/", "users": [1, 2, 3, 4]}
    sheet = commands.timesheet(make_config(stub, database_url=database_url), march(1))
    assert {user_id: part.overtime for (_, user_id), part in (sheet.pay or {}).items()} == EXPECTED


def figures(user_id: int, basis: str | None, worked: int | None, over: int | None) -> OvertimeFigures:
    return OvertimeFigures(user_id, march(2), basis, worked, over, 8 * H)


def test_a_days_threshold_is_exact_from_its_overtime_or_norm_else_a_lower_bound() -> None:
    found = thresholds(
        [
            figures(1, "schedule", 9 * H, H),  # the shift: 8 h
            figures(2, "min_duration", 7 * H, 0),  # the norm the view used
            figures(3, "schedule", 7 * H, 0),  # the shift is at least 7 h
            figures(4, "schedule", 5 * H, 5 * H),  # a day off the schedule: all of it
        ]
    )
    assert found == {
        (1, march(2)): Threshold(8 * H),
        (2, march(2)): Threshold(8 * H),
        (3, march(2)): Threshold(7 * H, at_least=True),
        (4, march(2)): Threshold(0),
    }
    # A frozen day longer than the stored one the view measured: the bound is all there is.
    days = [WorkedDay(3, march(2), DayKind.WORKDAY, worked_seconds=s) for s in (6 * H, 9 * H)]
    judged = with_overtime_norms(days, found)
    assert [(d.overtime_norm, d.estimated) for d in judged] == [(7 * H, False), (7 * H, True)]
    other = WorkedDay(5, march(2), DayKind.WORKDAY, worked_seconds=9 * H)
    assert with_overtime_norms([other], found) == [other]  # no basis: the caller's 8 h
