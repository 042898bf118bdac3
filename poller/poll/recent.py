"""What the poll cycles did lately, as `status` shows it: the newest cycles, a day's errors,
who holds each portal, and a spool still waiting (poller.render.status writes it out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from poller import storage
from poller.config import Config
from poller.daemon import replicas
from poller.models import PollRun


@dataclass(frozen=True)
class RunInfo:
    """One poll cycle as `status` shows it; `finished_at` None: the cycle was cut off."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    users_ok: int
    users_failed: int
    seconds: float | None  # how long it took; None when cut off
    portal: str | None = None  # None: a cycle over every portal, from before revision 0005
    outcome: str | None = None  # "finished", "interrupted", "failed", or None while running / cut off
    replica: str | None = None


@dataclass(frozen=True)
class ErrorInfo:
    """The errors of one portal and code since a moment: how many, users hit, the last one."""

    portal: str
    code: str
    count: int
    users: int
    last_at: datetime | None
    last_message: str


@dataclass(frozen=True)
class StatusInfo:
    """What `status` reports: newest cycles first, recent errors, a spool still waiting."""

    runs: tuple[RunInfo, ...]
    errors: tuple[ErrorInfo, ...]
    errors_since: datetime
    spool_waiting: Path | None
    # portal -> the replica holding it now, None when no live replica does (PostgreSQL only)
    holders: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Each portal's newest finished cycle stored every user and did not fail as a whole
        (users not even listed, a portal-wide error); a cycle still running is skipped."""
        newest: dict[str | None, RunInfo] = {}
        for run in self.runs:  # newest first
            if run.finished_at is not None:
                newest.setdefault(run.portal, run)
        return bool(newest) and not any(
            run.users_failed or run.outcome == "failed" for run in newest.values()
        )


def read_status(engine: Engine, config: Config, runs: int, since: datetime) -> StatusInfo:
    """The newest `runs` cycles, the errors since `since`, each portal's holder (PostgreSQL
    only) and whether the spool file of `config` waits."""
    recent = storage.get_recent_runs(engine, runs)
    errors = tuple(ErrorInfo(**row) for row in storage.get_error_summary(engine, since))
    holders: dict[str, str | None] = {}
    if engine.dialect.name == "postgresql":
        names = [p.name for p in config.portals] or sorted({r.portal for r in recent if r.portal})
        held = replicas.get_portal_holders(engine, names)
        holders = {name: held.get(name) for name in names}
    spool = config.spool_path
    return StatusInfo(
        runs=tuple(_run_info(run) for run in recent),
        errors=errors,
        errors_since=since,
        spool_waiting=spool if spool is not None and spool.exists() else None,
        holders=holders,
    )


def _run_info(run: PollRun) -> RunInfo:
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return RunInfo(
        run.id,
        run.started_at,
        run.finished_at,
        run.users_ok,
        run.users_failed,
        seconds,
        run.portal,
        run.outcome,
        run.replica,
    )
