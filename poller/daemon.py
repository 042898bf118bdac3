"""The poll cycle and the scheduler that repeats it.

`poll_once` is a plain function: the daemon, the `poll` command, the demo and the tests all
call it. A failing user, portal or database is recorded and logged; it never raises.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import FrameType

import requests
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from poller import clock as clocks
from poller import storage
from poller.bitrix import PortalClient, fetch_active_user_ids, fetch_statuses
from poller.config import Config, PortalConfig
from poller.errors import BitrixError, ConfigError, PollerError
from poller.metrics import Metrics, MetricsServer
from poller.redaction import redact
from poller.spool import Spool, SpoolEntry
from poller.status import parse_status

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PortalOutcome:
    """What one portal's part of a cycle did."""

    portal: str
    users_ok: int
    users_failed: int
    portal_failed: bool
    requests: int
    error_codes: tuple[tuple[str, int], ...] = ()
    kept: int = 0  # snapshots fetched but waiting in the spool for the database


@dataclass(frozen=True)
class PollReport:
    """What one cycle did, over all portals."""

    run_id: int | None
    started_at: datetime
    finished_at: datetime
    portals: tuple[PortalOutcome, ...]

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
    def ok(self) -> bool:
        return self.run_id is not None and not any(
            p.users_failed or p.portal_failed or p.kept for p in self.portals
        )

    def summary(self) -> str:
        seconds = (self.finished_at - self.started_at).total_seconds()
        failed_portals = sum(p.portal_failed for p in self.portals)
        text = (
            f"{self.users_ok} users stored, {self.users_failed} failed, "
            f"{self.requests} request{'' if self.requests == 1 else 's'}, {seconds:.2f} s"
        )
        if failed_portals:
            text += f", {failed_portals} of {len(self.portals)} portals failed"
        if self.kept:
            text += f", {self.kept} kept for the database"
        return text


def make_clients(
    config: Config,
    engine: Engine,
    session: requests.Session | None = None,
    *,
    clock: clocks.Clock = clocks.SYSTEM_CLOCK,
    metrics: Metrics | None = None,
) -> list[PortalClient]:
    """One client per portal, starting from stored OAuth tokens when there are any.

    `clock` is the clients' waits and view of time (tests hand in a ManualClock shared
    with the emulator, so backoffs and operating-limit resets pass without sleeping).
    """
    clients = []
    for portal in config.portals:
        client = PortalClient(
            portal,
            session or requests.Session(),  # one connection pool per portal thread
            config.http,
            on_tokens_refreshed=_token_saver(engine, portal),
            clock=clock,
            observe_latency=metrics.request_observer(portal.name) if metrics else None,
        )
        if not portal.uses_webhook:
            try:
                stored = storage.get_tokens(engine, portal.name)
            except SQLAlchemyError as exc:
                logger.warning(
                    "portal %s: stored tokens unreadable (%s); using the config's",
                    portal.name,
                    storage.describe_db_error(exc),
                )
                stored = None
            if stored is not None:
                client.use_tokens(*stored)
        clients.append(client)
    return clients


def _token_saver(engine: Engine, portal: PortalConfig) -> Callable[[str, str], None]:
    def save(access_token: str, refresh_token: str) -> None:
        storage.save_tokens(engine, portal.name, access_token, refresh_token, utc_now())

    return save


def poll_once(
    clients: Sequence[PortalClient],
    engine: Engine,
    clock: Clock = utc_now,
    mode: storage.StorageMode = "all",
    spool: Spool | None = None,
) -> PollReport:
    """Poll every portal once, concurrently, and store what came back.

    1. Write what the spool kept from earlier cycles, if the database takes it now.
    2. Insert the poll_runs row (if the database is down, the cycle goes on without it).
    3. Each portal: list its users, fetch their statuses, write snapshots and error rows in
       one transaction, or keep them in the spool when the database refuses them.
    4. Close the poll_runs row with the counts.
    """
    spool = spool if spool is not None else Spool()
    started = clock()
    spool.flush(engine, mode)
    run_id: int | None = None
    try:
        run_id = storage.save_run_started(engine, started)
    except SQLAlchemyError as exc:
        spool.note_outage(storage.describe_db_error(exc))
    with ThreadPoolExecutor(max_workers=max(1, len(clients)), thread_name_prefix="portal") as pool:
        outcomes = tuple(pool.map(lambda c: poll_portal(c, engine, run_id, clock, mode, spool), clients))
    spool.flush(engine, mode)
    report = PollReport(run_id, started, clock(), outcomes)
    if run_id is not None:
        try:
            storage.save_run_finished(
                engine, run_id, report.finished_at, report.users_ok, report.users_failed
            )
            spool.note_available()
        except SQLAlchemyError as exc:
            spool.note_outage(storage.describe_db_error(exc))
    return report


def poll_portal(
    client: PortalClient,
    engine: Engine,
    run_id: int | None,
    clock: Clock = utc_now,
    mode: storage.StorageMode = "all",
    spool: Spool | None = None,
) -> PortalOutcome:
    """Fetch and store one portal's users; every failure becomes a poll_errors row."""
    portal = client.portal
    requests_before = client.requests_sent
    errors: list[storage.ErrorRow] = []
    snapshots: list[storage.SnapshotRow] = []
    user_ids: Sequence[int] = ()
    portal_failed = False
    try:
        user_ids = portal.users if portal.users != "all" else fetch_active_user_ids(client)
    except BitrixError as exc:
        portal_failed = True
        errors.append(_error_row(client, None, exc, clock()))
    if user_ids:
        batch = fetch_statuses(client, list(user_ids))
        for user_id, result in batch.results.items():
            parsed = parse_status(result)
            for warning in parsed.warnings:
                logger.warning("portal %s user %s: %s", portal.name, user_id, warning)
            snapshots.append(storage.SnapshotRow(portal.name, user_id, batch.answered_at[user_id], parsed))
        for user_id, error in batch.errors.items():
            errors.append(_error_row(client, user_id, error, clock()))
        if batch.errors and not batch.results:
            portal_failed = not all(e.per_user for e in batch.errors.values())
    failed_users = len(errors) - (1 if portal_failed and not user_ids else 0)
    _log_errors(portal.name, errors)
    codes = Counter(row.code for row in errors)
    outcome = PortalOutcome(
        portal.name,
        len(snapshots),
        failed_users,
        portal_failed,
        client.requests_sent - requests_before,
        tuple(sorted(codes.items())),
    )
    entry = SpoolEntry(run_id, tuple(snapshots), tuple(errors))
    if spool:  # earlier cycles still wait for the database: keep the order
        spool.add(entry, "earlier cycles are still waiting")
        return replace(outcome, users_ok=0, kept=len(snapshots))
    try:
        saved = storage.save_portal_cycle(engine, run_id, snapshots, errors, mode)
    except SQLAlchemyError as exc:
        if spool is None:
            raise
        spool.add(entry, storage.describe_db_error(exc))
        return replace(outcome, users_ok=0, kept=len(snapshots))
    if saved.refused:  # values the database refused: those users failed, the others are stored
        codes[storage.BAD_VALUE] += len(saved.refused)
        return replace(
            outcome,
            users_ok=outcome.users_ok - len(saved.refused),
            users_failed=outcome.users_failed + len(saved.refused),
            error_codes=tuple(sorted(codes.items())),
        )
    return outcome


def _error_row(
    client: PortalClient, user_id: int | None, exc: BitrixError, now: datetime
) -> storage.ErrorRow:
    return storage.ErrorRow(
        portal=client.portal.name,
        user_id=user_id,
        occurred_at=now,
        code=exc.code or type(exc).__name__,
        http_status=exc.http_status,
        message=redact(exc.message, client.secrets()),
    )


def _log_errors(portal: str, errors: Sequence[storage.ErrorRow]) -> None:
    """Log each distinct failure once, with how many users it hit."""
    by_message: dict[str, list[int | None]] = {}
    for row in errors:
        by_message.setdefault(row.message, []).append(row.user_id)
    for message, users in by_message.items():
        named = [str(u) for u in users if u is not None]
        if not named:
            logger.error("portal %s: %s", portal, message)
        elif len(named) <= 5:
            logger.error("portal %s user %s: %s", portal, ", ".join(named), message)
        else:
            logger.error(
                "portal %s, %d users (%s, ...): %s", portal, len(named), ", ".join(named[:5]), message
            )


class Daemon:
    """Run `poll_once` on the configured schedule until SIGTERM or SIGINT.

    A signal stops the scheduler; the cycle in progress finishes and commits first.
    """

    def __init__(
        self,
        config: Config,
        engine: Engine,
        clients: Sequence[PortalClient],
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.clients = clients
        self.metrics = metrics
        self.spool = Spool(config.spool_path, config.spool_max_rows)
        self.cycles = 0
        self._cycle_lock = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler: object | None = None

    def cycle(self) -> None:
        if self._stopping.is_set():
            return
        with self._cycle_lock:
            try:
                report = poll_once(self.clients, self.engine, mode=self.config.storage_mode, spool=self.spool)
            except PollerError as exc:
                logger.error("cycle failed: %s", exc)
                return
            except Exception:
                logger.exception("cycle failed with an unexpected error; the daemon goes on")
                return
            self.cycles += 1
            logger.info("cycle %d: %s", self.cycles, report.summary())
            if self.metrics is not None:
                self.metrics.record_cycle(report, self.spool.snapshots)

    def run(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        schedule = self.config.schedule
        jitter = schedule.jitter_seconds or None
        if schedule.cron is not None:
            trigger: CronTrigger | IntervalTrigger = CronTrigger.from_crontab(schedule.cron, timezone=UTC)
            trigger.jitter = jitter
            grace = 60
        else:
            assert schedule.interval_seconds is not None
            trigger = IntervalTrigger(seconds=schedule.interval_seconds, jitter=jitter, timezone=UTC)
            grace = max(1, schedule.interval_seconds // 2)
        scheduler = BlockingScheduler(executors={"default": JobExecutor(1)}, timezone=UTC)
        scheduler.add_job(
            self.cycle,
            trigger,
            id="poll",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
        )
        self._scheduler = scheduler
        server = self._start_metrics_server()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        logger.info(
            "daemon started: %d portals, %s",
            len(self.clients),
            f"cron {schedule.cron!r}" if schedule.cron else f"every {schedule.interval_seconds} s",
        )
        try:
            scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        with self._cycle_lock:  # wait for a cycle still running in the executor
            pass
        if server is not None:
            server.stop()
        logger.info("daemon stopped after %d cycles", self.cycles)

    def _start_metrics_server(self) -> MetricsServer | None:
        settings = self.config.metrics
        if self.metrics is None or settings.port is None:
            return None
        interval = self.config.schedule.interval_seconds
        max_age = settings.healthz_max_age_seconds or (3 * interval if interval else 3600)
        try:
            server = MetricsServer(self.metrics, settings.host, settings.port, max_age).start()
        except OSError as exc:
            raise ConfigError(
                f"config key metrics.port: cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from None
        logger.info("metrics on http://%s:%d/metrics, health on /healthz", settings.host, server.port)
        return server

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: finishing the current cycle, then exiting", signal.Signals(signum).name)
        self._stopping.set()
        scheduler = self._scheduler
        if scheduler is not None:
            threading.Thread(target=scheduler.shutdown, kwargs={"wait": False}).start()  # type: ignore[attr-defined]
