"""The demo: a local emulator, a SQLite file, a few poll cycles, and what to query next.

It reports through a `progress` callback and a result; the CLI does the printing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from poller import storage
from poller.compliance import Month, load_pack
from poller.compliance.from_storage import ComplianceReport, find_stored_violations
from poller.config import Config, HttpConfig, PortalConfig, ScheduleConfig, parse_webhook_url
from poller.emulator import Emulator, EmulatorSettings, SimClock
from poller.errors import ConfigError
from poller.poll.cycle import poll_once
from poller.render.compliance import summary_line
from poller.render.durations import hours_minutes
from poller.runtime import open_runtime

# The pack the demo judges its month by: ArbZG asks for 30 minutes of breaks over 6 hours,
# which the emulated employees' breaks often miss (the EU pack's 15 minutes they keep).
DEMO_RULES = "de"
# PRAGMA application_id of a database the demo made ("tmdo"): the one file it may remove.
DEMO_APPLICATION_ID = int.from_bytes(b"tmdo", "big")
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: cycles polled, whether every user was stored, the newest statuses."""

    database: Path
    cycles: int
    ok: bool
    latest_table: str
    compliance: ComplianceReport | None = None  # the polled month judged by DEMO_RULES

    def next_steps(self) -> str:
        return next_steps(self.database, self.compliance)


def run_demo(
    database: Path = Path("timeman-demo.sqlite3"),
    *,
    duration: float = 20.0,
    interval: float = 5.0,
    users: int = 25,
    speed: float = 600.0,
    progress: Callable[[str], None] = lambda _line: None,
) -> DemoResult:
    """Poll an emulated portal into a SQLite file for a few seconds, then show the result.

    The emulated portal's world runs --speed times faster than real time; the seconds shown
    for a cycle are real ones.
    """
    # `progress` gets one line when the portal is up and one per cycle.
    if duration <= 0 or interval <= 0:
        raise ConfigError("--duration and --interval: expected seconds > 0")
    if not database.absolute().parent.is_dir():
        raise ConfigError(f"--database: directory {database.absolute().parent} does not exist")
    if fresh_database(database):
        progress(f"Removed the previous demo's {database}: every demo starts from an empty database")
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
        progress(
            f"Emulated Bitrix24 portal with {users} users at {emulator.base_url} "
            f"(simulated clock x{speed:g}); storing into {database}"
        )
        deadline = time.monotonic() + duration
        cycle = 0
        all_ok = True
        while True:
            cycle += 1
            started = time.monotonic()
            report = poll_once(runtime.clients, runtime.engine, clock=clock.now)
            seconds = time.monotonic() - started
            all_ok = all_ok and report.ok
            simulated = report.started_at.strftime("%Y-%m-%d %H:%M UTC")
            progress(f"cycle {cycle} (simulated {simulated}): {report.summary(seconds)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(interval, remaining))
        judged = find_stored_violations(
            runtime.engine, Month.parse(f"{clock.now():%Y-%m}"), load_pack(DEMO_RULES), portals=("demo",)
        )
        return DemoResult(database, cycle, all_ok, latest_table(runtime.engine), judged)


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


def latest_table(engine: Engine) -> str:
    """A small text table of each user's newest snapshot."""
    header = ("user", "status", "local start", "duration", "breaks", "tz")
    rows = [header]
    for snap in storage.get_latest_snapshots(engine):
        offset = snap.tz_offset or 0
        start = (
            (snap.time_start.astimezone(UTC) + timedelta(seconds=offset)).strftime("%a %H:%M")
            if snap.time_start
            else "-"
        )
        rows.append(
            (
                str(snap.user_id),
                snap.status or "?",
                start,
                hours_minutes(snap.duration_seconds) if snap.duration_seconds is not None else "-",
                hours_minutes(snap.time_leaks_seconds) if snap.time_leaks_seconds is not None else "-",
                f"UTC{offset / 3600:+g}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def next_steps(database: Path, compliance: ComplianceReport | None = None) -> str:
    """What to try after the demo, with the file it wrote and its month judged (one line)."""
    month = compliance.month.first if compliance else datetime.now(UTC).date()
    found = f"{summary_line(compliance)}\n" if compliance else "\n"
    return (
        "Query the history yourself, for example:\n"
        f'  sqlite3 {database} "SELECT user_id, polled_at, status, duration_seconds, '
        'time_leaks_seconds FROM snapshots WHERE user_id = 5 ORDER BY polled_at"\n'
        f'  sqlite3 -header {database} "SELECT user_id, work_date, status, worked_seconds, leaks_seconds '
        'FROM workdays ORDER BY user_id, time_start"\n'
        f'  sqlite3 {database} "SELECT portal, user_id, code, message FROM poll_errors"\n'
        f"Working-time compliance: {found}"
        "  the full report (exit 1 when anything is found; --rules eu, de, ru or your own TOML pack),\n"
        "  and the timesheet with its pay categories:\n"
        f"  timeman-poller report compliance --month {month:%Y-%m} --rules {DEMO_RULES} "
        f"--database sqlite:///{database}\n"
        f"  timeman-poller report timesheet --month {month:%Y-%m} --database sqlite:///{database}\n"
        "Point config.toml at your own portal (see config.example.toml) and run "
        "`timeman-poller run`."
    )
