"""The portal's two limits, mirrored on our side so requests never run into them.

- The leaky bucket counts requests per portal: wait before each one until there is room.
- The operating limit counts server time per method: a method that got OPERATION_TIME_LIMIT
  is not called again before that method's own `operating_reset_at`.
"""

from __future__ import annotations

import threading
from typing import Any

from poller.clock import SYSTEM_CLOCK, Clock
from poller.errors import OperatingTimeLimit

FALLBACK_BLOCK_SECONDS = 60.0


class LeakyBucket:
    """Wait before each request until the portal's bucket has room for it.

    The portal adds 1 per request and drains `rate` per second; above `burst` it refuses.
    We keep `headroom` slots free because the bucket is measured where requests arrive:
    two requests sent 0.5 s apart can land closer together.
    """

    def __init__(
        self, rate: float, burst: int, *, headroom: int | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if headroom is None:
            headroom = max(1, burst // 10)
        self.rate = rate
        self.capacity = max(1.0, float(burst - headroom))
        self._clock = clock
        self._level = 0.0
        self._updated = clock.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one slot, sleeping as long as needed; return the seconds slept."""
        with self._lock:
            self._drain()
            wait = (self._level + 1 - self.capacity) / self.rate
            if wait > 0:
                self._clock.sleep(wait)
                self._drain()
            self._level += 1
            return max(wait, 0.0)

    def fill(self) -> None:
        """Mark the bucket full: the portal said so (another client shares it)."""
        with self._lock:
            self._drain()
            self._level = self.capacity

    @property
    def level(self) -> float:
        with self._lock:
            self._drain()
            return self._level

    def _drain(self) -> None:
        now = self._clock.monotonic()
        self._level = max(0.0, self._level - (now - self._updated) * self.rate)
        self._updated = now


class OperatingLimits:
    """Per method: the last `operating_reset_at` the portal reported, and a block after a 429.

    Error answers carry no `time` block, so the reset of a blocked method is the one seen on
    its last successful answer. Methods are counted apart, as the portal counts them: a
    blocked `timeman.status` leaves `user.get` and `batch` free.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._reset_at: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def note(self, method: str, timing: Any) -> None:
        """Remember `operating_reset_at` from a `time` block of `method`'s answer, if it has one."""
        if not isinstance(timing, dict):
            return
        reset_at = timing.get("operating_reset_at")
        if isinstance(reset_at, int | float) and not isinstance(reset_at, bool) and reset_at > 0:
            with self._lock:
                self._reset_at[method.lower()] = float(reset_at)

    def block(self, method: str) -> float:
        """Block `method` after OPERATION_TIME_LIMIT; return the Unix time it is free again.

        The one rule: until the method's last seen reset, or 60 s from now when none was seen
        (or the one seen has passed, which says nothing about the current window).
        """
        key = method.lower()
        now = self._clock.time()
        with self._lock:
            reset_at = self._reset_at.get(key)
            if reset_at is None or reset_at <= now:
                reset_at = now + FALLBACK_BLOCK_SECONDS
            until = max(reset_at, self._blocked_until.get(key, 0.0))
            self._blocked_until[key] = until
            return until

    def blocked_until(self, method: str) -> float | None:
        """The Unix time `method` is free again, or None when it is free now."""
        with self._lock:
            until = self._blocked_until.get(method.lower())
        return until if until is not None and until > self._clock.time() else None

    def check(self, method: str, host: str) -> None:
        """Raise OperatingTimeLimit, without a request, while `method` is blocked."""
        until = self.blocked_until(method)
        if until is None:
            return
        error = OperatingTimeLimit(
            f"portal {host}: {method} is blocked by OPERATION_TIME_LIMIT for "
            f"{until - self._clock.time():.0f} s more",
            code="OPERATION_TIME_LIMIT",
            retryable=True,
        )
        error.reset_at = until
        raise error
