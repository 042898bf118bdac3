"""One portal's poll cycle, and every portal once for the `poll` command.

`poll_portal` lists the portal's users, fetches their statuses ten batches at a time and
stores each part as it arrives, so memory does not grow with the portal and a crash loses
at most the part in flight. Its poll_runs row is opened first and closed last ('finished',
or 'interrupted' when a stop cut the cycle). A failing user, portal or database is recorded
and logged; with a spool, a database error never reaches the caller.

Where a part's rows go has three names (`Route`): with no spool, to the database, and a
database error propagates (tests, benches); with an empty spool, to the database, else to
the spool; while the spool holds earlier rows, behind them in the spool, keeping the order
that storage mode "changes" relies on.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from poller import clock as clocks
from poller import storage
from poller.bitrix import PortalClient, StatusBatch, fetch_statuses
from poller.clients import make_clients as make_clients  # callers import it from here
from poller.daemon.metrics import Metrics
from poller.errors import BitrixError, Stopped
from poller.poll.audience import user_ids_to_ask
from poller.poll.undecodable import flag_rows
from poller.redaction import redact
from poller.spool.queue import Spool, SpoolEntry
from poller.status import parse_status
from poller.storage.runs import RunOutcome

if TYPE_CHECKING:
    from poller.poll.housekeeping import PortalChores

logger = logging.getLogger(__name__)

Now = Callable[[], datetime]


class Route(enum.Enum):
    """Where one part of a cycle is written."""

    DATABASE_OR_RAISE = "database; a database error propagates"  # no spool given
    DATABASE_OR_SPOOL = "database, else the spool"  # the spool is empty
    BEHIND_SPOOL = "the spool, behind the rows waiting there"  # keeps the order


def route_for(spool: Spool | None, database_ready: bool = True) -> Route:
    """The route of the next part: see `Route`. A database not at its schema yet counts as busy."""
    if spool is None:
        return Route.DATABASE_OR_RAISE
    if spool or not database_ready:
        return Route.BEHIND_SPOOL
    return Route.DATABASE_OR_SPOOL


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

    def summary(self) -> str:
        return _summary(self, self.seconds, "the portal failed" if self.portal_failed else "")


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

    def summary(self, seconds: float | None = None) -> str:
        """One line; `seconds` replaces the report's own span when its instants are simulated (demo)."""
        if seconds is None:
            seconds = (self.finished_at - self.started_at).total_seconds()
        failed = sum(p.portal_failed for p in self.portals)
        return _summary(self, seconds, f"{failed} of {len(self.portals)} portals failed" if failed else "")


def _summary(counts: PortalOutcome | PollReport, seconds: float, failure: str) -> str:
    """The line both summaries share; `failure` names the failed portals ('' when none)."""
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


def poll_once(
    clients: Sequence[PortalClient],
    engine: Engine,
    clock: Now | None = None,
    mode: storage.StorageMode = "all",
    spool: Spool | None = None,
    *,
    stop: threading.Event | None = None,
    replica: str | None = None,
    metrics: Metrics | None = None,
    chores: PortalChores | None = None,
) -> PollReport:
    """Poll every portal once, each in its own thread; return when all are done or failed.

    1. Write what the spool kept from earlier cycles, if the database takes it now.
    2. Each portal: its `chores.before` (the directory when due), `poll_portal` (its own
       poll_runs row, parts stored as they arrive), its `chores.after` (the reconcile when due).
    3. Write what the spool kept during this cycle, if the database is back.
    `clock` None: each client's own clock. `stop` set cuts every portal's cycle after its
    batch in flight. An error a portal raised (with no spool: a database error) is raised
    once every portal is done.
    """
    now = clock or (clients[0].clock.now if clients else clocks.SYSTEM_CLOCK.now)
    started = now()
    if spool is not None:
        spool.flush(engine, mode)
    cycle = partial(
        poll_portal,
        engine=engine,
        clock=clock,
        mode=mode,
        spool=spool,
        stop=stop,
        replica=replica,
        metrics=metrics,
    )
    job = cycle if chores is None else partial(chores.around, cycle=cycle)
    with ThreadPoolExecutor(max_workers=max(1, len(clients)), thread_name_prefix="portal") as pool:
        futures = [pool.submit(job, client) for client in clients]
    outcomes = tuple(future.result() for future in futures)
    if spool is not None:
        spool.flush(engine, mode)
    return PollReport(started, now(), outcomes, stopped=stop is not None and stop.is_set())


def poll_portal(
    client: PortalClient,
    engine: Engine,
    clock: Now | None = None,
    mode: storage.StorageMode = "all",
    spool: Spool | None = None,
    *,
    stop: threading.Event | None = None,
    replica: str | None = None,
    metrics: Metrics | None = None,
    database_ready: bool = True,
) -> PortalOutcome:
    """Poll one portal: open its run, fetch and store its users part by part, close the run.

    `database_ready` False (the schema is not upgraded yet): no run row, every part goes to
    the spool. A cycle that begins while the spool holds rows (the database is away, or the
    daemon's database job is writing them back) has no run row and reads no directory, and
    once its run row could not be written the rest goes to the spool: a cycle waits for the
    database at most once. `clock` None: the client's clock.
    """
    now = clock or client.clock.now
    cycle = _Cycle(client, engine, now, mode, spool, metrics, database_ready or spool is None)
    cycle.spool_waiting = bool(spool)
    began = time.monotonic()
    requests_before, limited_before = client.requests_sent, client.rate_limited
    started_at = now()
    cycle.open_run(started_at, replica)
    user_ids = cycle.list_users()
    not_polled: list[int] = []
    if user_ids:
        batch = fetch_statuses(client, user_ids, cycle.store, stop=stop)
        not_polled = batch.not_polled
    cycle.flush_portal_row()
    # Cut: users were left unasked, or the stop came while the last batches were in flight.
    interrupted = bool(not_polled) or (stop is not None and stop.is_set())
    outcome = PortalOutcome(
        portal=client.portal.name,
        users_ok=cycle.stored,
        users_failed=cycle.failed,
        portal_failed=cycle.portal_failed,
        requests=client.requests_sent - requests_before,
        error_codes=tuple(sorted(cycle.codes.items())),
        kept=cycle.kept,
        not_polled=len(not_polled),
        interrupted=interrupted,
        run_id=cycle.run_id,
        seconds=time.monotonic() - began,
        started_at=started_at,
        finished_at=now(),
    )
    cycle.close_run(outcome)
    if metrics is not None:
        metrics.cycle_finished(
            outcome.portal, outcome.seconds, succeeded=cycle.succeeded, outcome=outcome.run_outcome
        )
        for _ in range(client.rate_limited - limited_before):
            metrics.count_query_limit_exceeded(outcome.portal)
    return outcome


@dataclass
class _Cycle:
    """The state of one portal's cycle while its parts arrive."""

    client: PortalClient
    engine: Engine
    now: Now
    mode: storage.StorageMode
    spool: Spool | None
    metrics: Metrics | None
    database_ready: bool = True
    spool_waiting: bool = False  # the spool held rows when the cycle began: the database is away
    run_id: int | None = None
    stored: int = 0
    kept: int = 0
    failed: int = 0
    reached: bool = False  # some user answered
    stopped_early: bool = False  # the users could not be listed, or a portal-wide error came
    portal_errors: bool = False  # an error that was not about one user
    codes: Counter[str] = field(default_factory=Counter)
    portal_rows: list[storage.ErrorRow] = field(default_factory=list)

    @property
    def portal(self) -> str:
        return self.client.portal.name

    @property
    def portal_failed(self) -> bool:
        """The portal failed as a whole: ended early, or no user answered for a portal reason."""
        return self.stopped_early or (self.portal_errors and not self.reached)

    @property
    def succeeded(self) -> bool:
        """The cycle reached the portal and stored (or kept) its users."""
        return self.reached and not self.portal_failed

    def open_run(self, started_at: datetime, replica: str | None) -> None:
        if not self.database_ready or self.spool_waiting:
            return
        try:
            self.run_id = storage.save_run_started(
                self.engine, started_at, portal=self.portal, replica=replica
            )
        except storage.DatabaseFailure as exc:
            if self.spool is None:
                raise
            self.spool.note_outage(storage.describe_db_error(exc))
            self.database_ready = False  # the rest of the cycle goes to the spool at once

    def close_run(self, outcome: PortalOutcome) -> None:
        if self.run_id is None:
            return
        try:
            storage.save_run_finished(
                self.engine,
                self.run_id,
                outcome.finished_at or self.now(),
                outcome.users_ok,
                outcome.users_failed,
                outcome=outcome.run_outcome,
            )
        except storage.DatabaseFailure as exc:
            if self.spool is None:
                raise
            self.spool.note_outage(storage.describe_db_error(exc))

    def list_users(self) -> list[int]:
        """The users to poll (poller.poll.audience); [] when a stop or a failure cut the listing."""
        try:
            return user_ids_to_ask(
                self.engine, self.client, directory=self.database_ready and not self.spool_waiting
            )
        except Stopped:
            return []  # the caller sees the stop and closes the run as interrupted
        except BitrixError as exc:
            self.stopped_early = True
            self.portal_rows.append(self._error_row(None, exc))
            return []

    def store(self, part: StatusBatch) -> None:
        """Parse and write one part of the fetch (the `on_chunk` of fetch_statuses)."""
        snapshots: list[storage.SnapshotRow] = []
        errors: list[storage.ErrorRow] = []
        for user_id, result in part.results.items():
            parsed = parse_status(result)
            for warning in parsed.warnings:
                logger.warning("portal %s user %s: %s", self.portal, user_id, warning)
            snapshots.append(storage.SnapshotRow(self.portal, user_id, part.answered_at[user_id], parsed))
        portal_error = part.portal_error
        silent = 0  # users the portal-wide error hit: counted, one row for all of them
        for user_id, error in part.errors.items():
            if portal_error is not None and (error is portal_error or _same_failure(error, portal_error)):
                silent += 1
            else:
                errors.append(self._error_row(user_id, error))
        if portal_error is not None:
            errors.append(self._error_row(None, portal_error))
            self.stopped_early = True
        self.reached = self.reached or bool(part.results)
        self.portal_errors = self.portal_errors or not all(e.per_user for e in part.errors.values())
        failed = len([e for e in errors if e.user_id is not None]) + silent
        flags = flag_rows(self.portal, part.results, part.answered_at)  # stored all the same
        self._write(snapshots, errors + flags, failed)

    def flush_portal_row(self) -> None:
        """Write the error row of a portal whose users could not even be listed."""
        if self.portal_rows:
            rows, self.portal_rows = self.portal_rows, []
            self._write([], rows, 0)

    def _write(
        self, snapshots: list[storage.SnapshotRow], errors: list[storage.ErrorRow], failed: int
    ) -> None:
        _log_errors(self.portal, errors)
        codes = Counter(row.code for row in errors)
        stored = kept = 0
        route = route_for(self.spool, self.database_ready)
        entry = SpoolEntry(self.run_id, tuple(snapshots), tuple(errors))
        if route is Route.BEHIND_SPOOL:
            assert self.spool is not None
            reason = "earlier rows are still waiting" if self.database_ready else "the database is not ready"
            self.spool.add(entry, reason)
            kept = len(snapshots)
        else:
            try:
                saved = storage.save_portal_cycle(self.engine, self.run_id, snapshots, errors, self.mode)
            except storage.DatabaseFailure as exc:
                if route is Route.DATABASE_OR_RAISE or self.spool is None:
                    raise
                self.spool.add(entry, storage.describe_db_error(exc))
                kept = len(snapshots)
            else:
                refused = len(saved.refused)  # values the database refused: those users failed
                stored = len(snapshots) - refused
                failed += refused
                codes[storage.BAD_VALUE] += refused
        self.stored += stored
        self.kept += kept
        self.failed += failed
        self.codes.update(+codes)
        if self.metrics is not None:
            self.metrics.count_users(self.portal, stored=stored + kept, failed=failed)
            for code, count in codes.items():
                self.metrics.count_error(self.portal, code, count)

    def _error_row(self, user_id: int | None, exc: BitrixError) -> storage.ErrorRow:
        return storage.ErrorRow(
            portal=self.portal,
            user_id=user_id,
            occurred_at=self.now(),
            code=exc.code or type(exc).__name__,
            http_status=exc.http_status,
            message=redact(exc.message, self.client.secrets()),
        )


def _same_failure(error: BitrixError, portal_error: BitrixError) -> bool:
    """A user's error is the portal-wide one repeated (each sub-call of a batch says it again)."""
    return not error.per_user and error.code == portal_error.code and type(error) is type(portal_error)


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
