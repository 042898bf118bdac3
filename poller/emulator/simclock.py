"""Simulated time on top of a real or manual clock, so a world can run faster than its rules."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from poller.clock import SYSTEM_CLOCK, Clock


class SimClock:
    """Simulated time: `start` at creation, then `speed` simulated seconds per second of `base`.

    A `Clock` itself, so the demo can stamp polls with simulated time. With a `ManualClock`
    as `base` and speed 1, moving the manual clock moves the world too. `catch_up`: never
    ahead of `base`; a start in the past is replayed at `speed` until it reaches `base`'s now,
    then time keeps pace with `base` (so a poller on real time agrees with the world).
    """

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        base: Clock = SYSTEM_CLOCK,
        *,
        catch_up: bool = False,
    ) -> None:
        self.start = (start or base.now()).astimezone(UTC)
        self.speed = speed
        self.catch_up = catch_up
        self._base = base
        self._base_start = base.monotonic()
        self._skipped = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = (self._base.monotonic() - self._base_start) * self.speed + self._skipped
        simulated = self.start + timedelta(seconds=elapsed)
        return min(simulated, self._base.now().astimezone(UTC)) if self.catch_up else simulated

    def time(self) -> float:
        return self.now().timestamp()

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        if self.speed > 0:
            self._base.sleep(seconds / self.speed)
        else:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Jump ahead: with speed 0 the clock moves only this way."""
        with self._lock:
            self._skipped += max(0.0, seconds)
