"""Keep each portal's user directory fresh: its users and departments, read again every refresh_hours.

The daemon refreshes a portal's directory inside that portal's job, before its cycle: it
shares the portal's bucket with no cycle running beside it, and a `users = "all"` cycle
right after already takes its ids from it. Without the `department` scope the users are
still stored (names in the views), and that is said once per portal.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from poller import storage
from poller.bitrix import PortalClient, fetch_departments, fetch_users
from poller.errors import BitrixError

logger = logging.getLogger(__name__)

RETRY_SECONDS = 900.0  # a failed refresh is tried again after this long (or refresh_hours, if shorter)


class DirectoryRefresher:
    """When each portal's directory is due (first at start), on the clients' own clocks."""

    def __init__(self, engine: Engine, refresh_hours: float) -> None:
        self.engine = engine
        self.refresh_seconds = refresh_hours * 3600
        self._due: dict[str, float] = {}
        self._no_department_scope: set[str] = set()
        self._lock = threading.Lock()

    def refresh_if_due(self, client: PortalClient) -> bool:
        """Read and store the portal's users and departments when due; True when it did."""
        name = client.portal.name
        now = client.clock.monotonic()
        with self._lock:
            if self.refresh_seconds <= 0 or now < self._due.get(name, now):
                return False
            self._due[name] = now + min(self.refresh_seconds, RETRY_SECONDS)  # in case it fails
        try:
            users = fetch_users(client)
            departments = self._fetch_departments(client)
            at = client.clock.now()
            storage.save_users(self.engine, name, users, at)
            if departments is not None:
                storage.save_departments(self.engine, name, departments, at)
        except BitrixError as exc:
            logger.warning("portal %s: user directory not refreshed: %s", name, exc.message)
            return False
        except SQLAlchemyError as exc:
            logger.warning("portal %s: user directory not stored: %s", name, storage.describe_db_error(exc))
            return False
        with self._lock:
            self._due[name] = now + self.refresh_seconds
        logger.info(
            "portal %s: user directory refreshed: %d users%s",
            name,
            len(users),
            f", {len(departments)} departments" if departments is not None else "",
        )
        return True

    def _fetch_departments(self, client: PortalClient) -> list[dict[str, Any]] | None:
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
