"""What the demo reports while it runs (poller.demo's `progress`): plain data.

Apart from poller.demo so that poller.render.demo, which turns each into a line, imports no
emulator, runtime or poll cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class DemoRemoved:
    """An earlier demo's database was removed: every demo starts from an empty one."""

    database: Path


@dataclass(frozen=True)
class DemoStarted:
    """The emulated portal is up and the poller stores into `database`."""

    users: int
    base_url: str
    speed: float
    database: Path


@dataclass(frozen=True)
class DemoCycle:
    """Cycle `number` ran at the simulated instant `simulated_at`; `line` is its log line
    (PollReport.log_line with the real seconds it took)."""

    number: int
    simulated_at: datetime
    line: str


DemoEvent = DemoRemoved | DemoStarted | DemoCycle
