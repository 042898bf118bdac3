"""Backfill and reconcile: copy the portals' own work time records into `workday_records`.

Polling sees only what happens while the poller runs; `timeman.record.list` holds what the
portal recorded. `backfill` reads a date range for each user once (the CLI command; it
resumes after Ctrl-C or a crash without reading finished users again), `reconcile` re-reads
the last days for every user (the daemon's daily job, leaving part of the portal's rate to
the live poll). Records are unique by portal and id: reading one twice never stores it twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.bitrix.records import RecordsFetched, RecordsUnavailable, fetch_records
from poller.config import Config
from poller.errors import BitrixError, ConfigError, Stopped
from poller.poll.audience import user_ids_to_ask
from poller.poll.backfill_calendar import CalendarBackfilled, backfill_calendar
from poller.poll.directory_refresh import DirectoryRefresher
from poller.redaction import redact

logger = logging.getLogger(__name__)

DAEMON_SHARE = 0.8  # of the portal's rate a reconcile may use; the rest stays for the live poll


@dataclass
class PortalBackfill:
    """How far one portal's backfill (or reconcile) got; updated as users finish.

    `users` were asked for; `skipped` had been finished by an earlier run of the same range;
    `failed` maps a user id to the error that kept its records out; `error` is the one line
    that ended the portal early (None when every user was tried).
    """

    portal: str
    date_from: date
    date_to: date
    users: int = 0
    skipped: int = 0
    done: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    records: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    stopped: bool = False
    user_ids: list[int] = field(default_factory=list, repr=False)
    calendar: CalendarBackfilled | None = None  # backfill: the calendar years and absences stored
    calendar_requests: int = 0  # ... and the requests that took (not in `requests`)

    @property
    def to_do(self) -> int:
        """Users this run set out to read."""
        return self.users - self.skipped

    @property
    def left(self) -> int:
        """Users neither read nor failed yet."""
        return self.to_do - self.done - len(self.failed)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed and not self.stopped


@dataclass
class BackfillReport:
    """Every portal's backfill; `interrupted` when Ctrl-C stopped it before the end (its text:
    poller.render.backfill)."""

    date_from: date
    date_to: date
    portals: list[PortalBackfill] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(p.ok for p in self.portals)


Progress = Callable[[PortalBackfill], None]


def backfill(
    config: Config,
    engine: Engine,
    clients: Sequence[PortalClient],
    *,
    since: date,
    until: date,
    portals: Sequence[str] = (),
    users: Sequence[int] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> BackfillReport:
    """Copy each user's records from `since` to `until` (local dates) into workday_records.

    0. The directory, when due: it gives each user's zone, in which a record's day is dated.
    1. The users: `users`, else as for a cycle (poller.poll.audience: the configured list, else
       the stored directory's active users, else `user.get`'s).
    2. Users finished by an earlier run of the same range are skipped; the records of the
       users a request finished are saved together, then each user is marked finished.
       Then the calendar years and every user's absences of the range
       (poller.poll.backfill_calendar), so the range is judged like one polled live.
    3. `progress(state)` is called as users finish. `stop` set ends the backfill after the
       request in flight; a KeyboardInterrupt (raised by `progress`, or a hard Ctrl-C) ends
       it at once. Either way what was saved stays saved and the report says `interrupted`.
    Portals run one after the other at the full rate of their bucket.
    """
    if since > until:
        raise ConfigError(f"--since {since} is after --until {until}")
    chosen = _choose(config, clients, portals)
    report = BackfillReport(since, until)
    # A record's day is dated in its user's zone, which the directory holds: read it first when
    # due (never read, or stale), so a backfill before the first poll dates days as a poll would.
    directory = DirectoryRefresher(engine, config.directory.refresh_hours)
    try:
        for client in chosen:
            state = PortalBackfill(client.portal.name, since, until)
            report.portals.append(state)
            directory.refresh_if_due(client)
            _run_portal(engine, client, state, users, resume=True, progress=progress, stop=stop)
            if not state.stopped and state.user_ids:
                state.stopped = not _calendar(engine, client, state)
            if state.stopped:
                report.interrupted = True
                break
    except KeyboardInterrupt:
        report.interrupted = True
        if report.portals:
            report.portals[-1].stopped = True
    return report


def reconcile(
    config: Config,
    engine: Engine,
    client: PortalClient,
    days: int,
    now: datetime,
    *,
    stop: threading.Event | None = None,
) -> PortalBackfill:
    """Re-read the last `days` days before today, and today so far, for every user of a portal.

    The daemon's daily job: records edited or approved after the poll saw the day, and days
    the poller was down, end up as the portal holds them. It uses at most DAEMON_SHARE of the
    portal's rate, so the live poll keeps its share of the bucket. A portal error is in the
    result's `error`; database errors are raised. `days` 0 does nothing.
    """
    del config  # the portal's settings travel with its client
    until = now.date()
    state = PortalBackfill(client.portal.name, until - timedelta(days=max(days, 0)), until)
    if days <= 0:
        return state
    _run_portal(engine, client, state, None, resume=False, share=DAEMON_SHARE, stop=stop)
    logger.info(
        "reconcile %s: %d users, %d records (%d new, %d updated), %d requests, %.1f s; %d users failed%s%s",
        state.portal,
        state.users,
        state.records,
        state.inserted,
        state.updated,
        state.requests,
        state.seconds,
        len(state.failed),
        f"; stopped with {state.left} users left" if state.stopped else "",
        f"; {state.error}" if state.error is not None else "",
    )
    return state


def _calendar(engine: Engine, client: PortalClient, state: PortalBackfill) -> bool:
    """The range's calendar years and absences (poller.poll.backfill_calendar); False on a stop."""
    sent = client.requests_sent
    try:
        found = backfill_calendar(engine, client, state.user_ids, state.date_from, state.date_to)
    except Stopped:
        return False
    state.calendar, state.calendar_requests = found, client.requests_sent - sent
    return True


def _choose(config: Config, clients: Sequence[PortalClient], names: Sequence[str]) -> list[PortalClient]:
    """The clients of the portals named (all when none is), in the config's order."""
    known = {client.portal.name: client for client in clients}
    unknown = [name for name in names if name not in known]
    if unknown:
        configured = ", ".join(p.name for p in config.portals) or "none"
        raise ConfigError(f"--portal {unknown[0]}: no such portal in the config (configured: {configured})")
    return [client for client in clients if not names or client.portal.name in names]


def _run_portal(
    engine: Engine,
    client: PortalClient,
    state: PortalBackfill,
    users: Sequence[int] | None,
    *,
    resume: bool,
    share: float = 1.0,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Read one portal's users into `state`, saving as they finish."""
    name = client.portal.name
    started, sent_before = client.clock.monotonic(), client.requests_sent

    def finish(show: bool = True) -> None:
        state.requests = client.requests_sent - sent_before
        state.seconds = client.clock.monotonic() - started
        if show and progress is not None:
            progress(state)

    try:
        user_ids = user_ids_to_ask(engine, client, users)
    except Stopped:
        state.stopped = True
        finish()
        return
    except BitrixError as exc:
        state.error = f"portal {name}: users could not be listed: {redact(exc.message, client.secrets())}"
        finish()
        return
    state.users, state.user_ids = len(user_ids), list(user_ids)
    if resume:
        finished = storage.get_backfill_done(engine, name, state.date_from, state.date_to)
        user_ids = [u for u in user_ids if u not in finished]
        state.skipped = state.users - len(user_ids)

    def users_done(finished: dict[int, list[dict[str, Any]]]) -> None:
        """Save the records of the users a request finished, then mark each user finished."""
        now = client.clock.now()
        items = [item for user_items in finished.values() for item in user_items]
        saved = storage.save_records(engine, name, items, now)
        state.records += len(items)
        state.inserted += saved.inserted
        state.updated += saved.updated
        state.unchanged += saved.unchanged
        for user_id in finished:
            if resume:
                storage.save_backfill_done(engine, name, user_id, state.date_from, state.date_to, now)
            state.done += 1
            finish()

    if progress is not None:
        progress(state)
    try:
        fetched = fetch_records(
            client,
            user_ids,
            state.date_from,
            state.date_to,
            on_users_done=users_done,
            rate_share=share,
            stop=stop,
        )
    except KeyboardInterrupt:
        state.stopped = True
        finish(show=False)
        raise
    _note_outcome(client, state, fetched)
    finish()


def _note_outcome(client: PortalClient, state: PortalBackfill, fetched: RecordsFetched) -> None:
    secrets = client.secrets()
    state.stopped = fetched.stopped
    if fetched.portal_error is not None:
        error = fetched.portal_error
        message = redact(error.message, secrets)
        if not isinstance(error, RecordsUnavailable) and not message.startswith("portal "):
            message = f"portal {client.portal.name}: {message}"
        state.error = message
        logger.error("%s", message)
        return
    state.failed.update((u, redact(e.message, secrets)) for u, e in fetched.failed.items())
