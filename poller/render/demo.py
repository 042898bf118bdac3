"""What `demo` prints: a line as the portal comes up and after each cycle, then the newest
statuses, the month judged, and the commands to try next."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from poller.demo_events import DemoCycle, DemoEvent, DemoRemoved
from poller.render.compliance import summary_line
from poller.render.durations import hours_minutes

if TYPE_CHECKING:
    from poller.compliance.from_storage import ComplianceReport
    from poller.demo import DemoResult
    from poller.models import Snapshot


def demo_line(event: DemoEvent) -> str:
    """The line of one step of the demo as it runs."""
    if isinstance(event, DemoRemoved):
        return f"Removed the previous demo's {event.database}: every demo starts from an empty database"
    if isinstance(event, DemoCycle):
        return f"cycle {event.number} (simulated {event.simulated_at:%Y-%m-%d %H:%M UTC}): {event.line}"
    return (
        f"Emulated Bitrix24 portal with {event.users} users at {event.base_url} "
        f"(simulated clock x{event.speed:g}); storing into {event.database}"
    )


def demo_ending(result: DemoResult) -> str:
    """After the cycles: the newest statuses, then what to try next (a blank line before each)."""
    steps = next_steps(result.database, result.rules, result.compliance)
    return f"\n{latest_table(result.latest)}\n\n{steps}"


def latest_table(snapshots: Sequence[Snapshot]) -> str:
    """A small text table of each user's newest snapshot."""
    header = ("user", "status", "local start", "duration", "breaks", "tz")
    rows = [header]
    for snap in snapshots:
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


def next_steps(database: Path, rules: str, compliance: ComplianceReport | None = None) -> str:
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
        f"  timeman-poller report compliance --month {month:%Y-%m} --rules {rules} "
        f"--database sqlite:///{database}\n"
        f"  timeman-poller report timesheet --month {month:%Y-%m} --database sqlite:///{database}\n"
        "Next, your own portal: `timeman-poller init` writes config.toml (every key documented);\n"
        "set its [[portals]], then `timeman-poller check` and `timeman-poller run`."
    )
