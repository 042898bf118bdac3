"""A day's worked time as the polls tell it (workday_rules.worked_after), by its status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from poller.fields import MAX_DURATION
from poller.storage.workday_rules import Poll, polled_day, worked_after

START = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
H = timedelta(hours=1)


def poll(status: str, at: timedelta, **more: Any) -> Poll:
    values: dict[str, Any] = {
        "polled_at": START + at, "last_seen_at": START + at, "status": status, "time_start": START,
        "time_finish": None, "time_finish_default": None, "work_date": START.date(),
        "duration_seconds": None, "leaks_seconds": 600, "active": True, **more,
    }  # fmt: skip
    return Poll(**values)


def seen(status: str, at: timedelta, worked: int | None = None, leaks: int = 600) -> dict[str, Any]:
    return {"status": status, "last_seen_at": START + at, "worked_seconds": worked, "leaks_seconds": leaks,
            "first_seen_at": START, "record_id": None}  # fmt: skip


CASES = [
    ("running: to the poll, less breaks", None, poll("OPENED", 2 * H), 2 * 3600 - 600),
    ("closed: its duration", None,
     poll("CLOSED", 9 * H, time_finish=START + 8 * H, duration_seconds=25200), 25200),
    ("closed: never more than its span less breaks", None,
     poll("CLOSED", 9 * H, time_finish=START + 8 * H, duration_seconds=9 * 3600), 8 * 3600 - 600),
    ("paused, first seen so: nothing known worked", None, poll("PAUSED", H), 0),
    ("paused since the last running poll", seen("OPENED", H), poll("PAUSED", 2 * H), 3600 - 600),
    ("paused at a moment the answer gives", seen("OPENED", H),
     poll("PAUSED", 2 * H, time_finish=START + 1.5 * H), 5400 - 600),
    ("the same pause: as first seen", seen("PAUSED", H, 1234), poll("PAUSED", 3 * H), 1234),
    ("a new pause (breaks grew)", seen("PAUSED", 2 * H, 1234, leaks=0), poll("PAUSED", 3 * H),
     2 * 3600 - 600),
    ("expired: to the suggested end", None, poll("EXPIRED", 20 * H, time_finish_default=START + 9 * H),
     9 * 3600 - 600),
    ("expired without one: to the poll", None, poll("EXPIRED", 5 * H), 5 * 3600 - 600),
    ("a start after the poll: none", None, poll("OPENED", -H), 0),
    ("never above the longest duration a column holds", None, poll("OPENED", 24 * 400 * H), MAX_DURATION),
    ("closed without a duration: unknown", None, poll("CLOSED", 9 * H, time_finish=START + 8 * H), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("day", "moved_by", "worked"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_worked_time_by_status(day: dict[str, Any] | None, moved_by: Poll, worked: int | None) -> None:
    assert worked_after(day, moved_by) == worked
    assert polled_day(day, moved_by)[4] == worked  # the day's worked_seconds is this value
