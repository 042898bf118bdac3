"""Simulated employees whose workdays follow a fixed plan on a clock that may run fast.

Each user's plan is a pure function of the user id and the local date, so the emulator can
answer `timeman.status` at any simulated moment and a test can ask for the truth.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

TZ_OFFSETS = (10800, 7200, 0, -18000, 19800, 32400, 3600, -28800)
NO_RECORDS_USER = 2
EXPIRED_USER = 3
NIGHT_SHIFT_USER = 4


@dataclass(frozen=True)
class Workday:
    """One planned workday; instants are UTC, `pause_*` None when the day has no break."""

    user_id: int
    work_date: date
    opened: datetime
    pause_start: datetime | None
    pause_end: datetime | None
    closed: datetime | None

    @property
    def leaks_seconds(self) -> int:
        if self.pause_start is None or self.pause_end is None:
            return 0
        return int((self.pause_end - self.pause_start).total_seconds())

    def worked_seconds(self) -> int | None:
        """DURATION of a closed day: finish − start − breaks."""
        if self.closed is None:
            return None
        return int((self.closed - self.opened).total_seconds()) - self.leaks_seconds


class SimClock:
    """Simulated time: `start` at creation, then `speed` simulated seconds per real second."""

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        real: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self.speed = speed
        self._real = real
        self._real_start = real()
        self._skipped = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = (self._real() - self._real_start) * self.speed + self._skipped
        return self.start + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> None:
        """Jump ahead: with speed 0 the clock moves only this way (tests step it)."""
        with self._lock:
            self._skipped += seconds


class World:
    """`count` users with ids 1..count; a few have special histories (see the constants)."""

    def __init__(self, count: int, clock: SimClock) -> None:
        self.count = count
        self.clock = clock
        self._expired_day = (
            clock.start + timedelta(seconds=self.tz_offset(EXPIRED_USER))
        ).date() - timedelta(days=1)

    def exists(self, user_id: int) -> bool:
        return 1 <= user_id <= self.count

    def tz_offset(self, user_id: int) -> int:
        return TZ_OFFSETS[user_id % len(TZ_OFFSETS)]

    def active_flag(self, user_id: int) -> bool:
        """ACTIVE=false marks a day edited and awaiting approval."""
        return user_id % 7 != 0

    def workday(self, user_id: int, local_day: date) -> Workday | None:
        """The plan of `user_id` for the day that starts on `local_day`, or None (day off)."""
        if user_id == NO_RECORDS_USER:
            return None
        offset = timedelta(seconds=self.tz_offset(user_id))
        if user_id == EXPIRED_USER:
            if local_day != self._expired_day:
                return None
            opened = datetime.combine(local_day, datetime.min.time(), UTC) + timedelta(hours=8) - offset
            return Workday(
                user_id,
                local_day,
                opened,
                opened + timedelta(hours=3),
                opened + timedelta(hours=3, minutes=17, seconds=53),
                None,
            )
        if local_day.weekday() >= 5:
            return None
        rnd = random.Random(user_id * 1_000_003 + local_day.toordinal())
        start_hour = 20 if user_id == NIGHT_SHIFT_USER else 8
        local_open = datetime.combine(local_day, datetime.min.time(), UTC) + timedelta(
            hours=start_hour, minutes=rnd.randint(0, 90), seconds=rnd.randint(0, 59)
        )
        opened = local_open - offset
        pause_start = opened + timedelta(minutes=rnd.randint(180, 270), seconds=rnd.randint(0, 59))
        pause_end = pause_start + timedelta(minutes=rnd.randint(15, 60), seconds=rnd.randint(0, 59))
        closed = (
            opened
            + timedelta(minutes=rnd.randint(480, 540), seconds=rnd.randint(0, 59))
            + (pause_end - pause_start)
        )
        return Workday(user_id, local_day, opened, pause_start, pause_end, closed)

    def last_workday(self, user_id: int, at: datetime) -> Workday | None:
        """The newest workday opened at or before `at` (looking back two weeks)."""
        local_day = (at + timedelta(seconds=self.tz_offset(user_id))).date()
        for back in range(15):
            day = self.workday(user_id, local_day - timedelta(days=back))
            if day is not None and day.opened <= at:
                return day
        return None

    def status(self, user_id: int, at: datetime | None = None) -> dict[str, Any]:
        """The `timeman.status` result of `user_id` at `at` (default: now), as Bitrix24 sends it."""
        at = at or self.clock.now()
        day = self.last_workday(user_id, at)
        if day is None:
            return {"STATUS": "CLOSED"}
        offset = self.tz_offset(user_id)
        finish: datetime | None = None
        leaks = 0
        duration = 0
        if day.closed is None:
            local_today = (at + timedelta(seconds=offset)).date()
            state = "EXPIRED" if local_today > day.work_date else "OPENED"
            if day.pause_end is not None and at >= day.pause_end:
                leaks = day.leaks_seconds
        elif day.pause_start is not None and day.pause_end is not None and at < day.pause_start:
            state = "OPENED"
        elif day.pause_start is not None and day.pause_end is not None and at < day.pause_end:
            state, finish = "PAUSED", day.pause_start
        elif at < day.closed:
            state, leaks = "OPENED", day.leaks_seconds
        else:
            state, finish, leaks = "CLOSED", day.closed, day.leaks_seconds
            duration = day.worked_seconds() or 0
        # Older builds render in UTC while TZ_OFFSET says otherwise; every fifth user does.
        render_offset = 0 if user_id % 5 == 0 else offset
        located = user_id % 3 == 0
        result: dict[str, Any] = {
            "STATUS": state,
            "TIME_START": render_time(day.opened, render_offset),
            "TIME_FINISH": render_time(finish, render_offset) if finish else None,
            "DURATION": render_hms(duration),
            "TIME_LEAKS": render_hms(leaks),
            "ACTIVE": self.active_flag(user_id),
            "IP_OPEN": f"10.0.{user_id % 256}.{user_id // 256 % 256}" if located else "",
            "IP_CLOSE": "93.125.42.204" if state in {"CLOSED", "OPENED"} and leaks else "",
            "LAT_OPEN": 53.548841000000003 if located else 0,
            "LON_OPEN": 9.9872739999999993 if located else 0,
            "LAT_CLOSE": 53.548841000000003 if located and state == "CLOSED" else 0,
            "LON_CLOSE": 9.9872739999999993 if located and state == "CLOSED" else 0,
            "TZ_OFFSET": offset,
        }
        if state == "EXPIRED":
            suggested = datetime.combine(day.work_date, datetime.min.time(), UTC) + timedelta(
                hours=17, seconds=-offset
            )
            result["TIME_FINISH_DEFAULT"] = render_time(suggested, render_offset)
        return result


def render_time(instant: datetime, offset_seconds: int) -> str:
    """`2024-07-30T07:10:51+03:00`: Bitrix24's timestamp format."""
    zone = timezone(timedelta(seconds=offset_seconds))
    return instant.astimezone(zone).replace(microsecond=0).isoformat()


def render_hms(seconds: int) -> str:
    """`HH:MM:SS` with uncapped hours."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
