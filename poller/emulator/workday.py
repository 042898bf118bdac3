"""One planned workday, and what the portal says of it at a moment: status, breaks, duration.

A day may have several pauses. TIME_LEAKS (and a record's breakLength) counts the finished
ones only: a running pause is not in it, as the reference says, so a day paused for the
second time answers PAUSED with TIME_LEAKS > 0. `duration_cut` is what the portal's DURATION
leaves out of finish - start - breaks: real records do not always add up (the documented
sample has 42 s between start and end and a duration of 28 s), so nothing downstream may
derive one from the others.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_RECORD_EPOCH = date(2020, 1, 1)

Pause = tuple[datetime, datetime]


def record_id(user_id: int, work_date: date) -> int:
    """The workday record's id: stable per user and day, growing with the date, fits 32 bits."""
    return (work_date - _RECORD_EPOCH).days * 200_000 + user_id


@dataclass(frozen=True)
class Workday:
    """One planned workday; instants are UTC; `pauses` in order, none overlapping."""

    user_id: int
    work_date: date
    opened: datetime
    pauses: tuple[Pause, ...]
    closed: datetime | None
    duration_cut: int = 0  # seconds DURATION leaves out of finish - start - breaks

    @property
    def record_id(self) -> int:
        return record_id(self.user_id, self.work_date)

    @property
    def pause_start(self) -> datetime | None:
        """The first pause's start (None: no pause)."""
        return self.pauses[0][0] if self.pauses else None

    @property
    def pause_end(self) -> datetime | None:
        return self.pauses[0][1] if self.pauses else None

    @property
    def leaks_seconds(self) -> int:
        """Every pause of the day, in seconds."""
        return sum(int((end - start).total_seconds()) for start, end in self.pauses)

    def leaks_until(self, at: datetime) -> int:
        """The pauses finished by `at`: what TIME_LEAKS says then."""
        return sum(int((end - start).total_seconds()) for start, end in self.pauses if end <= at)

    def paused_since(self, at: datetime) -> datetime | None:
        """The start of the pause running at `at`, or None."""
        return next((start for start, end in self.pauses if start <= at < end), None)

    def worked_seconds(self) -> int | None:
        """DURATION of a closed day, as the portal counts it (see `duration_cut`)."""
        if self.closed is None:
            return None
        return int((self.closed - self.opened).total_seconds()) - self.leaks_seconds - self.duration_cut

    def worked_until(self, at: datetime) -> int:
        """What a clock of the day would show at `at`: elapsed time less the pauses so far."""
        end = min(at, self.closed) if self.closed else at
        seconds = (end - self.opened).total_seconds()
        for start, finish in self.pauses:
            if start < end:
                seconds -= (min(end, finish) - start).total_seconds()
        return int(seconds)

    def state(self, at: datetime, local_today: date) -> tuple[str, datetime | None, int]:
        """STATUS at `at`, the moment it was paused or closed, and TIME_LEAKS then.

        A day never closed turns EXPIRED once the user's local date has moved past it.
        """
        if self.closed is not None and at >= self.closed:
            return "CLOSED", self.closed, self.leaks_seconds
        leaks = self.leaks_until(at)
        if self.closed is None and local_today > self.work_date:
            return "EXPIRED", None, leaks
        paused = self.paused_since(at)
        if paused is not None:
            return "PAUSED", paused, leaks
        return "OPENED", None, leaks


def plan_pauses(rnd: random.Random, opened: datetime, several: bool) -> tuple[Pause, ...]:
    """A lunch break 3-4.5 h into the day; with `several`, a short one before and one after."""

    def pause(after_minutes: tuple[int, int], lasting: tuple[int, int]) -> Pause:
        start = opened + timedelta(minutes=rnd.randint(*after_minutes), seconds=rnd.randint(0, 59))
        return start, start + timedelta(minutes=rnd.randint(*lasting), seconds=rnd.randint(0, 59))

    lunch = pause((180, 270), (15, 60))
    if not several:
        return (lunch,)
    return pause((90, 120), (5, 15)), lunch, pause((360, 400), (5, 20))
