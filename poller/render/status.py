"""The text `status` prints: the newest cycles in aligned columns, the day's errors, the locks.

Apart from `poll.recent.StatusInfo` so that the data holds no layout; counts are said in the
singular when there is one ("1 cycle", "1 user"). `--format json` is status_json.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from poller.render.report import json_values

if TYPE_CHECKING:
    from poller.poll.recent import StatusInfo


def counted(number: int, noun: str) -> str:
    """`1 cycle`, `2 cycles`, `1,200 users`: a count with its noun in the right number."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def status_json(info: StatusInfo) -> dict[str, Any]:
    """`status --format json`: plain JSON types, instants as ISO 8601 strings."""
    return dict(json_values({"ok": info.ok, **asdict(info)}))


def status_summary(info: StatusInfo) -> str:
    """Cycles newest first, one per line, with the portal column as wide as its longest name."""
    lines = [f"last {counted(len(info.runs), 'cycle')} (UTC):"]
    portal_width = max((len(run.portal) for run in info.runs if run.portal), default=0)
    for run in info.runs:
        took = f"{run.seconds:.2f} s" if run.seconds is not None else "running or cut off"
        if run.outcome in ("interrupted", "failed"):
            took += f" ({run.outcome})"
        where = f"  {(run.portal or '').ljust(portal_width)}" if portal_width else ""
        by = f"  by {run.replica}" if run.replica else ""
        lines.append(
            f"  #{run.id:<6} {run.started_at:%Y-%m-%d %H:%M:%S}{where}  {run.users_ok:>6} ok  "
            f"{run.users_failed:>6} failed  {took}{by}"
        )
    if not info.runs:
        lines.append("  none yet: run `timeman-poller poll` or `timeman-poller run`")
    lines.append("errors in the last 24 hours:" if info.errors else "no errors in the last 24 hours")
    error_width = max((len(error.portal) for error in info.errors), default=0)
    for error in info.errors:
        last = f"{error.last_at:%Y-%m-%d %H:%M:%S}" if error.last_at else "?"
        lines.append(
            f"  {(error.portal + ':').ljust(error_width + 1)} {error.code} x{error.count} "
            f"({counted(error.users, 'user')}), last {last}: {error.last_message}"
        )
    if info.spool_waiting is not None:
        lines.append(f"spool {info.spool_waiting} holds snapshots waiting for the database")
    if info.holders:
        lines.append("portals by replica (live locks):")
        holder_width = max(len(portal) for portal in info.holders)
        for portal, replica in info.holders.items():
            held = replica or "not held (no live replica has taken it)"
            lines.append(f"  {(portal + ':').ljust(holder_width + 1)} {held}")
    return "\n".join(lines)
