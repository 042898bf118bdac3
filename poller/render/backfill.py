"""The text `backfill` prints when it ends: a line per portal, its failed users, its calendar.

The progress bar while it runs is poller.render.progress; the resume line after Ctrl-C is
poller.render.results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poller.render.status import counted

if TYPE_CHECKING:
    from poller.poll.backfill import BackfillReport, PortalBackfill


def backfill_summary(report: BackfillReport) -> str:
    """A line per portal, then each failed user (a few) of a portal that was not cut short."""
    lines = []
    for portal in report.portals:
        lines.append(portal_line(portal))
        if portal.error is None:
            lines.extend(failure_lines(portal))
    return "\n".join(lines)


def portal_line(state: PortalBackfill, what: str = "backfill") -> str:
    """One line: `backfill acme: 1000 users, 21,345 records (21,000 new, 345 updated), ...`."""
    line = (
        f"{what} {state.portal}: {state.users} user{'' if state.users == 1 else 's'}, "
        f"{state.records:,} records "
        f"({state.inserted:,} new, {state.updated:,} updated), {counted(state.requests, 'request')}, "
        f"{state.seconds:.1f} s"
    )
    if state.skipped:
        line += f"; {state.skipped:,} users already done before"
    if state.failed:
        line += f"; {len(state.failed):,} users failed"
    if state.stopped:
        line += f"; stopped with {state.left:,} users left"
    calendar = calendar_line(state)
    if calendar is not None:
        line += f"; {calendar}"
    if state.error is not None:
        line += f"; {state.error}"
    return line


def calendar_line(state: PortalBackfill) -> str | None:
    """The calendar years and absence days a backfill stored, and its requests; None when it
    did not get that far (a reconcile never does)."""
    found = state.calendar
    if found is None:
        return None
    years = ", ".join(f"{year} ({source})" for year, source in found.years) or "none"
    line = f"calendar {years}, {found.absence_days:,} absence days"
    if found.note is not None:
        line += f"; {found.note}"
    return f"{line} ({counted(state.calendar_requests, 'request')})"


def failure_lines(state: PortalBackfill, limit: int = 5) -> list[str]:
    """A line per failed user, at most `limit` of them and a count of the rest."""
    shown = [f"  user {user_id}: {message}" for user_id, message in list(state.failed.items())[:limit]]
    if len(state.failed) > limit:
        shown.append(f"  ... and {len(state.failed) - limit:,} more users")
    return shown
