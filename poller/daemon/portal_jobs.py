"""The bodies of a portal's jobs: `poll` (directory when due, then one cycle) and `reconcile`.

Every replica schedules every portal; a portal's job polls only while this replica holds the
portal's lock, or its lease while the database is away (`portal_locks.py`), and gives it up
after the cycle when it holds more than its share. Tests call `poll` and `reconcile` directly,
without a scheduler.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING

from poller import storage
from poller.bitrix import PortalClient
from poller.daemon.database_job import DatabaseJob
from poller.daemon.replicas import ReplicaLocks
from poller.daemon.takeover import take_over
from poller.errors import PollerError
from poller.poll.cycle import PortalOutcome, poll_portal
from poller.poll.directory_refresh import DirectoryRefresher
from poller.poll.norms_refresh import NormsRefresher

if TYPE_CHECKING:
    from poller.runtime import Runtime

logger = logging.getLogger(__name__)


class PortalJobs:
    """Poll and reconcile portals; count the cycles and keep each portal's last outcome.

    What they use comes from the daemon's `runtime` (its spool through `database`). Each of
    the runtime's portals starts with 0 cycles. `locks` (replicas.py) and `replica` are set by
    the daemon at start; without locks (a test calling `poll` directly) every portal is polled.
    """

    def __init__(self, runtime: Runtime, database: DatabaseJob) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.database = database
        self.locks: ReplicaLocks | None = None
        self.replica: str | None = None
        config, engine = runtime.config, runtime.engine
        self.norms = NormsRefresher(config, engine)  # started by the directory, held off by cycles
        self.directory = DirectoryRefresher(engine, config.directory.refresh_hours, norms=self.norms)
        self.cycles: Counter[str] = Counter({client.portal.name: 0 for client in runtime.clients})
        self.last_outcome: dict[str, PortalOutcome] = {}
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()

    def describe_busy(self) -> str:
        """The portals mid-cycle, for the line a hard stop logs (their part in flight is lost)."""
        with self._busy_lock:
            busy = sorted(self._busy)
        if not busy:
            return ""
        return f"cycles of {', '.join(busy)} cut; at most the part in flight of each is lost"

    def poll(self, client: PortalClient) -> PortalOutcome | None:
        """The portal's job: refresh its directory when due, then one cycle; None when none ran."""
        name = client.portal.name
        if self.runtime.stop.is_set() or not self._claim(client):
            return None
        with self._busy_lock:
            self._busy.add(name)
        try:
            if self.database.ready and not self.runtime.stop.is_set():
                self.directory.refresh_if_due(client)
            with self.norms.holding_off(name):
                outcome = poll_portal(
                    client,
                    self.runtime.engine,
                    mode=self.config.storage_mode,
                    spool=self.database.spool,
                    stop=self.runtime.stop,
                    replica=self.replica,
                    metrics=self.runtime.metrics,
                    database_ready=self.database.ready,
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
        logger.info("portal %s: cycle %d: %s", name, self.cycles[name], outcome.log_line())
        if self.runtime.metrics is not None:
            self.runtime.metrics.set_spool_rows(self.database.spool.rows)
        return outcome

    def reconcile(self, client: PortalClient) -> None:
        """Re-read the last days of records (backfill.reconcile logs its own summary); when it
        ran is kept in portal_tasks, where `poll` reads whether it is due."""
        from poller.poll.housekeeping import reconcile_portal

        name = client.portal.name
        if self.runtime.stop.is_set() or not self.database.ready:
            return
        if self.locks is not None and name not in self.locks.held:
            return  # another replica polls this portal, and reconciles it
        try:
            result = reconcile_portal(self.config, self.runtime.engine, client, self.runtime.stop)
        except PollerError as exc:
            logger.error("portal %s: reconcile failed: %s", name, exc)
            return
        except storage.DatabaseFailure as exc:
            logger.error("portal %s: reconcile not stored: %s", name, storage.describe_db_error(exc))
            return
        if result.error is None and not result.stopped and self.runtime.metrics is not None:
            self.runtime.metrics.reconcile_finished(name, result.records)

    def _claim(self, client: PortalClient) -> bool:
        """Whether this replica polls the portal now (portal_locks.py decides: its lock, or its
        lease); a portal freshly taken from another replica is prepared by `takeover.py`."""
        portal = client.portal.name
        locks = self.locks
        if locks is None:
            return True
        fresh = portal not in locks.held
        if not locks.claim(portal):
            self._set_owned(portal, False)
            return False
        self._set_owned(portal, True)
        return not (fresh and locks.coordinated) or take_over(
            self.config, self.runtime.engine, self.runtime.tokens, client
        )

    def _rebalance(self, portal: str) -> None:
        """After a cycle: give the portal up when this replica holds more than its share."""
        if self.locks is not None and self.locks.rebalance(portal):
            self._set_owned(portal, False)

    def _set_owned(self, portal: str, owned: bool) -> None:
        if self.runtime.metrics is not None and self.locks is not None:
            self.runtime.metrics.set_owned(portal, self.locks.name, owned)
