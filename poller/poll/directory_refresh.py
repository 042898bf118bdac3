"""Keep each portal's user directory fresh: its users and departments, read again every refresh_hours.

When a refresh is due is read from the database (portal_tasks, else the newest stored user),
so `run`, every replica and `poll` under a timer (a new process each time) agree
(poller.poll.task_due, shared with the norms refresh). The daemon refreshes a portal's directory
inside that portal's job, and `poll` before that portal's cycle: it shares the portal's
bucket with no cycle beside it, and a `users = "all"` cycle right after takes its ids from
it. Without the `department` scope the users are still stored (names in the views), and
that is said once per portal. A stop between two pages leaves the stored directory as it was.
Given a NormsRefresher, each look also starts the portal's norms refresh on a thread of its
own when that is due (poller.poll.norms_refresh): it does not hold the cycle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient, fetch_departments, fetch_users
from poller.errors import BitrixError, Stopped
from poller.poll.task_due import Looks, due_at
from poller.redaction import redact
from poller.storage.tasks import get_task, save_task_done, save_task_failed

if TYPE_CHECKING:
    from poller.poll.norms_refresh import NormsRefresher

logger = logging.getLogger(__name__)

TASK = "directory"


def directory_due_at(engine: Engine, portal: str, now: datetime, refresh_hours: float) -> datetime | None:
    """When the portal's directory is next due (`now` or earlier: due); None when refreshes are off."""
    if refresh_hours <= 0:
        return None
    return due_at(
        get_task(engine, portal, TASK), now, refresh_hours, storage.get_directory_age(engine, portal)
    )


class DirectoryRefresher:
    """Refresh a portal's directory when the database says it is due.

    Between two looks at the database the next due time is kept in memory (on the client's
    monotonic clock), so a cycle every second costs no query.
    """

    def __init__(self, engine: Engine, refresh_hours: float, norms: NormsRefresher | None = None) -> None:
        self.engine = engine
        self.refresh_hours = refresh_hours
        self.norms = norms
        self._looks = Looks(refresh_hours)
        self._no_department_scope: set[str] = set()
        self._lock = threading.Lock()

    def refresh_if_due(self, client: PortalClient) -> bool:
        """Read and store the portal's users and departments when due; True when it did. Then
        start the norms refresh in the background when it is due (after the directory, so
        `users = "all"` reads the norms of new hires too)."""
        refreshed = self._directory_if_due(client)
        if self.norms is not None:
            self.norms.start_if_due(client)
        return refreshed

    def _directory_if_due(self, client: PortalClient) -> bool:
        name, mono, now = client.portal.name, client.clock.monotonic(), client.clock.now()
        try:
            due = self._looks.is_due(
                name, mono, now, lambda: directory_due_at(self.engine, name, now, self.refresh_hours)
            )
        except storage.DatabaseFailure as exc:
            logger.debug("portal %s: directory age unreadable: %s", name, storage.describe_db_error(exc))
            return False
        return due and self._refresh(client, mono)

    def _refresh(self, client: PortalClient, mono: float) -> bool:
        name = client.portal.name
        try:
            users = fetch_users(client)
            departments = self._fetch_departments(client)
            at = client.clock.now()
            storage.save_users(self.engine, name, users, at)
            if departments is not None:
                storage.save_departments(self.engine, name, departments, at)
            save_task_done(self.engine, name, TASK, at)
        except Stopped:
            logger.info("portal %s: user directory refresh stopped; the stored one is kept", name)
            self._looks.again_soon(name, mono)
            return False
        except BitrixError as exc:
            message = redact(exc.message, client.secrets())
            logger.warning("portal %s: user directory not refreshed: %s", name, message)
            self._note_failure(name, message, client.clock.now())
            return False
        except storage.DatabaseFailure as exc:
            logger.warning("portal %s: user directory not stored: %s", name, storage.describe_db_error(exc))
            self._looks.again_soon(name, mono)
            return False
        self._looks.again_at(name, mono + self.refresh_hours * 3600)
        logger.info(
            "portal %s: user directory refreshed: %d users%s",
            name,
            len(users),
            f", {len(departments)} departments" if departments is not None else "",
        )
        return True

    def _note_failure(self, portal: str, message: str, at: datetime) -> None:
        try:
            save_task_failed(self.engine, portal, TASK, at, message)
        except storage.DatabaseFailure as exc:
            logger.debug(
                "portal %s: directory failure not recorded: %s", portal, storage.describe_db_error(exc)
            )

    def _fetch_departments(self, client: PortalClient) -> Sequence[dict[str, Any]] | None:
        """The departments, or None without the `department` scope (said once per portal)."""
        try:
            return fetch_departments(client)
        except BitrixError as exc:
            if "insufficient" not in exc.code.lower() or "scope" not in exc.code.lower():
                raise
            with self._lock:
                first = client.portal.name not in self._no_department_scope
                self._no_department_scope.add(client.portal.name)
            if first:
                logger.warning(
                    "portal %s: no `department` scope: department names are not read "
                    "(add the scope to the webhook or app); user names are kept",
                    client.portal.name,
                )
            return None
