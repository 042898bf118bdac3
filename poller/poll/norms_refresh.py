"""Refresh what a portal's working time is judged by: norms, schedules, calendar, absences.

Due with the directory: every `[directory] refresh_hours` (0: never), kept in portal_tasks
(task "norms"), so `run`, replicas and `poll` under a timer agree; a failed refresh is tried
again after task_due.RETRY_SECONDS. One refresh reads (poller.poll.norms_steps):
1. timeman.settings of every polled user (poller.poll.audience), 50 per batch: ceil(N/50);
2. the schedules the config names (a request each) and stores its user/department map;
3. calendar.settings.get (one request) for this year and next, with the config's extra
   holidays and the `holidays` package as a fallback (poller.poll.calendar_years); when the
   read fails otherwise than for the scope, the stored years stay as they are (a year with none
   gets the config's extra holidays alone) and the absences are still read;
4. calendar.accessibility.get for [today - past_days, today + future_days], 50 users a request.
A part that fails is logged and recorded (the task's last_error) and the others still run;
nothing is raised to the cycle. Without the `calendar` scope parts 3 (but the config's and
the package's holidays) and 4 are skipped, said once per portal and recorded as task
"calendar"'s error.

Not delaying a cycle: the daemon runs the refresh on a thread of its own (`start_if_due`).
The portal's cycles and the refresh's requests take turns (`holding_off`, around each cycle):
the refresh sends nothing while a cycle runs, a cycle waits for the one refresh request in
flight (at most CYCLE_WAIT_SECONDS), and the refresh sends only while the portal's bucket
holds at most YIELD_SLOTS requests, so a cycle finds the bucket nearly as empty as without it
(at most (YIELD_SLOTS + 1) / rate seconds of extra wait: 1.5 s on a standard plan). A cycle's
request count is its own. `poll` runs the refresh after the portal's cycle (`refresh_if_due`),
at the full rate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.config import Config
from poller.errors import BitrixError, Stopped
from poller.poll import norms_steps as steps
from poller.poll.audience import user_ids_to_ask
from poller.poll.norms_turns import Turns, stopping_pace
from poller.poll.task_due import Looks, due_at
from poller.redaction import redact
from poller.storage.tasks import get_task, save_task_done, save_task_failed

logger = logging.getLogger(__name__)

TASK = "norms"
CALENDAR_TASK = "calendar"
NO_SCOPE = (
    "no `calendar` scope: the portal's calendar and the absences are not read (add the scope "
    "to the webhook or app); the config's holidays and the norms are"
)


@dataclass
class NormsRefreshed:
    """One refresh of one portal: what it read, what failed (one line per part), how long."""

    portal: str
    done: steps.PartsDone = field(default_factory=steps.PartsDone)
    errors: list[str] = field(default_factory=list)
    calendar_scope: bool = True
    requests: int = 0
    seconds: float = 0.0
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and not self.stopped


def norms_due_at(engine: Engine, portal: str, now: datetime, refresh_hours: float) -> datetime | None:
    """When the portal's refresh is next due (`now` or earlier: due); None when refreshes are off."""
    if refresh_hours <= 0:
        return None
    return due_at(get_task(engine, portal, TASK), now, refresh_hours)


class NormsRefresher:
    """Refresh each portal's norms when due: inline (`refresh_if_due`) or on a thread (`start_if_due`).

    Between two looks at the database the next due time is kept in memory (on the client's
    monotonic clock), so a cycle every second costs no query.
    """

    def __init__(self, config: Config, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.refresh_hours = config.directory.refresh_hours
        self._looks = Looks(self.refresh_hours)
        self._running: dict[str, threading.Thread] = {}
        self._said_no_scope: set[str] = set()
        self._turns: dict[str, Turns] = {}
        self._lock = threading.Lock()

    def refresh_if_due(self, client: PortalClient) -> NormsRefreshed | None:
        """Refresh now, at the full rate, when due; None when not due."""
        if not self._due(client):
            return None
        return self.refresh(client, stopping_pace(client))

    def start_if_due(self, client: PortalClient) -> threading.Thread | None:
        """Start a refresh on a thread of its own when due and none runs for the portal."""
        name = client.portal.name
        with self._lock:
            running = self._running.get(name)
            if running is not None and running.is_alive():
                return None
        if not self._due(client):
            return None
        pace = self._turns_of(name).pace(client)
        thread = threading.Thread(target=self.refresh, args=(client, pace), name=f"norms {name}", daemon=True)
        with self._lock:
            self._running[name] = thread
        thread.start()
        return thread

    @contextmanager
    def holding_off(self, portal: str) -> Iterator[None]:
        """Around a cycle of `portal`: the refresh on its thread sends nothing meanwhile."""
        turns = self._turns_of(portal)
        turns.cycle_starts()
        try:
            yield
        finally:
            turns.cycle_ends()

    def _turns_of(self, portal: str) -> Turns:
        with self._lock:
            return self._turns.setdefault(portal, Turns())

    def join(self, timeout: float | None = None) -> None:
        """Wait for the refreshes running on their threads (tests, and a stop)."""
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)

    def _due(self, client: PortalClient) -> bool:
        name, mono, now = client.portal.name, client.clock.monotonic(), client.clock.now()
        try:
            return self._looks.is_due(
                name, mono, now, lambda: norms_due_at(self.engine, name, now, self.refresh_hours)
            )
        except storage.DatabaseFailure as exc:
            logger.debug(
                "portal %s: norms refresh state unreadable: %s", name, storage.describe_db_error(exc)
            )
            return False

    def refresh(self, client: PortalClient, pace: steps.Pace) -> NormsRefreshed:
        """One refresh of the portal (see the module); never raises for the portal or the database."""
        name = client.portal.name
        result = NormsRefreshed(name)
        started, sent = client.clock.monotonic(), client.requests_sent
        try:
            self._parts(client, pace, result)
        except Stopped:
            result.stopped = True
        finally:
            self._turns_of(name).refresh_ends()
        result.requests = client.requests_sent - sent
        result.seconds = client.clock.monotonic() - started
        if result.stopped:
            logger.info("portal %s: norms refresh stopped; what it stored is kept", name)
            return result
        self._record(client, result)
        return result

    def _parts(self, client: PortalClient, pace: steps.Pace, result: NormsRefreshed) -> None:
        done = result.done
        try:
            user_ids = user_ids_to_ask(self.engine, client)
        except BitrixError as exc:
            self._failed(client, result, "users not listed", exc)
            user_ids = []
        if user_ids:
            self._part(
                client,
                result,
                "norms",
                lambda: steps.save_norms_of(self.engine, client, user_ids, pace, done),
            )
        self._part(
            client, result, "schedules", lambda: steps.save_schedules_of(self.engine, client, pace, done)
        )
        today = client.clock.now().date()
        self._calendar(client, pace, result, (today.year, today.year + 1))
        if not result.calendar_scope or not user_ids:
            return
        window = self.config.absences
        first, last = today - timedelta(days=window.past_days), today + timedelta(days=window.future_days)
        self._part(
            client,
            result,
            "absences",
            lambda: steps.save_absences_of(self.engine, client, user_ids, first, last, pace, done),
        )

    def _calendar(
        self, client: PortalClient, pace: steps.Pace, result: NormsRefreshed, years: tuple[int, int]
    ) -> None:
        """The calendar part; a failed read (not for the scope) leaves the stored years as they are."""
        done = result.done
        try:
            read = steps.read_calendar(client, pace)
        except BitrixError as exc:
            if not steps.is_scope_error(exc):
                self._failed(client, result, "calendar", exc)
                self._part(
                    client,
                    result,
                    "calendar",
                    lambda: steps.save_config_holidays(self.engine, client, years, done),
                )
                return
            result.calendar_scope, read = False, None
        self._part(
            client,
            result,
            "calendar",
            lambda: steps.save_calendar_years(self.engine, client, years, read, done),
        )

    def _part(self, client: PortalClient, result: NormsRefreshed, what: str, run: Callable[[], None]) -> None:
        try:
            run()
        except BitrixError as exc:
            self._failed(client, result, what, exc)
        except storage.DatabaseFailure as exc:
            line = f"{what} not stored: {storage.describe_db_error(exc)}"
            logger.warning("portal %s: %s", client.portal.name, line)
            result.errors.append(line)

    def _failed(self, client: PortalClient, result: NormsRefreshed, what: str, exc: BitrixError) -> None:
        line = f"{what} not read: {redact(exc.message, client.secrets())}"
        logger.warning("portal %s: %s", client.portal.name, line)
        result.errors.append(line)

    def _record(self, client: PortalClient, result: NormsRefreshed) -> None:
        """The outcome in portal_tasks: task "norms" (due time, errors), task "calendar" (the scope)."""
        name, at = client.portal.name, client.clock.now()
        if not result.calendar_scope:
            with self._lock:
                first = name not in self._said_no_scope
                self._said_no_scope.add(name)
            logger.log(logging.WARNING if first else logging.DEBUG, "portal %s: %s", name, NO_SCOPE)
        try:
            if result.calendar_scope:
                save_task_done(self.engine, name, CALENDAR_TASK, at)
            else:
                save_task_failed(self.engine, name, CALENDAR_TASK, at, NO_SCOPE)
            if result.errors:
                save_task_failed(self.engine, name, TASK, at, "; ".join(result.errors))
            else:
                save_task_done(self.engine, name, TASK, at)
        except storage.DatabaseFailure as exc:
            logger.warning("portal %s: norms refresh not recorded: %s", name, storage.describe_db_error(exc))
        log = logger.info if result.ok else logger.warning
        log("%s", _log_line(result))


def _log_line(result: NormsRefreshed) -> str:
    """What a refresh did, in one log line (never a command's output)."""
    d = result.done
    line = (
        f"portal {result.portal}: norms refreshed: {d.norms_read}/{d.users} users "
        f"({d.norms_changed} changed), {d.schedules} schedules, calendar "
        f"{', '.join(f'{year} ({source})' for year, source in d.calendar_years) or 'none'}, "
        f"{d.absence_days} absence days of {d.absence_users} users, {result.requests} requests, "
        f"{result.seconds:.1f} s"
    )
    if d.failed_users:
        line += f"; {len(d.failed_users)} users failed"
    if not result.calendar_scope:
        line += "; no calendar scope"
    return line + "".join(f"; {error}" for error in result.errors)
