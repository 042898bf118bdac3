"""The emulated portal's knobs and the counters of what it answered."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FAULT_KINDS = ("500", "html", "drop", "slow", "truncated", "huge", "trickle", "hang", "nested")


@dataclass
class EmulatorSettings:
    """Every knob of the emulated portal; 0 for a rate or a share turns that feature off.

    `fault_*` are shares of requests answered with that fault (see `faults.py`); `hostile`
    maps user ids to hostile values their answers carry (`faults.HOSTILE_KINDS`).
    """

    users: int = 25
    speed: float = 1.0
    start: datetime | None = None  # the simulation's start; default: the clock's now
    catch_up: bool = False  # True: `speed` only until the world reaches the clock's now (SimClock)
    webhook_user: int = 1
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(8))
    access_token: str = field(default_factory=lambda: secrets.token_hex(16))
    refresh_token: str = field(default_factory=lambda: secrets.token_hex(16))
    client_id: str = "local.emulator"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(12))
    token_lifetime: float = 3600.0
    admin: bool = True
    department_scope: bool = True  # False: department.get answers insufficient_scope
    calendar_scope: bool = True  # False: calendar.* answer insufficient_scope
    rest_v3: bool = True  # False: nothing under /rest/api/ (ERROR_METHOD_NOT_FOUND)
    rest_v3_batch: bool = True  # False: the REST 3.0 batch is refused
    records_access: bool = True  # False: timeman.record.list answers ACCESSDENIEDEXCEPTION (403)
    rate: float = 2.0
    burst: int = 50
    operating_limit: float = 480.0
    operating_cost: float = 0.01  # server seconds each call spends of its method's budget
    fault_500: float = 0.0
    fault_html: float = 0.0
    fault_drop: float = 0.0
    fault_slow: float = 0.0
    fault_truncated: float = 0.0
    fault_huge: float = 0.0
    fault_trickle: float = 0.0
    fault_hang: float = 0.0
    fault_nested: float = 0.0
    slow_seconds: float = 2.0
    trickle_interval: float = 1.0  # real seconds between the bytes of a trickling answer
    trickle_length: int = 100_000  # the Content-Length a trickling answer announces
    hostile: dict[int, tuple[str, ...]] = field(default_factory=dict)
    moved_to: str | None = None  # answer every REST call with a 302 to this address
    client_endpoint: str | None = None  # the REST address OAuth refreshes name; default: ours
    seed: int = 1

    def fault_shares(self) -> list[tuple[str, float]]:
        return [(kind, float(getattr(self, f"fault_{kind}"))) for kind in FAULT_KINDS]


@dataclass
class EmulatorStats:
    """What the emulator received and answered; the `add_*` methods are thread-safe."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    query_limit_exceeded: int = 0
    operating_limit_exceeded: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    statuses_answered: Counter[int] = field(default_factory=Counter)
    records_answered: Counter[int] = field(default_factory=Counter)  # record.list calls per user
    calls: Counter[str] = field(default_factory=Counter)  # method calls, batch sub-calls included
    token_refreshes: int = 0
    auth_placements: Counter[str] = field(default_factory=Counter)  # where OAuth tokens were read
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_request(self) -> None:
        with self._lock:
            self.requests += 1

    def add_http_status(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1

    def add_query_limit(self) -> None:
        with self._lock:
            self.query_limit_exceeded += 1

    def add_operating_limit(self) -> None:
        with self._lock:
            self.operating_limit_exceeded += 1

    def add_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def add_call(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1

    def add_status(self, user_id: int) -> None:
        with self._lock:
            self.statuses_answered[user_id] += 1

    def add_records(self, user_id: int) -> None:
        with self._lock:
            self.records_answered[user_id] += 1

    def add_auth(self, placement: str) -> None:
        with self._lock:
            self.auth_placements[placement] += 1

    def add_token_refresh(self) -> None:
        with self._lock:
            self.token_refreshes += 1

    def summary(self) -> dict[str, Any]:
        """The counters as JSON, for benchmarks that run the emulator in another process."""
        with self._lock:
            return {
                "requests": self.requests,
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "query_limit_exceeded": self.query_limit_exceeded,
                "operating_limit_exceeded": self.operating_limit_exceeded,
                "faults": dict(self.faults),
                "statuses_answered": sum(self.statuses_answered.values()),
                "users_answered": len(self.statuses_answered),
                "records_answered": sum(self.records_answered.values()),
                "calls": dict(self.calls),
                "token_refreshes": self.token_refreshes,
                "auth_placements": dict(self.auth_placements),
            }
