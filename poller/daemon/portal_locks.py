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
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection
from typing import TypeVar

from sqlalchemy.engine import URL

from poller.daemon.lock_lease import Lease
from poller.daemon.replica_names import APPLICATION_PREFIX, clean_replica_name, like_prefix, portal_lock_key
from poller.errors import DatabaseFailure
from poller.storage.locks import LockSession, lock_engine

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
        url: URL,
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
        self._session: LockSession | None = None
        self._backend_pid: int | None = None  # the session that held our locks, ended on reconnect
        self._held: dict[str, int] = {}  # portal -> lock key, on the open session
        self._lease = Lease(self.name)  # what is polled while the database is away
        self._closed = False
        self._replicas = 1
        self._counted_at = -math.inf
        self._settled_at = -math.inf  # until then, no portal outside the lease is taken
        self.renew()

    @property
    def held(self) -> frozenset[str]:
        """The portals this replica may poll now: locked, or leased while the database is away."""
        with self._mutex:
            return frozenset(self._held) | frozenset(self._lease.portals)

    @property
    def coordinated(self) -> bool:
        """Whether the lock connection is open (else the portals polled are the lease)."""
        return self._session is not None

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
        with self._mutex:
            self._portals.add(portal)
            if self._session is None:
                return self._lease.poll(portal)
        if not self._statements.acquire(timeout=CLAIM_WAIT_SECONDS):  # another job's statement hangs
            with self._mutex:
                if self._session is None:
                    return self._lease.poll(portal)
                return portal in self._held or portal in self._lease.portals  # being settled
        try:
            self._refresh()
            with self._mutex:
                if self._session is None:
                    return self._lease.poll(portal)
                if portal in self._held:
                    return True
                if self._clock() < self._settled_at or len(self._held) >= self.share:
                    return False
            taken = self._try_lock(portal)
            if taken is None:  # the connection broke meanwhile
                with self._mutex:
                    return self._lease.poll(portal)
            if taken:
                logger.debug("replica %s: took portal %s", self.name, portal)
            return taken
        finally:
            self._statements.release()

    def release(self, portal: str) -> None:
        """Give `portal` up now (its lock, or its lease), so that another replica can take it."""
        with self._statements:
            with self._mutex:
                self._lease.portals.discard(portal)
            self._unlock(portal)

    def rebalance(self, portal: str) -> bool:
        """After `portal`'s cycle: give it up if this replica holds more than its share.

        Returns True when it was given up; another replica takes it at its next trigger.
        """
        with self._mutex:
            if portal not in self._held or self._session is None:
                return False
        if not self._statements.acquire(timeout=self._statement_seconds):
            return False  # given up after a later cycle
        try:
            self._refresh()
            with self._mutex:
                if self._session is None or len(self._held) <= self.share:
                    return False
            self._unlock(portal)
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
        polling their lease while it connects and settles.
        """
        if self._closed or self._session is not None:
            return self._session is not None
        if not self._renewing.acquire(blocking=False):
            return False
        try:
            try:
                session = LockSession.open(
                    self._engine, APPLICATION_PREFIX + self.name, self._statement_seconds, self._backend_pid
                )
            except DatabaseFailure as exc:
                with self._mutex:
                    self._lease.cannot_connect(exc)
                return False
            with self._statements:
                with self._mutex:
                    if self._closed:  # closed while connecting
                        session.close()
                        return False
                    self._session, self._backend_pid = session, session.pid
                    self._counted_at = -math.inf
                self._settle_lease()
            return self._session is not None
        finally:
            self._renewing.release()

    def close(self) -> None:
        """Give every portal up and close the lock connection (at shutdown)."""
        with self._statements:
            with self._mutex:
                self._closed = True
                self._held.clear()
                self._lease.portals.clear()
                session, self._session = self._session, None
            if session is not None:
                session.close(unlock=True)
            self._engine.dispose()

    # -- under self._statements (the connection is ours) -----------------------------------------

    def _settle_lease(self) -> None:
        """Connected again: take the leased portals' locks; hand over those taken meanwhile.

        A portal stays leased until its lock is taken or found taken: a connection lost again
        meanwhile leaves the rest leased.
        """
        with self._mutex:
            leased = sorted(self._lease.portals)
        handed = []
        for portal in leased:
            taken = self._try_lock(portal)
            if taken is None:
                break
            if not taken:
                with self._mutex:
                    self._lease.portals.discard(portal)
                handed.append(portal)
        with self._mutex:
            if self._session is None:
                return
            kept = [portal for portal in leased if portal in self._held]
            if self._lease.reached and leased:
                self._settled_at = self._clock() + self._settle_seconds
            self._lease.settled(kept, handed)

    def _try_lock(self, portal: str) -> bool | None:
        """Take `portal`'s lock: True when taken, False when another session holds it, None when
        the connection broke (the portal is then left as it was)."""
        key = portal_lock_key(portal)
        with self._mutex:
            shared = key in self._held.values()  # two names of one hash share the lock
        if not shared:
            got = self._run(lambda session: session.try_lock(key))
            if not got:
                return got
        with self._mutex:
            self._held[portal] = key
            self._lease.portals.discard(portal)
            self._lease.unheld.discard(portal)
        return True

    def _unlock(self, portal: str) -> None:
        with self._mutex:
            key = self._held.pop(portal, None)
            shared = key in self._held.values()
            if key is not None:
                self._lease.unheld.add(portal)  # free until the next count shows who took it
        if key is not None and not shared:
            self._run(lambda session: session.unlock(key))
            logger.debug("replica %s: gave portal %s up", self.name, portal)

    def _refresh(self) -> None:
        """Count the live replicas, and see which portals are free, when the last count is stale."""
        if self._clock() - self._counted_at < self._refresh_seconds:
            return
        read = self._run(lambda session: session.read_replicas(like_prefix()))
        if read is not None:
            with self._mutex:
                self._replicas = max(1, read[0])
                self._lease.unheld = {p for p in self._portals if portal_lock_key(p) not in read[1]}
                self._counted_at = self._clock()

    def _run(self, statements: Callable[[LockSession], T]) -> T | None:
        """Run `statements` on the lock session; None after turning the locks into a lease."""
        session = self._session
        if session is None:
            return None
        try:
            return statements(session)
        except DatabaseFailure as exc:
            with self._mutex:
                self._lease.keep(self._held, exc)
                self._held.clear()
                self._session = None
            session.close()
            return None
