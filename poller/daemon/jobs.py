"""Which jobs the daemon schedules, read from the config alone: a test reads them without threads.

`job_specs` is a pure function from the config to the jobs: their ids, triggers and
APScheduler settings. The daemon (`scheduler.py`) only binds each spec to its body and adds
it to the scheduler. The jobs, each never overlapping itself and each coalescing a backlog
into one run:
- `poll:<portal>` on the portal's interval (on a grid every replica shares, `triggers.py`) or
  cron, first at once: refresh the portal's user directory when it is due (at start, then every
  `[directory] refresh_hours`), then one cycle (`portal_jobs.py`).
- `reconcile:<portal>`, daily at `[reconcile] at` in `[schedule] timezone` unless
  `[reconcile] days` is 0, on a small pool of its own so a long reconcile never takes a poll's
  thread.
- `database`, at the shortest poll interval (at most every DATABASE_JOB_MAX_SECONDS), first at
  once: the schema, the replica's lock connection and the spool (`database_job.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from apscheduler.triggers.base import BaseTrigger

from poller.config import Config, PortalConfig
from poller.daemon import triggers

RECONCILE_THREADS = 4  # reconciles are long and rare: a few at a time, never taking a poll's thread
DATABASE_JOB_MAX_SECONDS = 10  # the spool is written, and the lock connection reopened, this soon
RECONCILE_MISFIRE_SECONDS = 3600  # a reconcile an hour late (a busy pool, a restart) still runs
DATABASE_MISFIRE_SECONDS = 1  # a database run missed is not made up: the next one comes soon

Body = Literal["poll", "reconcile", "database"]


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: what runs (`body`, for `portal` or for the daemon), when, and how.

    `at_start`: the first run is at once rather than at the trigger's first fire time.
    """

    id: str
    body: Body
    trigger: BaseTrigger
    misfire_grace_seconds: int
    portal: str | None = None
    executor: str = "default"
    at_start: bool = False
    max_instances: int = 1  # a job never overlaps itself: a slow cycle delays only its own portal
    coalesce: bool = True  # runs missed while one was running become one run

    @property
    def name(self) -> str:
        """The job's name in APScheduler's log lines: `poll acme`, `database`."""
        return self.id.replace(":", " ")


def job_specs(config: Config, portals: Iterable[PortalConfig] | None = None) -> list[JobSpec]:
    """The daemon's jobs for `portals` (default: the config's): each portal's poll and daily
    reconcile, then the database job."""
    chosen = list(config.portals if portals is None else portals)
    specs: list[JobSpec] = []
    for portal in chosen:
        schedule = config.schedule_of(portal)
        specs.append(
            JobSpec(
                id=f"poll:{portal.name}",
                body="poll",
                portal=portal.name,
                trigger=triggers.poll_trigger(schedule),
                misfire_grace_seconds=triggers.misfire_grace(schedule),
                at_start=True,
            )
        )
        if config.reconcile.days > 0:
            specs.append(
                JobSpec(
                    id=f"reconcile:{portal.name}",
                    body="reconcile",
                    portal=portal.name,
                    trigger=triggers.daily_trigger(config.reconcile.at, config.schedule.timezone),
                    misfire_grace_seconds=RECONCILE_MISFIRE_SECONDS,
                    executor="reconcile",
                )
            )
    specs.append(
        JobSpec(
            id="database",
            body="database",
            trigger=triggers.every(database_period(config, chosen)),
            misfire_grace_seconds=DATABASE_MISFIRE_SECONDS,
            at_start=True,
        )
    )
    return specs


def database_period(config: Config, portals: Iterable[PortalConfig]) -> int:
    """Seconds between runs of the database job: the shortest poll interval, at most
    DATABASE_JOB_MAX_SECONDS (a replica's lock connection is back within two of them)."""
    return min(triggers.shortest_interval(config, portals), DATABASE_JOB_MAX_SECONDS)


def pool_sizes(portal_count: int) -> dict[str, int]:
    """Threads per executor: one per portal's poll plus the database job's; a few reconciles."""
    return {"default": portal_count + 1, "reconcile": max(1, min(RECONCILE_THREADS, portal_count))}
