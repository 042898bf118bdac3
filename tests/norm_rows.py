"""Builders of the client's real norms, schedules and absences for tests that write them to storage.

Tests build the product's own types (not look-alikes), so a field the storage starts to read
fails here first. Defaults are an ordinary office day: 09:00-18:00, 8 hours, Monday to Friday.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from poller.bitrix.calendar import Absence
from poller.bitrix.norms import Schedule, Shift, UserNorms

H = 3600
WEEKDAYS = (1, 2, 3, 4, 5)  # 1 = Monday ... 7 = Sunday


def norms(
    user_id: int,
    *,
    max_start: int | None = 9 * H,
    min_finish: int | None = 18 * H,
    min_duration: int | None = 8 * H,
    allowed_delta: int | None = 0,
    tracked: bool | None = True,
    free: bool | None = False,
    raw: Mapping[str, Any] | None = None,
) -> UserNorms:
    """One user's `timeman.settings` as parsed: times and durations in seconds."""
    return UserNorms(
        user_id=user_id,
        tracked=tracked,
        free=free,
        max_start=max_start,
        min_finish=min_finish,
        min_duration=min_duration,
        allowed_delta=allowed_delta,
        raw={} if raw is None else raw,
    )


def shift(
    start: int | None,
    end: int | None,
    break_seconds: int | None = 0,
    work_days: Iterable[int] = WEEKDAYS,
    *,
    shift_id: int | None = 1,
    name: str | None = "Shift",
    deleted: bool | None = False,
) -> Shift:
    """A shift from `start` to `end` (seconds from local midnight) on `work_days`."""
    return Shift(
        shift_id=shift_id,
        name=name,
        start=start,
        end=end,
        break_seconds=break_seconds,
        work_days=frozenset(work_days),
        deleted=deleted,
    )


def schedule(
    schedule_id: int,
    shifts: Iterable[Shift],
    *,
    name: str | None = "Schedule",
    schedule_type: str | None = "FIXED",
    report_period: str | None = "MONTH",
    violation_rules: Mapping[str, int | None] | None = None,
    raw: Mapping[str, Any] | None = None,
) -> Schedule:
    """A schedule of `shifts`, no violation rules unless given."""
    return Schedule(
        schedule_id=schedule_id,
        name=name,
        schedule_type=schedule_type,
        report_period=report_period,
        for_all_users=False,
        shifts=tuple(shifts),
        exclusions=None,
        violation_rules={} if violation_rules is None else violation_rules,
        raw={} if raw is None else raw,
    )


def absence(
    user_id: int,
    first_day: date,
    last_day: date,
    *,
    event_id: str = "1",
    name: str | None = "Vacation",
    whole_day: bool = True,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Absence:
    """An `absent` event over `first_day`..`last_day`; unless given, it starts at the first day's
    UTC midnight and ends at the end of the last day (as a whole-day event does)."""
    if starts_at is None:
        starts_at = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    if ends_at is None:
        ends_at = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
    return Absence(
        user_id=user_id,
        event_id=event_id,
        name=name,
        starts_at=starts_at,
        ends_at=ends_at,
        whole_day=whole_day,
        first_day=first_day,
        last_day=last_day,
        raw={},
    )
