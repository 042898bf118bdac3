"""The text of the command results that have no layout module of their own: JSON documents,
`init`'s, `db upgrade`'s and `prune`'s lines, the emulator's banner, a backfill's resume line.

Layout only: the CLI decides what to print and the exit code (`poller.cli_commands`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from poller.logs import PROGRAM

if TYPE_CHECKING:
    from poller.commands import UpgradeResult
    from poller.config.example import WrittenExample
    from poller.emulator import Emulator, EmulatorSettings
    from poller.history.retention import PruneResult
    from poller.poll.backfill import BackfillReport

REPLAY = timedelta(days=1)  # `emulator --speed N` (N > 1) replays this much of the past


def terminal_width() -> int | None:
    """The terminal's width for tables ($COLUMNS first); None (no limit) when stdout is not a
    terminal and $COLUMNS is not set: a file or a pipe gets every column."""
    if not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        return None
    columns = shutil.get_terminal_size(fallback=(0, 0)).columns
    return columns if columns > 0 else None


def json_text(value: Any) -> str:
    """A result as the JSON that `--format json` prints: indented, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def init_line(written: WrittenExample) -> str:
    """Where `init` wrote the example config and what to do next."""
    verb = "replaced" if written.replaced else "wrote"
    return (
        f"{verb} {written.path} (the example config, owner-only: it will hold secrets); "
        f"set your portal under [[portals]], then run: {PROGRAM} -c {written.path} check"
    )


def upgrade_line(result: UpgradeResult) -> str:
    """The database and what `db upgrade` did to its schema."""
    if result.outcome == "created":
        return f"{result.database}: schema created at revision {result.after}"
    if result.outcome == "upgraded":
        return f"{result.database}: schema upgraded from revision {result.before} to {result.after}"
    return f"{result.database}: schema already up to date (revision {result.after})"


def prune_summary(result: PruneResult) -> str:
    """What `prune` deleted (or would); inside the floor, also what the floor protects."""
    verb = "would delete" if result.dry_run else "deleted"
    if result.protected is None or result.floor_cutoff is None:
        return f"{verb} {result.counts.describe()} from before {result.cutoff:%Y-%m-%d %H:%M} UTC"
    return (
        f"{verb} {result.counts.describe()} from before {result.floor_cutoff:%Y-%m-%d %H:%M} UTC "
        f"(the retention floor)\nprotected by the floor: {result.protected.describe()} "
        f"from {result.cutoff:%Y-%m-%d %H:%M} UTC on"
    )


def clock_words(speed: float) -> str:
    """How the emulated world's clock runs, for the banner."""
    if speed <= 1:
        return "real time" if speed == 1 else f"clock x{speed:g}"
    minutes = REPLAY.total_seconds() / (speed - 1) / 60
    return f"the last day replayed x{speed:g} in {minutes:.0f} min, then real time"


def emulator_banner(emulator: Emulator, settings: EmulatorSettings) -> str:
    """What a config needs to reach the emulator: addresses and credentials, as TOML values."""
    return "\n".join(
        [
            f"Emulated Bitrix24 portal with {settings.users} users ({clock_words(settings.speed)})",
            f'  webhook_url   = "{emulator.webhook_url}"',
            f'  domain        = "{emulator.base_url}"  access_token = "{settings.access_token}"',
            f'  refresh_token = "{settings.refresh_token}"  client_id = "{settings.client_id}"',
            f'  client_secret = "{settings.client_secret}"  oauth_url = "{emulator.oauth_url}"',
            "Press Ctrl+C to stop.",
        ]
    )


def resume_line(report: BackfillReport, portals: Sequence[str], users: Sequence[int] | None) -> str:
    """After Ctrl-C: how far a backfill got and the command that resumes it."""
    done = sum(p.skipped + p.done for p in report.portals)
    asked = sum(p.users for p in report.portals)
    again = [PROGRAM, "backfill", f"--since {report.date_from}", f"--until {report.date_to}"]
    again += [f"--portal {name}" for name in portals]
    again += [f"--users {','.join(map(str, users))}"] if users else []
    return f"interrupted: {done:,} of {asked:,} users done; to resume: {' '.join(again)}"
