"""The emulated portal's knobs and the counters of what it answered."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

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
    webhook_user: int = 1
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(8))
    access_token: str = field(default_factory=lambda: secrets.token_hex(16))
    refresh_token: str = field(default_factory=lambda: secrets.token_hex(16))
    client_id: str = "local.emulator"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(12))
    token_lifetime: float = 3600.0
    admin: bool = True
    department_scope: bool = True  # False: department.get answers insufficient_scope
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
    moved_to: str | None = None
    seed: int = 1

    def fault_shares(self) -> list[tuple[str, float]]:
        return [(kind, float(getattr(self, f"fault_{kind}"))) for kind in FAULT_KINDS]


@dataclass
class EmulatorStats:
    """What the emulator received and answered."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    query_limit_exceeded: int = 0
    operating_limit_exceeded: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    statuses_answered: Counter[int] = field(default_factory=Counter)
    records_answered: Counter[int] = field(default_factory=Counter)  # record.list calls per user
    calls: Counter[str] = field(default_factory=Counter)  # method calls, batch sub-calls included
    token_refreshes: int = 0
