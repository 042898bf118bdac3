"""A portal's chores beside its cycle: the directory refresh before it, the daily reconcile and
the norms refresh (poller.poll.norms_refresh, due with the directory) after.

`run` schedules the reconcile daily at `[reconcile] at`; `poll` (a timer, cron) does each
chore when the database says it is due, so both keep names, departments, ids and records
the same. The reconcile is due once the newest `[reconcile] at` (in `[schedule] timezone`)
has passed since it was last tried; it is recorded in portal_tasks when it succeeds or
fails, not when a stop cuts it (the next `poll` does it again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.config import Config
from poller.errors import PollerError
from poller.poll import backfill
from poller.poll.backfill import PortalBackfill
from poller.poll.directory_refresh import DirectoryRefresher
from poller.poll.norms_refresh import NormsRefresher
from poller.redaction import redact
from poller.storage.tasks import get_task, save_task_done, save_task_failed

if TYPE_CHECKING:
    from poller.poll.cycle import PortalOutcome

logger = logging.getLogger(__name__)

RECONCILE = "reconcile"


def newest_reconcile_slot(now: datetime, at: str, timezone: str) -> datetime:
    """The newest instant, `now` or before, at which the daily reconcile falls (`at` is HH:MM local)."""
    hour, minute = (int(part) for part in at.split(":"))
    local = now.astimezone(ZoneInfo(timezone))
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot > local:
        slot = (slot - timedelta(days=1)).replace(hour=hour, minute=minute)
    return slot.astimezone(UTC)


def reconcile_due(engine: Engine, config: Config, portal: str, now: datetime) -> bool:
    """Whether the portal's reconcile is due: on, and not tried since its newest slot."""
    if config.reconcile.days <= 0:
        return False
    tried = get_task(engine, portal, RECONCILE).last_tried_at
    return tried is None or tried < newest_reconcile_slot(now, config.reconcile.at, config.schedule.timezone)


def reconcile_portal(
    config: Config, engine: Engine, client: PortalClient, stop: threading.Event | None = None
) -> PortalBackfill:
    """Reconcile one portal (backfill.reconcile) and record the outcome in portal_tasks.

    A portal error is recorded as the task's failure; database errors are raised.
    """
    name = client.portal.name
    result = backfill.reconcile(config, engine, client, config.reconcile.days, client.clock.now(), stop=stop)
    at = client.clock.now()
    if result.stopped:
        return result
    if result.error is not None:
        save_task_failed(engine, name, RECONCILE, at, redact(result.error, client.secrets()))
    else:
        save_task_done(engine, name, RECONCILE, at)
    return result


class PortalChores:
    """What `poll` does around each portal's cycle, each only when due and not stopping."""

    def __init__(self, config: Config, engine: Engine, stop: threading.Event | None = None) -> None:
        self.config = config
        self.engine = engine
        self.stop = stop
        self.directory = DirectoryRefresher(engine, config.directory.refresh_hours)
        self.norms = NormsRefresher(config, engine)

    @property
    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def around(self, client: PortalClient, cycle: Callable[[PortalClient], PortalOutcome]) -> PortalOutcome:
        """The portal's directory when due, its `cycle`, its reconcile when due."""
        self.before(client)
        outcome = cycle(client)
        self.after(client)
        return outcome

    def before(self, client: PortalClient) -> None:
        """Refresh the portal's directory when it is due."""
        if not self.stopping:
            self.directory.refresh_if_due(client)

    def after(self, client: PortalClient) -> None:
        """Reconcile the portal, then refresh its norms, each when due; a failure is logged (and
        recorded), never raised. Both run after the cycle, so neither delays it."""
        self._reconcile(client)
        if not self.stopping:
            self.norms.refresh_if_due(client)

    def _reconcile(self, client: PortalClient) -> None:
        name = client.portal.name
        try:
            if self.stopping or not reconcile_due(self.engine, self.config, name, client.clock.now()):
                return
            reconcile_portal(self.config, self.engine, client, self.stop)
        except PollerError as exc:
            logger.error("portal %s: reconcile failed: %s", name, redact(str(exc), client.secrets()))
        except storage.DatabaseFailure as exc:
            logger.error("portal %s: reconcile not stored: %s", name, storage.describe_db_error(exc))
