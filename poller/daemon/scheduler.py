"""The scheduler: every portal on its own APScheduler job, so a slow portal never delays another.

Jobs, each never overlapping itself, each portal's in a thread of its own:
- `poll:<portal>` on the portal's interval (on a grid every replica shares, `triggers.py`) or
  cron (`config.schedule_of`): refresh the portal's user directory when it is due (at start,
  then every `[directory] refresh_hours`), then `cycle.poll_portal`.
- `database`, at the shortest portal interval (at most every 10 s): bring the schema to head
  while it is not (the database was down at start: cycles go to the spool meanwhile), reopen
  the replica's lock connection if it broke (`PortalLocks.renew`), write what the spool kept.
- `reconcile:<portal>`, daily at `[reconcile] at` in `[schedule] timezone`: re-read the last
  days of records (`backfill.reconcile`), on a small pool of its own.

Every replica schedules every portal; a portal's job polls only while this replica holds
the portal's lock, or its lease while the database is away (`portal_locks.py`), and gives it
up after the cycle when it holds more than its share. The daemon's SQLite connections wait at
most DAEMON_BUSY_TIMEOUT_SECONDS for a lock: a locked database is an outage like any other.
`run()` is `start()`, wait for SIGTERM or Ctrl-C (see `shutdown.py`), `stop()`.
Tests call `start()` and `stop()` themselves, or one job (`poll`, `reconcile`) directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.config import Config
from poller.daemon import shutdown
from poller.daemon.metrics import Metrics, MetricsServer
from poller.daemon.replicas import ReplicaLocks, for_engine
from poller.daemon.takeover import take_over
from poller.errors import ConfigError, PollerError
from poller.poll.cycle import PortalOutcome, poll_portal
from poller.poll.directory_refresh import DirectoryRefresher
from poller.spool.queue import Spool
from poller.spool.tokenstore import TokenStore, tokens_path
from poller.storage.engine import shorten_lock_waits

logger = logging.getLogger(__name__)

RECONCILE_THREADS = 4  # reconciles are long and rare: a few at a time, never taking a poll's thread
DATABASE_JOB_MAX_SECONDS = 10  # the spool is written, and the lock connection reopened, this soon


class Daemon:
    """Poll each portal on its own schedule until `stop()` (or, under `run()`, a signal).

    `spool` and `tokens` default to the config's files; `locks` (replicas.py) decide which
    portals this replica polls, made at `start()` from the engine unless given; `replica`
    names this daemon in poll_runs (default: the locks' name, `<host>-<pid>`).
    """

    def __init__(
        self,
        config: Config,
        engine: Engine,
        clients: Sequence[PortalClient],
        metrics: Metrics | None = None,
        *,
        migrate: bool = True,
        spool: Spool | None = None,
        tokens: TokenStore | None = None,
        replica: str | None = None,
        locks: ReplicaLocks | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.clients = list(clients)
        self.metrics = metrics
        self.migrate = migrate
        self.replica = replica
        self.locks = locks
        self.spool = (
            spool if spool is not None else Spool(config.spool_path, config.spool_max_rows, metrics=metrics)
        )
        self.tokens = tokens if tokens is not None else TokenStore(engine, tokens_path(config.spool_path))
        self.stopping = threading.Event()
        for client in self.clients:
            client.stop = self.stopping  # once stopping, a failed request is not retried
        self.cycles: dict[str, int] = {client.portal.name: 0 for client in self.clients}
        self.last_outcome: dict[str, PortalOutcome] = {}
        self._database_ready = False
        self._database_complaint: str | None = None
        self._database_lock = threading.Lock()
        self.directory = DirectoryRefresher(engine, config.directory.refresh_hours)
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
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

        from poller.daemon import triggers

        portals = [c.portal for c in self.clients]
        period = min(triggers.shortest_interval(self.config, portals), DATABASE_JOB_MAX_SECONDS)
        if self.locks is None:  # a second daemon on the same SQLite file stops here (ConfigError)
            names = [p.name for p in portals]
            self.locks = for_engine(self.engine, names, self.replica, settle_seconds=2 * period)
        self.replica = self.locks.name
        self._undo_lock_waits = shorten_lock_waits(self.engine)
        self.ensure_database()
        reconciling = self.config.reconcile.days > 0
        scheduler = BackgroundScheduler(
            executors={
                "default": JobExecutor(len(self.clients) + 1),
                "reconcile": JobExecutor(max(1, min(RECONCILE_THREADS, len(self.clients)))),
            },
            job_defaults={"max_instances": 1, "coalesce": True},
            timezone=UTC,
        )
        now = datetime.now(UTC)
        for client in self.clients:
            name = client.portal.name
            schedule = self.config.schedule_of(client.portal)
            scheduler.add_job(
                self.poll,
                triggers.poll_trigger(schedule),
                args=(client,),
                id=f"poll:{name}",
                name=f"poll {name}",
                next_run_time=now,
                misfire_grace_time=triggers.misfire_grace(schedule),
            )
            if reconciling:
                hour, minute = (int(part) for part in self.config.reconcile.at.split(":"))
                scheduler.add_job(
                    self.reconcile,
                    "cron",
                    args=(client,),
                    hour=hour,
                    minute=minute,
                    timezone=ZoneInfo(self.config.schedule.timezone),
                    id=f"reconcile:{name}",
                    name=f"reconcile {name}",
                    executor="reconcile",
                    misfire_grace_time=3600,
                )
        scheduler.add_job(
            self.maintain_database,
            "interval",
            seconds=period,
            id="database",
            name="database",
            next_run_time=now,
        )
        self._server = self._start_metrics_server()
        scheduler.start()
        self._scheduler = scheduler
        logger.info("daemon started: %s", ", ".join(triggers.describe_schedules(self.config, portals)))

    def stop(self) -> None:
        """Stop scheduling; let running cycles end after their batch in flight; wait for them."""
        self.stopping.set()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        if self.locks is not None:
            self.locks.close()  # other replicas take the portals at once
        self._undo_lock_waits()
        if self._server is not None:
            self._server.stop()
            self._server = None
        logger.info("daemon stopped after %d cycles", sum(self.cycles.values()))

    def jobs(self) -> dict[str, Any]:
        """The scheduled APScheduler jobs by id while started (empty when stopped): their
        triggers and next run times, for tests and for a status that shows them."""
        scheduler = self._scheduler
        return {job.id: job for job in scheduler.get_jobs()} if scheduler is not None else {}

    def describe_busy(self) -> str:
        """The portals mid-cycle, for the line a hard stop logs (their part in flight is lost)."""
        with self._busy_lock:
            busy = sorted(self._busy)
        if not busy:
            return ""
        return f"cycles of {', '.join(busy)} cut; at most the part in flight of each is lost"

    # -- the database --------------------------------------------------------------------

    @property
    def database_ready(self) -> bool:
        return self._database_ready

    def ensure_database(self) -> bool:
        """Bring the schema to head (or, without migrate, check it) unless that was done already.

        A database that is down or behind is said once, and tried again on every call; until
        then the cycles go to the spool.
        """
        with self._database_lock:
            if self._database_ready:
                return True
            try:
                if self.migrate:
                    storage.upgrade_database(self.engine)
                else:
                    storage.check_schema(self.engine)
            except (PollerError, storage.DatabaseFailure) as exc:
                complaint = str(exc) if isinstance(exc, PollerError) else storage.describe_db_error(exc)
                if self._database_complaint is None:
                    logger.error(
                        "%s; polling into the spool and trying again every cycle",
                        complaint.removesuffix("."),
                    )
                self._database_complaint = complaint
                return False
            if self._database_complaint is not None:
                logger.info("database ready: the schema is at head")
            self._database_ready = True
            return True

    def maintain_database(self) -> None:
        """The database job: the schema at head (retried while it is not), the lock connection
        renewed if it broke, then the spool written."""
        if self.stopping.is_set() or not self.ensure_database():
            return
        if self.locks is not None:
            self.locks.renew()
        try:
            self.tokens.replay()  # refreshed OAuth pairs kept in a file while the database was away
            self.spool.flush(self.engine, self.config.storage_mode)
        except Exception:
            logger.exception("writing the spool failed unexpectedly; it is tried again next time")
        if self.metrics is not None:
            self.metrics.set_spool_rows(self.spool.rows)

    # -- one portal ----------------------------------------------------------------------

    def poll(self, client: PortalClient) -> PortalOutcome | None:
        """The portal's job: refresh its directory when due, then one cycle; None when none ran."""
        name = client.portal.name
        if self.stopping.is_set() or not self._claim(client):
            return None
        with self._busy_lock:
            self._busy.add(name)
        try:
            if self._database_ready and not self.stopping.is_set():
                self.directory.refresh_if_due(client)
            outcome = poll_portal(
                client,
                self.engine,
                mode=self.config.storage_mode,
                spool=self.spool,
                stop=self.stopping,
                replica=self.replica,
                metrics=self.metrics,
                database_ready=self._database_ready,
            )
        except PollerError as exc:
            logger.error("portal %s: cycle failed: %s", name, exc)
            return None
        except Exception:
            logger.exception("portal %s: cycle failed with an unexpected error; the daemon goes on", name)
            return None
        finally:
            with self._busy_lock:
                self._busy.discard(name)
            self._rebalance(name)
        self.cycles[name] += 1
        self.last_outcome[name] = outcome
        logger.info("portal %s: cycle %d: %s", name, self.cycles[name], outcome.summary())
        if self.metrics is not None:
            self.metrics.set_spool_rows(self.spool.rows)
        return outcome

    def _claim(self, client: PortalClient) -> bool:
        """Whether this replica polls the portal now (portal_locks.py decides: its lock, or its
        lease); a portal freshly taken from another replica is prepared by `takeover.py`."""
        portal = client.portal.name
        locks = self.locks
        if locks is None:  # not started: a test calling poll() directly
            return True
        fresh = portal not in locks.held
        if not locks.claim(portal):
            self._set_owned(portal, False)
            return False
        self._set_owned(portal, True)
        return not (fresh and locks.coordinated) or take_over(self.config, self.engine, self.tokens, client)

    def _rebalance(self, portal: str) -> None:
        """After a cycle: give the portal up when this replica holds more than its share."""
        if self.locks is not None and self.locks.rebalance(portal):
            self._set_owned(portal, False)

    def _set_owned(self, portal: str, owned: bool) -> None:
        if self.metrics is not None and self.locks is not None:
            self.metrics.set_owned(portal, self.locks.name, owned)

    def reconcile(self, client: PortalClient) -> None:
        """Re-read the last days of records (backfill.reconcile logs its own summary); when it
        ran is kept in portal_tasks, where `poll` reads whether it is due."""
        from poller.poll.housekeeping import reconcile_portal

        name = client.portal.name
        if self.stopping.is_set() or not self._database_ready:
            return
        if self.locks is not None and name not in self.locks.held:
            return  # another replica polls this portal, and reconciles it
        try:
            result = reconcile_portal(self.config, self.engine, client, self.stopping)
        except PollerError as exc:
            logger.error("portal %s: reconcile failed: %s", name, exc)
            return
        except storage.DatabaseFailure as exc:
            logger.error("portal %s: reconcile not stored: %s", name, storage.describe_db_error(exc))
            return
        if result.error is None and not result.stopped and self.metrics is not None:
            self.metrics.reconcile_finished(name, result.records)

    # -- helpers -------------------------------------------------------------------------

    def _start_metrics_server(self) -> MetricsServer | None:
        settings = self.config.metrics
        if self.metrics is None or settings.port is None:
            return None
        intervals = [self.config.schedule_of(c.portal).interval_seconds or 1200 for c in self.clients]
        longest = max(intervals, default=60)  # a cron schedule counts as every 20 minutes
        max_age = settings.healthz_max_age_seconds or 3 * longest
        try:
            server = MetricsServer(self.metrics, settings.host, settings.port, max_age).start()
        except OSError as exc:
            raise ConfigError(
                f"config key metrics.port: cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from None
        logger.info("metrics on http://%s:%d/metrics, health on /healthz", settings.host, server.port)
        return server
