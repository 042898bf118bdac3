"""The portal's rules on one clock: the leaky bucket, each method's operating window, tokens.

Every rule reads the injected `Clock`, so a test that hands the emulator and the poller the
same `ManualClock` moves them together: a client that waits for the bucket to drain waits
on that clock, and the emulator's bucket drains by exactly that wait.
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from poller.clock import Clock
from poller.emulator.settings import EmulatorSettings

WINDOW_MINUTES = 10


class TokenState(Enum):
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"


class PortalRules:
    """The limits and tokens of one emulated portal; thread-safe."""

    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._bucket_level = 0.0
        self._bucket_updated = clock.monotonic()
        self._forced_query_limits = 0
        self._blocked_until: dict[str, float] = {}
        self._operating: dict[str, dict[int, float]] = {}  # method -> minute -> server seconds
        self._access_tokens = {settings.access_token: clock.time() + settings.token_lifetime}
        self._refresh_tokens = {settings.refresh_token}

    # -- leaky bucket -------------------------------------------------------------------

    def admit(self) -> bool:
        """Add one request to the bucket; False means QUERY_LIMIT_EXCEEDED."""
        s = self.settings
        with self._lock:
            if self._forced_query_limits > 0:
                self._forced_query_limits -= 1
                return False
            if s.rate <= 0:
                return True
            now = self.clock.monotonic()
            self._bucket_level = max(0.0, self._bucket_level - (now - self._bucket_updated) * s.rate)
            self._bucket_updated = now
            if self._bucket_level + 1 > s.burst:
                return False
            self._bucket_level += 1
            return True

    def force_query_limit(self, requests: int) -> None:
        with self._lock:
            self._forced_query_limits = requests

    # -- operating limit, per method ----------------------------------------------------

    def spend(self, method: str) -> bool:
        """Charge one call of `method`; False (nothing charged) when the method is blocked."""
        now = self.clock.time()
        with self._lock:
            minutes = self._minutes(method, now)
            limit = self.settings.operating_limit
            if now < self._blocked_until.get(method, 0.0) or (limit > 0 and sum(minutes.values()) >= limit):
                return False
            minute = int(now // 60)
            minutes[minute] = minutes.get(minute, 0.0) + self.settings.operating_cost
            return True

    def force_operating_limit(self, seconds: float, method: str = "timeman.status") -> None:
        with self._lock:
            self._blocked_until[method] = self.clock.time() + seconds

    def time_block(self, method: str, started: float) -> dict[str, Any]:
        """The `time` object; `operating` is this method's server time in the last 10 minutes."""
        finished = self.clock.time()
        with self._lock:
            minutes = self._minutes(method, finished)
            spent = sum(minutes.values())
            oldest = min(minutes, default=int(finished // 60))
        return {
            "start": started,
            "finish": finished,
            "duration": finished - started,
            "processing": finished - started,
            "date_start": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "date_finish": datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds"),
            "operating_reset_at": (oldest + WINDOW_MINUTES) * 60,
            "operating": spent,
        }

    def _minutes(self, method: str, now: float) -> dict[int, float]:
        """The method's per-minute server time, without minutes older than the window (lock held)."""
        minutes = self._operating.setdefault(method, {})
        for old in [m for m in minutes if m <= int(now // 60) - WINDOW_MINUTES]:
            del minutes[old]
        return minutes

    # -- OAuth tokens -------------------------------------------------------------------

    def token_state(self, token: Any) -> TokenState:
        with self._lock:
            expires = self._access_tokens.get(str(token)) if token else None
        if expires is None:
            return TokenState.INVALID
        return TokenState.VALID if self.clock.time() < expires else TokenState.EXPIRED

    def refresh(self, refresh_token: str) -> tuple[str, str] | None:
        """Spend `refresh_token` for a new pair; None when it is unknown or spent."""
        with self._lock:
            if refresh_token not in self._refresh_tokens:
                return None
            self._refresh_tokens.discard(refresh_token)
            access, refresh = secrets.token_hex(16), secrets.token_hex(16)
            self._access_tokens[access] = self.clock.time() + self.settings.token_lifetime
            self._refresh_tokens.add(refresh)
            return access, refresh

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        with self._lock:
            self._access_tokens = {token: 0.0 for token in self._access_tokens}
