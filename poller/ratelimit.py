"""A client-side copy of the portal's leaky bucket, so requests never overflow it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LeakyBucket:
    """Wait before each request until the portal's bucket has room for it.

    The portal adds 1 per request and drains `rate` per second; above `burst` it refuses.
    We keep `headroom` slots free because the bucket is measured where requests arrive:
    two requests sent 0.5 s apart can land closer together.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        headroom: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if headroom is None:
            headroom = max(1, burst // 10)
        self.rate = rate
        self.capacity = max(1.0, float(burst - headroom))
        self._clock = clock
        self._sleep = sleep
        self._level = 0.0
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one slot, sleeping as long as needed; return the seconds slept."""
        with self._lock:
            self._drain()
            wait = (self._level + 1 - self.capacity) / self.rate
            if wait > 0:
                self._sleep(wait)
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
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._updated) * self.rate)
        self._updated = now
