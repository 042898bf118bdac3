"""Portal locks on PostgreSQL, with a lease that outlives an outage of the database.

Each portal is a session-level advisory lock (`pg_try_advisory_lock`) held on one autocommit
connection named `timeman-poller:<replica>`. A replica polls a portal while it holds the lock,
so one connected replica polls it at a time; the lock ends with the session, so a replica that
dies, even by SIGKILL, frees its portals at once and the others take them at their next trigger.
Each takes at most its fair share (portals / live replicas, rounded up) and gives back what is
over it after that portal's cycle.

The lease: when the lock connection breaks, the replica keeps polling the portals it held (into
the spool) instead of dropping them, for a gap in the history is worse than a duplicate. A replica
that never reached the database polls every portal it is asked about, as a lone daemon would.
`renew()` (the daemon's database job) reconnects; it ends the old session if the database has
not noticed it is gone, then takes each leased portal's lock again. A portal another replica took
meanwhile (it could see the database while this one could not) is handed over: this replica stops
polling it. For `settle_seconds` after such a return the replica takes no portal outside its lease,
so that the others, still reconnecting, find their own portals free. So two replicas poll one
portal only while they cannot both see the database.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import TextClause

from poller.lock_session import COUNT_REPLICAS, end_old_session, lock_engine
from poller.replica_names import clean_replica_name, like_prefix, portal_lock_key
from poller.storage import describe_db_error

logger = logging.getLogger(__name__)


class PortalLocks:
    """The portals this replica polls: advisory locks while connected, a lease while not.

    Thread-safe: the daemon's portal jobs call `claim` and `rebalance` from several threads;
    they never open a connection (only `renew` does), so a database that hangs holds up no
    poll for longer than one statement. The live replica count is read at most every
    `refresh_seconds`; that read is also the check that the session, and every lock, is there.
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = clean_replica_name(replica_name)
        self._portals = set(portals)
        self._refresh_seconds = refresh_seconds
        self._settle_seconds = settle_seconds
        self._clock = clock
        self._engine = lock_engine(url, self.name, connect_timeout)
        self._mutex = threading.Lock()
        self._renewing = threading.Lock()
        self._connection: Connection | None = None
        self._backend_pid: int | None = None  # the session that held our locks, ended on reconnect
        self._held: dict[str, int] = {}  # portal -> lock key, on the open session
        self._leased: set[str] = set()  # polled without a lock while the database is away
        self._reached = False  # the database was reached once: else every portal is leased
        self._closed = False
        self._complained = False  # the failing connection was logged (once per outage)
        self._replicas = 1
        self._counted_at = -math.inf
        self._settled_at = -math.inf  # until then, no portal outside the lease is taken
        self.renew()

    @property
    def held(self) -> frozenset[str]:
        """The portals this replica may poll now: locked, or leased while the database is away."""
        with self._mutex:
            return frozenset(self._held) | frozenset(self._leased)

    @property
    def coordinated(self) -> bool:
        """Whether the lock connection is open (else the portals polled are the lease)."""
        return self._connection is not None

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
            if self._connection is not None:
                self._refresh()
            if self._connection is None:
                return self._lease(portal)
            if portal in self._held:
                return True
            if self._clock() < self._settled_at or len(self._held) >= self.share:
                return False
            if not self._try_lock(portal):
                return False
            logger.debug("replica %s: took portal %s", self.name, portal)
            return True

    def release(self, portal: str) -> None:
        """Give `portal` up now (its lock, or its lease), so that another replica can take it."""
        with self._mutex:
            self._leased.discard(portal)
            self._release(portal)

    def rebalance(self, portal: str) -> bool:
        """After `portal`'s cycle: give it up if this replica holds more than its share.

        Returns True when it was given up; another replica takes it at its next trigger.
        """
        with self._mutex:
            if portal not in self._held or self._connection is None:
                return False
            self._refresh()
            if self._connection is None or len(self._held) <= self.share:
                return False
            self._release(portal)
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

        Called at start and by the daemon's database job; never raises. Connecting happens
        outside the mutex, so the portal jobs go on polling their lease meanwhile.
        """
        if self._closed or self._connection is not None:
            return self._connection is not None
        if not self._renewing.acquire(blocking=False):
            return False
        connection: Connection | None = None
        try:
            try:
                connection = self._engine.connect()
                end_old_session(connection, self._backend_pid, self.name)
                pid = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
            except SQLAlchemyError as exc:
                if connection is not None:
                    with contextlib.suppress(SQLAlchemyError):
                        connection.close()
                with self._mutex:
                    self._cannot_connect(exc)
                return False
            with self._mutex:
                if self._closed:  # closed while connecting
                    connection.close()
                    return False
                self._connection, self._backend_pid = connection, pid
                self._counted_at = -math.inf
                self._settle_lease()
            return True
        finally:
            self._renewing.release()

    def close(self) -> None:
        """Give every portal up and close the lock connection (at shutdown)."""
        with self._mutex:
            self._closed = True
            self._held.clear()
            self._leased.clear()
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
                    self._connection.close()
                except SQLAlchemyError:
                    pass  # the session is gone, and its locks with it
                self._connection = None
            self._engine.dispose()

    # -- under self._mutex -------------------------------------------------------------------

    def _lease(self, portal: str) -> bool:
        """Disconnected: poll what was held; before the database was ever reached, everything."""
        if not self._reached and portal not in self._leased:
            if not self._leased:
                logger.warning(
                    "replica %s: database not reached yet: polling every portal into the spool meanwhile",
                    self.name,
                )
            self._leased.add(portal)
        return portal in self._leased

    def _settle_lease(self) -> None:
        """Connected again: take the leased portals' locks; hand over those taken meanwhile."""
        leased, self._leased = sorted(self._leased), set()
        handed = []
        for portal in leased:
            if self._connection is None:  # lost again: the rest stays leased
                self._leased.add(portal)
            elif not self._try_lock(portal) and self._connection is not None:
                handed.append(portal)
        kept = [portal for portal in leased if portal in self._held]
        self._complained = False
        if self._reached and leased:
            self._settled_at = self._clock() + self._settle_seconds
        self._reached = True
        if handed:
            logger.warning(
                "replica %s: lock connection open: kept %d portals; handed over %s, taken by another "
                "replica meanwhile",
                self.name,
                len(kept),
                ", ".join(handed),
            )
        elif kept:
            logger.info("replica %s: lock connection open again: kept its %d portals", self.name, len(kept))
        else:
            logger.info("replica %s: lock connection open", self.name)

    def _try_lock(self, portal: str) -> bool:
        key = portal_lock_key(portal)
        if key not in self._held.values():  # two names of one hash share the lock
            got = self._execute("SELECT pg_try_advisory_lock(:key)", key=key)
            if not got:
                return False
        self._held[portal] = key
        return True

    def _release(self, portal: str) -> None:
        key = self._held.pop(portal, None)
        if key is not None and key not in self._held.values():
            self._execute("SELECT pg_advisory_unlock(:key)", key=key)
            logger.debug("replica %s: gave portal %s up", self.name, portal)

    def _refresh(self) -> None:
        """Count the live replicas when the count is stale (a lost session shows here)."""
        if self._clock() - self._counted_at < self._refresh_seconds:
            return
        count = self._execute(COUNT_REPLICAS, prefix=like_prefix())
        if count is not None:
            self._replicas = max(1, int(count))
            self._counted_at = self._clock()

    def _cannot_connect(self, exc: SQLAlchemyError) -> None:
        if self._complained:
            return
        self._complained = True
        logger.warning(
            "replica %s: cannot open the lock connection (%s); %s",
            self.name,
            describe_db_error(exc),
            f"polling the {len(self._leased)} portals it held meanwhile"
            if self._reached
            else "polling every portal meanwhile",
        )

    def _execute(self, statement: str | TextClause, **parameters: object) -> Any:
        """Run one statement and return its scalar; None after turning the locks into a lease."""
        assert self._connection is not None
        query = text(statement) if isinstance(statement, str) else statement
        try:
            return self._connection.execute(query, parameters).scalar_one()
        except SQLAlchemyError as exc:
            self._leased |= set(self._held)
            logger.warning(
                "replica %s: lock connection lost (%s): polling the %d portals it held into the spool "
                "until the database is back",
                self.name,
                describe_db_error(exc),
                len(self._leased),
            )
            self._held.clear()
            self._complained = True  # said here; said again after the next connection
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()
            self._connection = None
            return None
