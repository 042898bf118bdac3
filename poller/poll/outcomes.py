"""What a poll cycle did: one portal's `PortalOutcome`, every portal's `PollReport`.

Each has its log line (`log_line`): the daemon logs a portal's after each cycle, `poll` logs
the report's, the demo shows it per cycle. A log line is the cycle's own text, not a command's
output, so it stays here rather than in poller.render (which the cycle never imports).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from poller.storage.runs import RunOutcome


@dataclass(frozen=True)
class PortalOutcome:
    """What one portal's cycle did.

    `kept`: snapshots fetched but waiting in the spool for the database; `not_polled`: users
    left unasked because a stop cut the cycle (`interrupted`); `run_id`: its poll_runs row
    (None when the database was down when the cycle began).
    """

    portal: str
    users_ok: int
    users_failed: int
    portal_failed: bool
    requests: int
    error_codes: tuple[tuple[str, int], ...] = ()
    kept: int = 0
    not_polled: int = 0
    interrupted: bool = False
    run_id: int | None = None
    seconds: float = 0.0
    started_at: datetime | None = None  # the instants of its poll_runs row
    finished_at: datetime | None = None

    @property
    def run_outcome(self) -> RunOutcome:
        """Its poll_runs outcome: cut by a stop, else failed as a whole (users not even listed,
        or a portal-wide error), else finished."""
        if self.interrupted:
            return "interrupted"
        return "failed" if self.portal_failed else "finished"

    def log_line(self) -> str:
        return _line(self, self.seconds, "the portal failed" if self.portal_failed else "")


@dataclass(frozen=True)
class PollReport:
    """What one cycle of every portal did (the `poll` command); `stopped`: a stop was asked for."""

    started_at: datetime
    finished_at: datetime
    portals: tuple[PortalOutcome, ...]
    stopped: bool = False

    @property
    def users_ok(self) -> int:
        return sum(p.users_ok for p in self.portals)

    @property
    def users_failed(self) -> int:
        return sum(p.users_failed for p in self.portals)

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.portals)

    @property
    def kept(self) -> int:
        return sum(p.kept for p in self.portals)

    @property
    def not_polled(self) -> int:
        return sum(p.not_polled for p in self.portals)

    @property
    def interrupted(self) -> bool:
        """A stop (SIGTERM, Ctrl-C) came during the cycle, whether or not it cut a portal's part."""
        return self.stopped or any(p.interrupted for p in self.portals)

    @property
    def ok(self) -> bool:
        """Every portal's cycle was recorded, stored every user and was not cut."""
        return not any(
            p.run_id is None or p.users_failed or p.portal_failed or p.kept or p.interrupted
            for p in self.portals
        )

    def log_line(self, seconds: float | None = None) -> str:
        """One line; `seconds` replaces the report's own span when its instants are simulated (demo)."""
        if seconds is None:
            seconds = (self.finished_at - self.started_at).total_seconds()
        failed = sum(p.portal_failed for p in self.portals)
        return _line(self, seconds, f"{failed} of {len(self.portals)} portals failed" if failed else "")


def _line(counts: PortalOutcome | PollReport, seconds: float, failure: str) -> str:
    """The line both log lines share; `failure` names the failed portals ('' when none)."""
    text = (
        f"{counts.users_ok} users stored, {counts.users_failed} failed, "
        f"{counts.requests} request{'' if counts.requests == 1 else 's'}, {seconds:.2f} s"
    )
    if failure:
        text += f", {failure}"
    if counts.kept:
        text += f", {counts.kept} kept for the database"
    if counts.interrupted:
        text += ", interrupted" + (f": {counts.not_polled} users not polled" if counts.not_polled else "")
    return text
