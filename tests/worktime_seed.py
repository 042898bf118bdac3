"""A small month of work time on any migrated database, for the dashboard and Datasette tests.

November 2026 on portal "acme" (UTC+3, a holiday on the 4th, weekends SA,SU): three users in two
departments, each day built so that one flag of the `attendance` view holds (late, early leave,
short, overtime, work on a holiday and on a Saturday, a day awaiting approval, an absence), and
one correction; user 3 is at work on the 30th, as the newest poll says. Plain inserts: the point
is what the panels and canned queries read, not how the poller writes it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from poller.models import (
    absences_table,
    departments_table,
    portal_calendars_table,
    snapshots_table,
    user_norms_table,
    users_table,
    workday_revisions_table,
    workdays_table,
)

H = 3600
OFFSET = 3 * H
PORTAL = "acme"
MONTH = "2026-11"
SEEN = datetime(2026, 10, 1, tzinfo=UTC)
# user id: (name, last name, department id)
USERS = {1: ("Anna", "Petrova", 10), 2: ("Boris", "Ivanov", 20), 3: ("Carl", "Smith", 20)}
DEPARTMENTS = {10: "Sales", 20: "Support"}


def _day(user_id: int, day: int, start: float, finish: float, worked: float, **extra: Any) -> dict[str, Any]:
    """A closed workdays row of November `day`; `start`, `finish` and `worked` in local hours."""
    midnight = datetime(2026, 11, day, tzinfo=UTC) - timedelta(seconds=OFFSET)
    name, last_name, department = USERS[user_id]
    return {
        "portal": PORTAL, "user_id": user_id, "work_date": date(2026, 11, day), "tz_offset": OFFSET,
        "status": "CLOSED", "time_start": midnight + timedelta(hours=start),
        "time_finish": midnight + timedelta(hours=finish), "worked_seconds": int(worked * H),
        "worked_is_estimate": False, "leaks_seconds": int((finish - start - worked) * H),
        "pending_approval": False, "source": "polls", "user_name": f"{name} {last_name}",
        "department": DEPARTMENTS[department], **extra,
    }  # fmt: skip


WORKDAYS = [
    _day(1, 2, 9 + 40 / 60, 18.5, 8 + 20 / 60),  # late by 40 min, 20 min over
    _day(1, 3, 9, 17, 7.5),  # early leave and a short day
    _day(2, 2, 9, 20, 10.5),  # 2.5 h over
    _day(2, 4, 10, 14, 4),  # the holiday
    _day(2, 7, 10, 13, 3),  # a Saturday
    _day(3, 2, 9, 18, 8, pending_approval=True),
]


def seed_worktime(engine: Engine) -> None:
    """Write the month's directory, calendar, norms, workdays, an absence and a correction."""
    norms = {"max_start": 9 * H, "min_finish": 18 * H, "min_duration": 8 * H, "allowed_delta": 900}
    with engine.begin() as connection:
        connection.execute(
            insert(departments_table),
            [{"portal": PORTAL, "department_id": key, "name": name} for key, name in DEPARTMENTS.items()],
        )
        connection.execute(
            insert(users_table),
            [
                {"portal": PORTAL, "user_id": key, "name": name, "last_name": last, "department_ids": [dept],
                 "active": True, "updated_at": SEEN}
                for key, (name, last, dept) in USERS.items()
            ],
        )  # fmt: skip
        connection.execute(
            insert(portal_calendars_table),
            [{"portal": PORTAL, "year": 2026, "holidays": "2026-11-04", "moved_workdays": "",
              "week_holidays": "SA,SU", "source": "portal", "valid_from": SEEN}],
        )  # fmt: skip
        connection.execute(
            insert(user_norms_table),
            [{"portal": PORTAL, "user_id": key, "tracked": True, "free": False, "raw": {}, "valid_from": SEEN,
              **norms} for key in USERS],
        )  # fmt: skip
        connection.execute(insert(workdays_table), WORKDAYS)
        polled = datetime(2026, 11, 30, 7, tzinfo=UTC)
        connection.execute(
            insert(snapshots_table),
            [{"portal": PORTAL, "user_id": 3, "polled_at": polled, "last_seen_at": polled, "seen_count": 1,
              "status": "OPENED", "time_start": datetime(2026, 11, 30, 6, tzinfo=UTC), "tz_offset": OFFSET,
              "work_date": date(2026, 11, 30), "duration_seconds": 0, "time_leaks_seconds": 0,
              "active": True, "raw": {}}],
        )  # fmt: skip
        connection.execute(
            insert(absences_table),
            [{"portal": PORTAL, "user_id": 3, "day": date(2026, 11, 3), "event_id": "7", "name": "Vacation",
              "whole_day": True, "starts_at": datetime(2026, 11, 2, 21, tzinfo=UTC),
              "ends_at": datetime(2026, 11, 3, 21, tzinfo=UTC), "fetched_at": SEEN}],
        )  # fmt: skip
        connection.execute(
            insert(workday_revisions_table),
            [{"portal": PORTAL, "user_id": 1, "work_date": date(2026, 11, 3),
              "time_start": WORKDAYS[1]["time_start"], "source": "workday", "field": "worked_seconds",
              "old_value": "25200", "new_value": "27000",
              "old_seen_at": datetime(2026, 11, 3, 15, tzinfo=UTC),
              "changed_at": datetime(2026, 11, 5, 8, tzinfo=UTC), "after_close": False}],
        )  # fmt: skip
