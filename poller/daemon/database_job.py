"""The daemon's `database` job: the schema at head, the replica's lock connection, the spool written.

A database that is down or behind at start does not stop the daemon: its cycles go to the
spool, and this job tries the schema again on every run; once the schema is at head it
reopens the lock connection if it broke (`PortalLocks.renew`), replays refreshed OAuth pairs
kept in a file meanwhile, and writes what the spool kept.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from poller import storage
from poller.daemon.replicas import ReplicaLocks
from poller.errors import PollerError
from poller.spool.queue import Spool

if TYPE_CHECKING:
    from poller.runtime import Runtime

logger = logging.getLogger(__name__)


class DatabaseJob:
    """Bring the schema to head once, then keep the spool written (`run`, the job's body).

    What it uses (engine, spool, token store, stop, metrics, storage mode) is the daemon's
    `runtime`, which holds a spool. `migrate` False only checks the schema; `locks` are set by
    the daemon at start.
    """

    def __init__(self, runtime: Runtime, *, migrate: bool = True) -> None:
        if runtime.spool is None:
            raise ValueError("the database job needs a runtime with a spool")
        self.runtime = runtime
        self.spool: Spool = runtime.spool
        self.migrate = migrate
        self.locks: ReplicaLocks | None = None
        self._ready = False
        self._complaint: str | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether the schema is at head: cycles store into the database rather than the spool."""
        return self._ready

    def ensure(self) -> bool:
        """Bring the schema to head (or, without migrate, check it) unless that was done already.

        A database that is down or behind is said once, and tried again on every call; until
        then the cycles go to the spool.
        """
        with self._lock:
            if self._ready:
                return True
            try:
                if self.migrate:
                    storage.upgrade_database(self.runtime.engine)
                else:
                    storage.check_schema(self.runtime.engine)
            except (PollerError, storage.DatabaseFailure) as exc:
                complaint = str(exc) if isinstance(exc, PollerError) else storage.describe_db_error(exc)
                if self._complaint is None:
                    logger.error(
                        "%s; polling into the spool and trying again every cycle", complaint.removesuffix(".")
                    )
                self._complaint = complaint
                return False
            if self._complaint is not None:
                logger.info("database ready: the schema is at head")
            self._ready = True
            return True

    def run(self) -> None:
        """The job: the schema at head (retried while it is not), the lock connection renewed if
        it broke, then the spool written."""
        if self.runtime.stop.is_set() or not self.ensure():
            return
        if self.locks is not None:
            self.locks.renew()
        try:
            self.runtime.tokens.replay()  # refreshed OAuth pairs kept in a file while the database was away
            self.spool.flush(self.runtime.engine, self.runtime.config.storage_mode)
        except Exception:
            logger.exception("writing the spool failed unexpectedly; it is tried again next time")
        if self.runtime.metrics is not None:
            self.runtime.metrics.set_spool_rows(self.spool.rows)
