"""Portal locks on PostgreSQL, with a lease that outlives an outage of the database.

Each portal is a session-level advisory lock (`pg_try_advisory_lock`) held on one autocommit
connection named `timeman-poller:<replica>`. A replica polls a portal while it holds the lock,
so one connected replica polls it at a time; the lock ends with the session, so a replica that
dies, even by SIGKILL, frees its portals at once and the others take them at their next trigger.
Each takes at most its fair share (portals / live replicas, rounded up) and gives back what is
over it after that portal's cycle.

The lease (`lock_lease.py`): when the lock connection breaks, the replica polls the portals it
held, and those no replica held at its last count, into the spool, for a gap in the history is
worse than a duplicate. `renew()` (the daemon's database job) reconnects, ends the old session if
the database has not noticed it is gone, and takes each leased portal's lock again; one another
replica took meanwhile is handed over. For `settle_seconds` after such a return the replica takes
no portal outside its lease, so that the others, still reconnecting, find their own portals free.
So two replicas poll one portal only while they cannot both see the database.

A lock statement unanswered for `statement_seconds` counts as a lost connection, and a portal's
job waits at most half a second for another's statement: then it decides from what is known.
This module is the policy; the book of held locks is `held_locks.py`, the SQL poller.storage.locks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection

from sqlalchemy.engine import URL

from poller.daemon.held_locks import HeldLocks
from poller.daemon.replica_names import APPLICATION_PREFIX, clean_replica_name, like_prefix, portal_lock_key
from poller.errors import DatabaseFailure
from poller.storage.locks import LockSession, lock_engine

logger = logging.getLogger(__name__)

CLAIM_WAIT_SECONDS = 0.5  # a statement of another portal's job takes milliseconds, a hung one 10 s
STATEMENT_SECONDS = 10.0  # a lock statement unanswered this long counts as a lost connection


class PortalLocks:
    """The portals this replica polls: advisory locks while connected, a lease while not.

    Thread-safe: the daemon's portal jobs call `claim` and `rebalance` from several threads.
    `_mutex` guards the state and is never held across a statement; `_statements` lets one
    statement at a time use the connection, and a claim that finds it busy for longer than
    CLAIM_WAIT_SECONDS decides from the state. Only `renew` opens a connection. The live
    replicas (and the free portals) are read at most every `refresh_seconds`; that read is
    also the check that the session, and every lock, is there.
    """

    def __init__(
        self,
        url: URL | str,
        portals: Collection[str],
        replica_name: str | None = None,
        *,
        refresh_seconds: float = 0.5,
        settle_seconds: float = 10.0,
        connect_timeout: int = 5,
        statement_seconds: float = STATEMENT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = clean_replica_name(replica_name)
        self._portals = set(portals)
        self._refresh_seconds = refresh_seconds
        self._settle_seconds = settle_seconds
        self._statement_seconds = statement_seconds
        self._clock = clock
        self._engine = lock_engine(url, APPLICATION_PREFIX + self.name, connect_timeout)
        self._mutex = threading.Lock()
        self._statements = threading.Lock()
        self._renewing = threading.Lock()
        self._locks = HeldLocks(self.name, self._mutex)
        self._backend_pid: int | None = None  # the session that held our locks, ended on reconnect
        self._closed = False
        self._replicas = 1
        self._counted_at = -math.inf
        self._settled_at = -math.inf  # until then, no portal outside the lease is taken
        self.renew()

    @property
    def held(self) -> frozenset[str]:
        """The portals this replica may poll now: locked, or leased while the database is away."""
        with self._mutex:
            return self._locks.polled()

    @property
    def coordinated(self) -> bool:
        """Whether the lock connection is open (else the portals polled are the lease)."""
        return self._locks.session is not None

    @property
    def replicas(self) -> int:
        """The live replicas last counted, this one included."""
        return self._replicas

    @property
    def share(self) -> int:
        """The most portals this replica holds: all of them over the live replicas, rounded up."""
        return max(1, math.ceil(len(self._portals) / self._replicas))

    def claim(self, portal: str) -> bool:
        """True when this replica polls `portal` now (taking its lock if free and under its share)."""
        locks = self._locks
        with self._mutex:
            self._portals.add(portal)
            if locks.session is None:
                return locks.lease.poll(portal)
        if not self._statements.acquire(timeout=CLAIM_WAIT_SECONDS):  # another job's statement hangs
            with self._mutex:
                if locks.session is None:
                    return locks.lease.poll(portal)
                return portal in locks.polled()  # a leased one is being settled
        try:
            self._refresh()
            with self._mutex:
                if locks.session is None:
                    return locks.lease.poll(portal)
                if portal in locks.held:
                    return True
                if self._clock() < self._settled_at or len(locks.held) >= self.share:
                    return False
            taken = locks.try_lock(portal)
            if taken is None:  # the connection broke meanwhile
                with self._mutex:
                    return locks.lease.poll(portal)
            if taken:
                logger.debug("replica %s: took portal %s", self.name, portal)
            return taken
        finally:
            self._statements.release()

    def release(self, portal: str) -> None:
        """Give `portal` up now (its lock, or its lease), so that another replica can take it."""
        with self._statements:
            with self._mutex:
                self._locks.lease.portals.discard(portal)
            self._locks.unlock(portal)

    def rebalance(self, portal: str) -> bool:
        """After `portal`'s cycle: give it up if this replica holds more than its share.

        Returns True when it was given up; another replica takes it at its next trigger.
        """
        with self._mutex:
            if portal not in self._locks.held or self._locks.session is None:
                return False
        if not self._statements.acquire(timeout=self._statement_seconds):
            return False  # given up after a later cycle
        try:
            self._refresh()
            with self._mutex:
                if self._locks.session is None or len(self._locks.held) <= self.share:
                    return False
            self._locks.unlock(portal)
        finally:
            self._statements.release()
        logger.info(
            "replica %s: gave portal %s up (%d live replicas, share %d)",
            self.name,
            portal,
            self._replicas,
            self.share,
        )
        return True

    def renew(self) -> bool:
        """Open the lock connection if it is closed, and settle the lease; True when connected.

        Called at start and by the daemon's database job; never raises. The portal jobs go on
        polling their lease while it connects and settles; for `settle_seconds` after a lease is
        settled no portal outside it is taken.
        """
        if self._closed or self._locks.session is not None:
            return self._locks.session is not None
        if not self._renewing.acquire(blocking=False):
            return False
        try:
            try:
                session = LockSession.open(
                    self._engine, APPLICATION_PREFIX + self.name, self._statement_seconds, self._backend_pid
                )
            except DatabaseFailure as exc:
                with self._mutex:
                    self._locks.lease.cannot_connect(exc)
                return False
            with self._statements:
                with self._mutex:
                    if self._closed:  # closed while connecting
                        session.close()
                        return False
                    self._locks.session, self._backend_pid = session, session.pid
                    self._counted_at = -math.inf
                if self._locks.settle():
                    self._settled_at = self._clock() + self._settle_seconds
            return self._locks.session is not None
        finally:
            self._renewing.release()

    def close(self) -> None:
        """Give every portal up and close the lock connection (at shutdown)."""
        with self._statements:
            with self._mutex:
                self._closed = True
            session = self._locks.drop()
            if session is not None:
                session.close(unlock=True)
            self._engine.dispose()

    def _refresh(self) -> None:
        """Count the live replicas, and see which portals are free, when the last count is stale
        (under self._statements)."""
        if self._clock() - self._counted_at < self._refresh_seconds:
            return
        read = self._locks.run(lambda session: session.read_replicas(like_prefix()))
        if read is not None:
            with self._mutex:
                self._replicas = max(1, read[0])
                self._locks.lease.unheld = {p for p in self._portals if portal_lock_key(p) not in read[1]}
                self._counted_at = self._clock()
