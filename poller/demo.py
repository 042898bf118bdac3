"""The demo: a local emulator, a SQLite file, a few poll cycles, and what to query next."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path

from sqlalchemy import Engine

from poller import storage
from poller.config import Config, HttpConfig, PortalConfig, ScheduleConfig, parse_webhook_url
from poller.daemon import make_clients, poll_once
from poller.emulator import Emulator, EmulatorSettings


def run_demo(
    database: Path,
    *,
    duration: float = 20.0,
    interval: float = 5.0,
    users: int = 25,
    speed: float = 600.0,
    echo: Callable[[str], None] = print,
) -> int:
    """Poll an emulated portal for `duration` seconds into `database`; return the exit code."""
    emulator = Emulator(EmulatorSettings(users=users, speed=speed)).start()
    try:
        base_url, path = parse_webhook_url(emulator.webhook_url, "demo")
        portal = PortalConfig(
            name="demo", base_url=base_url, webhook_path=path, users=tuple(range(1, users + 1))
        )
        config = Config(
            database_url=f"sqlite:///{database}",
            schedule=ScheduleConfig(interval_seconds=max(1, int(interval))),
            http=HttpConfig(),
            portals=(portal,),
        )
        engine = storage.make_engine(config.database_url)
        storage.upgrade_database(engine)
        echo(
            f"Emulated Bitrix24 portal with {users} users at {emulator.base_url} "
            f"(simulated clock x{speed:g}); storing into {database}"
        )
        # Poll times come from the simulated clock, so that worked-time estimates in the
        # views compare instants of one clock.
        clients = make_clients(config, engine, wall_clock=lambda: emulator.clock.now().timestamp())
        deadline = time.monotonic() + duration
        cycle = 0
        all_ok = True
        while True:
            cycle += 1
            report = poll_once(clients, engine, clock=emulator.clock.now)
            all_ok = all_ok and report.ok
            simulated = emulator.clock.now().strftime("%Y-%m-%d %H:%M UTC")
            echo(f"cycle {cycle} (simulated {simulated}): {report.summary()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(interval, remaining))
        echo("")
        echo(latest_table(engine))
        echo("")
        echo(next_steps(database))
        engine.dispose()
        return 0 if all_ok else 1
    finally:
        emulator.stop()


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
                _hms(snap.duration_seconds),
                _hms(snap.time_leaks_seconds),
                f"UTC{offset / 3600:+g}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def next_steps(database: Path) -> str:
    return (
        "Query the history yourself, for example:\n"
        f'  sqlite3 {database} "SELECT user_id, polled_at, status, duration_seconds, '
        'time_leaks_seconds FROM snapshots WHERE user_id = 5 ORDER BY polled_at"\n'
        f'  sqlite3 -header {database} "SELECT user_id, work_date, status, worked_seconds, leaks_seconds '
        'FROM workdays ORDER BY user_id, time_start"\n'
        f'  sqlite3 {database} "SELECT portal, user_id, code, message FROM poll_errors"\n'
        "Point config.toml at your own portal (see config.example.toml) and run "
        "`timeman-poller run`."
    )


def _hms(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}"
