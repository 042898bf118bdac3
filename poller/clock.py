"""One notion of time for the client, the daemon and the emulator, so tests can move it.

Production code takes a `Clock` and defaults to `SystemClock()`. Tests hand the same
`ManualClock` to the poller and to the emulator: a wait of the client's leaky bucket then
moves time for the emulator's bucket, operating window and token expiry too, and nothing
sleeps for real.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time, a monotonic counter and a way to wait."""

    def time(self) -> float:
        """Unix seconds (Bitrix24's `operating_reset_at` is in these)."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring intervals; never goes back."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: `advance()`, or `sleep()` which advances.

    Thread-safe: portals polled in parallel threads may sleep on it at once; each sleep
    moves the shared time forward by its own amount.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 10, 5, 6, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._unix = start.timestamp()
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._unix

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (negative values are ignored)."""
        with self._lock:
            self._unix += max(0.0, seconds)

    def set(self, instant: datetime) -> None:
        """Jump to `instant`; going back is refused, as a monotonic clock never does."""
        with self._lock:
            target = instant.timestamp()
            if target < self._unix:
                raise ValueError(f"ManualClock cannot go back to {instant.isoformat()}")
            self._unix = target

    def __repr__(self) -> str:
        return f"ManualClock({self.now() + timedelta(0)!s})"


SYSTEM_CLOCK = SystemClock()
