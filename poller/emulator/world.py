"""Simulated employees whose workdays follow a fixed plan on a clock that may run fast.

Each user's plan is a pure function of the user id and the local date, so the emulator can
answer `timeman.status` and `timeman.record.list` at any simulated moment and a test can ask
for the truth. Users differ on purpose, to cover the shapes real portals send:

- user 2 has no records at all, user 3 an EXPIRED day (opened yesterday, never closed),
  user 4 works night shifts that end the next day;
- every 4th user's PAUSED answer carries the pause moment in TIME_FINISH (2024 builds); the
  others answer `TIME_FINISH: null` while paused (current builds);
- odd users' answers carry the workday record `ID` (newest builds);
- every 5th user's times are rendered in UTC while TZ_OFFSET says otherwise (older builds);
- every 7th user's days await approval (ACTIVE false);
- every 6th user's DURATION is less than finish - start - breaks, as real records can be;
- users 7, 13, 19, ... (every 6th from 7) pause three times a day, so their PAUSED answers
  carry TIME_LEAKS > 0 from the second pause on;
- user 11 opens a day on the simulation's first local day and never closes it: OPENED
  during that day, EXPIRED from the local midnight on (a day turning EXPIRED during a run);
- the others work the portal calendar's working days unless absent, a holiday now and
  then, and sometimes come late or leave early by their norms (`habits.py`).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from poller.emulator import habits, staff
from poller.emulator.record import Record, render_hms, render_time
from poller.emulator.simclock import SimClock
from poller.emulator.workday import Workday, plan_pauses, record_id

__all__ = ["Record", "Workday", "World", "record_id"]

TZ_OFFSETS = (10800, 7200, 0, -18000, 19800, 32400, 3600, -28800)
NO_RECORDS_USER = 2
EXPIRED_USER = 3
NIGHT_SHIFT_USER = 4
EXPIRING_USER = 11
HISTORY_DAYS = 400  # no record is older than this many days before the simulation's start
PLANS_KEPT = 400_000


def shows_pause_moment(user_id: int) -> bool:
    """Whether this user's PAUSED answer carries the pause moment (2024 builds) or null."""
    return user_id % 4 == 0


def shows_record_id(user_id: int) -> bool:
    """Whether this user's answers carry the record `ID` (newest builds)."""
    return user_id % 2 == 1


def irregular_duration(user_id: int) -> bool:
    """Whether this user's closed days have a DURATION short of finish - start - breaks."""
    return user_id % 6 == 0


def pauses_several_times(user_id: int) -> bool:
    """Whether this user pauses three times a day (7, 13, 19, ...)."""
    return user_id % 6 == 1 and user_id > 1


class World:
    """`count` users with ids 1..count; a few have special histories (see the module docstring)."""

    def __init__(self, count: int, clock: SimClock) -> None:
        self.count = count
        self.clock = clock
        self._expired_day = (
            clock.start + timedelta(seconds=self.tz_offset(EXPIRED_USER))
        ).date() - timedelta(days=1)
        self._expiring_day = (clock.start + timedelta(seconds=self.tz_offset(EXPIRING_USER))).date()
        self._history_start = clock.start.date() - timedelta(days=HISTORY_DAYS)
        self._plans: dict[tuple[int, date], Workday | None] = {}  # workday() is pure: remember it
        self._edits: dict[int, dict[str, Any]] = {}  # record id: a manager's changes (edit_record)

    def exists(self, user_id: int) -> bool:
        return 1 <= user_id <= self.count

    def tz_offset(self, user_id: int) -> int:
        return TZ_OFFSETS[user_id % len(TZ_OFFSETS)]

    def active_flag(self, user_id: int) -> bool:
        """ACTIVE=false marks a day edited and awaiting approval."""
        return user_id % 7 != 0

    # -- directory ----------------------------------------------------------------------

    def user(self, user_id: int) -> dict[str, Any]:
        """The `user.get` row of `user_id`."""
        return staff.user_row(user_id, self.count, self.tz_offset(user_id))

    def departments(self) -> list[dict[str, Any]]:
        """Every `department.get` row, ordered by ID."""
        return staff.department_rows(self.count)

    # -- workdays -----------------------------------------------------------------------

    def workday(self, user_id: int, local_day: date) -> Workday | None:
        """The plan of `user_id` for the day that starts on `local_day`, or None (day off)."""
        key = (user_id, local_day)
        try:
            return self._plans[key]
        except KeyError:
            plan = self._plan(user_id, local_day)
        if len(self._plans) > PLANS_KEPT:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _plan(self, user_id: int, local_day: date) -> Workday | None:
        if user_id == NO_RECORDS_USER or local_day < self._history_start:
            return None
        offset = timedelta(seconds=self.tz_offset(user_id))
        if user_id == EXPIRED_USER:
            if local_day != self._expired_day:
                return None
            opened = datetime.combine(local_day, datetime.min.time(), UTC) + timedelta(hours=8) - offset
            pause = (opened + timedelta(hours=3), opened + timedelta(hours=3, minutes=17, seconds=53))
            return Workday(user_id, local_day, opened, (pause,), None)
        if user_id == EXPIRING_USER and local_day >= self._expiring_day:
            if local_day > self._expiring_day:
                return None  # the EXPIRED day must be closed before another opens
            opened = datetime.combine(local_day, datetime.min.time(), UTC) + timedelta(hours=8) - offset
            pause = (opened + timedelta(hours=2), opened + timedelta(hours=2, minutes=11, seconds=7))
            return Workday(user_id, local_day, opened, (pause,), None)
        way = habits.habit(user_id, local_day)
        if way is None:
            return None
        rnd = random.Random(user_id * 1_000_003 + local_day.toordinal())
        start_hour = 20 if user_id == NIGHT_SHIFT_USER else 8
        midnight = datetime.combine(local_day, datetime.min.time(), UTC) - offset  # local, as UTC
        local_open = timedelta(hours=start_hour, minutes=rnd.randint(0, 90), seconds=rnd.randint(0, 59))
        opened = midnight + (local_open if way.start is None else timedelta(seconds=way.start))
        pauses = plan_pauses(rnd, opened, pauses_several_times(user_id))
        breaks = sum((end - start for start, end in pauses), timedelta())
        closed = opened + timedelta(minutes=rnd.randint(480, 540), seconds=rnd.randint(0, 59)) + breaks
        if way.finish is not None:  # leaving early: the pauses not over by then are not taken
            closed = midnight + timedelta(seconds=way.finish)
            pauses = tuple(pause for pause in pauses if pause[1] < closed)
        cut = rnd.randint(60, 900) if irregular_duration(user_id) else 0
        return Workday(user_id, local_day, opened, pauses, closed, cut)

    def last_workday(self, user_id: int, at: datetime) -> Workday | None:
        """The newest workday opened at or before `at` (looking back two weeks)."""
        local_day = (at + timedelta(seconds=self.tz_offset(user_id))).date()
        for back in range(15):
            day = self.workday(user_id, local_day - timedelta(days=back))
            if day is not None and day.opened <= at:
                return day
        return None

    def state(self, day: Workday, at: datetime) -> tuple[str, datetime | None, int]:
        """The day's STATUS at `at`, the moment it was paused or closed, and breaks so far."""
        local_today = (at + timedelta(seconds=self.tz_offset(day.user_id))).date()
        return day.state(at, local_today)

    def status(self, user_id: int, at: datetime | None = None) -> dict[str, Any]:
        """The `timeman.status` result of `user_id` at `at` (default: now), as Bitrix24 sends it."""
        at = at or self.clock.now()
        day = self.last_workday(user_id, at)
        if day is None:
            return {"STATUS": "CLOSED"}
        offset = self.tz_offset(user_id)
        state, moment, leaks = self.state(day, at)
        finish = moment if state == "CLOSED" or (state == "PAUSED" and shows_pause_moment(user_id)) else None
        duration = (day.worked_seconds() or 0) if state == "CLOSED" else 0
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
        if shows_record_id(user_id):
            result["ID"] = day.record_id
        return result

    # -- records (REST 3.0) -------------------------------------------------------------

    def records(
        self, user_id: int, date_from: date, date_to: date, at: datetime | None = None
    ) -> list[Record]:
        """The truth `timeman.record.list` serves: `user_id`'s workdays whose local date lies in
        [date_from, date_to] and that had opened by `at` (default: now), ordered by id."""
        at = at or self.clock.now()
        found: list[Record] = []
        if not self.exists(user_id):
            return found
        day = date_from
        while day <= date_to:
            workday = self.workday(user_id, day)
            if workday is not None and workday.opened <= at:
                found.append(self.record(workday, at))
            day += timedelta(days=1)
        return found

    def records_started(
        self, user_id: int, after: datetime | None, before: datetime | None, at: datetime | None = None
    ) -> list[Record]:
        """Records whose start lies in [after, before]; open ends are the history's start and `at`."""
        at = at or self.clock.now()
        high = min(at, before) if before else at
        offset = timedelta(seconds=self.tz_offset(user_id))
        low_date = max(self._history_start, (after + offset).date()) if after else self._history_start
        return [
            r
            for r in self.records(user_id, low_date, (high + offset).date(), at)
            if (after is None or r.start_time >= after) and r.start_time <= high
        ]

    def edit_record(self, record_id: int, **changes: Any) -> None:
        """Serve a record changed as a manager would edit it, from now on: any of start_time,
        end_time, break_length, duration, status, approved (Record's fields). A new end or
        break without a duration makes the duration end - start - break, as the portal does."""
        unknown = set(changes) - {"start_time", "end_time", "break_length", "duration", "status", "approved"}
        if unknown:
            raise ValueError(f"edit_record: not a field a manager edits: {', '.join(sorted(unknown))}")
        self._edits[record_id] = {**self._edits.get(record_id, {}), **changes}

    def record(self, day: Workday, at: datetime) -> Record:
        """The record of `day` as the portal holds it at `at` (with a manager's edits)."""
        record = self._planned_record(day, at)
        edits = self._edits.get(day.record_id)
        if not edits:
            return record
        record = replace(record, **edits)
        if "duration" not in edits and record.end_time is not None:
            worked = (record.end_time - record.start_time).total_seconds() - record.break_length
            record = replace(record, duration=int(worked))
        return record

    def _planned_record(self, day: Workday, at: datetime) -> Record:
        state, _, leaks = self.state(day, at)
        closed = state == "CLOSED"
        offset = 0 if day.user_id % 5 == 0 else self.tz_offset(day.user_id)
        return Record(
            id=day.record_id,
            user_id=day.user_id,
            work_date=day.work_date,
            start_time=day.opened,
            end_time=day.closed if closed else None,
            duration=(day.worked_seconds() or 0) if closed else 0,
            break_length=leaks,
            status=state,
            approved=self.active_flag(day.user_id),
            offset=offset,
        )
