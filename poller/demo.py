"""The demo: a local emulator, a SQLite file, a few poll cycles, and what to query next.

It reports through a `progress` callback (poller.demo_events) and a result; poller.render.demo
words them and the CLI does the printing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

from poller import storage
from poller.compliance import Month, load_pack
from poller.compliance.from_storage import ComplianceReport, find_stored_violations
from poller.config import Config, HttpConfig, PortalConfig, ScheduleConfig, parse_webhook_url
from poller.demo_events import DemoCycle, DemoEvent, DemoRemoved, DemoStarted
from poller.emulator import Emulator, EmulatorSettings, SimClock
from poller.errors import ConfigError
from poller.models import Snapshot
from poller.poll.cycle import poll_once
from poller.runtime import open_runtime

# The pack the demo judges its month by: ArbZG asks for 30 minutes of breaks over 6 hours,
# which the emulated employees' breaks often miss (the EU pack's 15 minutes they keep).
DEMO_RULES = "de"
# PRAGMA application_id of a database the demo made ("tmdo"): the one file it may remove.
DEMO_APPLICATION_ID = int.from_bytes(b"tmdo", "big")
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: cycles polled, whether every user was stored, each user's newest
    snapshot, and the polled month judged by DEMO_RULES."""

    database: Path
    cycles: int
    ok: bool
    latest: tuple[Snapshot, ...]
    compliance: ComplianceReport | None = None
    rules: str = DEMO_RULES


def run_demo(
    database: Path = Path("timeman-demo.sqlite3"),
    *,
    duration: float = 20.0,
    interval: float = 5.0,
    users: int = 25,
    speed: float = 600.0,
    progress: Callable[[DemoEvent], None] = lambda _event: None,
) -> DemoResult:
    """Poll an emulated portal into a SQLite file for a few seconds, then show the result.

    The emulated portal's world runs --speed times faster than real time; the seconds shown
    for a cycle are real ones.
    """
    # `progress` hears when the portal is up and after each cycle.
    if duration <= 0 or interval <= 0:
        raise ConfigError("--duration and --interval: expected seconds > 0")
    if not database.absolute().parent.is_dir():
        raise ConfigError(f"--database: directory {database.absolute().parent} does not exist")
    if fresh_database(database):
        progress(DemoRemoved(database))
    # One simulated clock for the whole portal (its world, bucket, operating window) and the
    # poller, so poll times and workday times are instants of one clock; it runs `speed`
    # times faster than real time.
    clock = SimClock(speed=speed)
    with ExitStack() as cleanup:
        emulator = Emulator(EmulatorSettings(users=users), clock=clock).start()
        cleanup.callback(emulator.stop)
        base_url, path = parse_webhook_url(emulator.webhook_url, "demo")
        portal = PortalConfig(
            name="demo", base_url=base_url, webhook_path=path, users=tuple(range(1, users + 1))
        )
        config = Config(
            database_url=f"sqlite:///{database}",
            schedule=ScheduleConfig(interval_seconds=max(1, int(interval))),
            http=HttpConfig(),
            portals=(portal,),
            spool_path=None,
        )
        runtime = cleanup.enter_context(
            open_runtime(config, schema="upgrade", spool=False, handle_signals=False, clock=clock)
        )
        progress(DemoStarted(users, emulator.base_url, speed, database))
        deadline = time.monotonic() + duration
        cycle = 0
        all_ok = True
        while True:
            cycle += 1
            started = time.monotonic()
            report = poll_once(runtime.clients, runtime.engine, clock=clock.now)
            seconds = time.monotonic() - started
            all_ok = all_ok and report.ok
            progress(DemoCycle(cycle, report.started_at, report.log_line(seconds)))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(interval, remaining))
        judged = find_stored_violations(
            runtime.engine, Month.parse(f"{clock.now():%Y-%m}"), load_pack(DEMO_RULES), portals=("demo",)
        )
        latest = tuple(storage.get_latest_snapshots(runtime.engine))
        return DemoResult(database, cycle, all_ok, latest, judged)


def fresh_database(database: Path) -> bool:
    """Make `database` an empty SQLite file marked as the demo's; True if an earlier demo's
    database was removed first. Any other existing file is refused, never removed."""
    removed = database.exists() or database.is_symlink()
    if removed:
        if database.is_symlink() or not is_demo_database(database):
            raise ConfigError(
                f"--database {database}: the file exists and was not made by `timeman-poller demo`; "
                "the demo starts from an empty file: give another --database"
            )
        companions = [database.with_name(database.name + end) for end in SQLITE_COMPANIONS]
        odd = [path for path in companions if path.exists() and not path.is_file() and not path.is_symlink()]
        if odd:  # checked before anything is removed, so a refusal leaves the old demo whole
            raise ConfigError(
                f"--database {database}: {odd[0]} is not a file; remove it or give another --database"
            )
        for path in (database, *companions):
            path.unlink(missing_ok=True)
    with closing(sqlite3.connect(database)) as marking:
        marking.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        marking.commit()
    return removed


def is_demo_database(path: Path) -> bool:
    """Whether `path` is a SQLite file that carries the demo's application id (its header)."""
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except OSError:  # a directory, unreadable
        return False
    return (
        len(header) == 100
        and header.startswith(b"SQLite format 3\x00")
        and int.from_bytes(header[68:72], "big") == DEMO_APPLICATION_ID
    )
