"""Where the parts of one portal's cycle go, and the state of that cycle while they arrive.

Where a part's rows go has three names (`Route`): with no spool, to the database, and a
database error propagates (tests, benches); with an empty spool, to the database, else to
the spool; while the spool holds earlier rows, behind them in the spool, keeping the order
that storage mode "changes" relies on.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient, StatusBatch
from poller.daemon.metrics import Metrics
from poller.errors import BitrixError, Stopped
from poller.poll.audience import user_ids_to_ask
from poller.poll.outcomes import PortalOutcome
from poller.poll.undecodable import flag_rows
from poller.redaction import redact
from poller.spool.queue import Spool, SpoolEntry
from poller.status import parse_status

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


@dataclass
class PortalCycle:
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
