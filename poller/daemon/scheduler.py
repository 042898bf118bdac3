"""The daemon: every portal on its own APScheduler job, so a slow portal never delays another.

Which jobs there are, and when they fire, is `jobs.py` (read from the config alone); their
bodies are `portal_jobs.py` (poll, reconcile) and `database_job.py` (schema, lock connection,
spool). This module binds each spec to its body, runs the scheduler, and serves the metrics.
The daemon's SQLite connections wait at most `[database] lock_wait_seconds` for a lock: a locked
database is an outage like any other.
`run()` is `start()`, wait for SIGTERM or Ctrl-C (see `shutdown.py`), `stop()`.
Tests call `start()` and `stop()` themselves, or one job (`poll`, `reconcile`) directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from poller.bitrix import PortalClient
from poller.config import Config, PortalConfig
from poller.daemon import shutdown, triggers
from poller.daemon.database_job import DatabaseJob
from poller.daemon.jobs import JobSpec, database_period, job_specs, pool_sizes
from poller.daemon.metrics import Metrics
from poller.daemon.metrics_server import MetricsServer
from poller.daemon.portal_jobs import PortalJobs
from poller.daemon.replicas import ReplicaLocks, for_engine
from poller.errors import ConfigError
from poller.poll.cycle import PortalOutcome
from poller.storage.engine import shorten_lock_waits

if TYPE_CHECKING:
    from poller.runtime import Runtime

logger = logging.getLogger(__name__)


class Daemon:
    """Poll each portal on its own schedule until `stop()` (or, under `run()`, a signal).

    Everything live comes from `runtime` (`poller.runtime`): config, engine, clients, spool,
    token store, metrics, and the stop (its event is every client's: once stopping, a failed
    request is not retried). `migrate` False only checks the schema. `locks` (replicas.py)
    decide which portals this replica polls, made at `start()` from the engine unless given;
    `replica` names this daemon in poll_runs (default: the locks' name, `<host>-<pid>`).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        migrate: bool = True,
        replica: str | None = None,
        locks: ReplicaLocks | None = None,
    ) -> None:
        if runtime.spool is None:
            raise ValueError(
                "the daemon needs a runtime with a spool: it keeps cycles the database cannot take"
            )
        self.config = runtime.config
        self.engine = runtime.engine
        self.clients = list(runtime.clients)
        self.metrics = runtime.metrics
        self.stopping = runtime.stop
        self.replica = replica
        self.locks = locks
        self.database = DatabaseJob(runtime, migrate=migrate)
        self.spool = self.database.spool
        self.portal_jobs = PortalJobs(runtime, self.database)
        self._undo_lock_waits: Callable[[], None] = lambda: None
        self._scheduler: Any = None
        self._server: MetricsServer | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        """Start, wait for SIGTERM or Ctrl-C, stop; Ctrl-C then ends as KeyboardInterrupt (exit 130).

        The first signal lets the cycles finish their batch in flight and store what came;
        the process ends within `[http] read_timeout_seconds` + 10 s in every case.
        """
        grace = self.config.http.read_timeout_seconds + shutdown.EXTRA_GRACE_SECONDS
        with shutdown.on_signals(grace, self.stopping, busy=self.describe_busy) as signals:
            self.start()
            try:
                while not self.stopping.wait(1.0):
                    pass
            finally:
                self.stop()
        if signals.interrupted:
            raise KeyboardInterrupt

    def start(self) -> None:
        """Try the database once, schedule every job (each portal's first cycle at once), serve metrics.

        After an outage the lock connections of all replicas come back within one run of their
        database job: for two periods of that job a replica takes no portal beyond its lease.
        """
        from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        portals = [c.portal for c in self.clients]
        if self.locks is None:  # a second daemon on the same SQLite file stops here (ConfigError)
            period = database_period(self.config, portals)
            names = [p.name for p in portals]
            self.locks = for_engine(self.engine, names, self.replica, settle_seconds=2 * period)
        self.replica = self.locks.name
        self.database.locks = self.portal_jobs.locks = self.locks
        self.portal_jobs.replica = self.replica
        self._undo_lock_waits = shorten_lock_waits(self.engine, self.config.lock_wait_seconds)
        self.ensure_database()
        scheduler = BackgroundScheduler(
            executors={name: JobExecutor(size) for name, size in pool_sizes(len(portals)).items()},
            timezone=UTC,
        )
        now = datetime.now(UTC)
        for spec in job_specs(self.config, portals):
            scheduler.add_job(
                self._body(spec),
                spec.trigger,
                id=spec.id,
                name=spec.name,
                executor=spec.executor,
                max_instances=spec.max_instances,
                coalesce=spec.coalesce,
                misfire_grace_time=spec.misfire_grace_seconds,
                **({"next_run_time": now} if spec.at_start else {}),
            )
        self._server = serve_metrics(self.config, self.metrics, portals)
        scheduler.start()
        self._scheduler = scheduler
        logger.info("daemon started: %s", ", ".join(triggers.describe_schedules(self.config, portals)))

    def stop(self) -> None:
        """Stop scheduling; let running cycles end after their batch in flight; wait for them."""
        self.stopping.set()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        # A norms refresh on its own thread sees the stop before its next request; wait for it,
        # so it never writes after the daemon (and the runtime's engine) closed.
        self.portal_jobs.norms.join(timeout=self.config.http.read_timeout_seconds + 5)
        if self.locks is not None:
            self.locks.close()  # other replicas take the portals at once
        self._undo_lock_waits()
        if self._server is not None:
            self._server.stop()
            self._server = None
        logger.info("daemon stopped after %d cycles", sum(self.cycles.values()))

    def jobs(self) -> dict[str, Any]:
        """The scheduled APScheduler jobs by id while started (empty when stopped)."""
        scheduler = self._scheduler
        return {job.id: job for job in scheduler.get_jobs()} if scheduler is not None else {}

    def _body(self, spec: JobSpec) -> Callable[[], object]:
        """What runs for `spec`: its portal's poll or reconcile, or the database job."""
        if spec.body == "database":
            return self.database.run
        (client,) = (c for c in self.clients if c.portal.name == spec.portal)
        body = self.portal_jobs.poll if spec.body == "poll" else self.portal_jobs.reconcile
        return lambda: body(client)

    # -- the jobs, for tests and for run's signal handling --------------------------------

    @property
    def cycles(self) -> dict[str, int]:
        """Cycles run per portal since start."""
        return self.portal_jobs.cycles

    @property
    def last_outcome(self) -> dict[str, PortalOutcome]:
        return self.portal_jobs.last_outcome

    @property
    def database_ready(self) -> bool:
        return self.database.ready

    def ensure_database(self) -> bool:
        """Bring the schema to head unless done already (`DatabaseJob.ensure`)."""
        return self.database.ensure()

    def poll(self, client: PortalClient) -> PortalOutcome | None:
        """One run of the portal's poll job (`PortalJobs.poll`); None when no cycle ran."""
        return self.portal_jobs.poll(client)

    def reconcile(self, client: PortalClient) -> None:
        """One run of the portal's reconcile job (`PortalJobs.reconcile`)."""
        self.portal_jobs.reconcile(client)

    def describe_busy(self) -> str:
        return self.portal_jobs.describe_busy()


def serve_metrics(
    config: Config, metrics: Metrics | None, portals: Sequence[PortalConfig]
) -> MetricsServer | None:
    """Serve /metrics and /healthz when `[metrics] port` is set; healthy while a cycle ended
    within `healthz_max_age_seconds` (default: three of the longest interval)."""
    settings = config.metrics
    if metrics is None or settings.port is None:
        return None
    intervals = [config.schedule_of(portal).interval_seconds or 1200 for portal in portals]
    longest = max(intervals, default=60)  # a cron schedule counts as every 20 minutes
    max_age = settings.healthz_max_age_seconds or 3 * longest
    try:
        server = MetricsServer(metrics, settings.host, settings.port, max_age).start()
    except OSError as exc:
        raise ConfigError(
            f"config key metrics.port: cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from None
    logger.info("metrics on http://%s:%d/metrics, health on /healthz", settings.host, server.port)
    return server
