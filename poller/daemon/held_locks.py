"""The portals a replica holds on its lock session, turned into its lease when the session fails.

Which portals to take and when is PortalLocks' policy (`portal_locks.py`); this keeps the book:
each portal's lock key on the open session (two portal names of one hash share a lock), and the
lease (`lock_lease.py`) the held portals become when a statement fails.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from poller.daemon.lock_lease import Lease
from poller.daemon.replica_names import portal_lock_key
from poller.errors import DatabaseFailure
from poller.storage.locks import LockSession

logger = logging.getLogger(__name__)

T = TypeVar("T")


class HeldLocks:
    """The lock session, the portals locked on it, and the lease of replica `name`.

    `mutex` guards `session`, `held` and `lease` and is never held across a statement; the
    caller lets one statement at a time run (`try_lock`, `unlock`, `run`, `settle`).
    """

    def __init__(self, name: str, mutex: threading.Lock) -> None:
        self.name = name
        self.mutex = mutex
        self.session: LockSession | None = None
        self.held: dict[str, int] = {}  # portal -> lock key, on the open session
        self.lease = Lease(name)  # what is polled while the database is away

    def polled(self) -> frozenset[str]:
        """The portals locked or leased (under `mutex`)."""
        return frozenset(self.held) | frozenset(self.lease.portals)

    def try_lock(self, portal: str) -> bool | None:
        """Take `portal`'s lock: True when taken, False when another session holds it, None when
        the connection broke (the portal is then left as it was)."""
        key = portal_lock_key(portal)
        with self.mutex:
            shared = key in self.held.values()
        if not shared:
            got = self.run(lambda session: session.try_lock(key))
            if not got:
                return got
        with self.mutex:
            self.held[portal] = key
            self.lease.portals.discard(portal)
            self.lease.unheld.discard(portal)
        return True

    def unlock(self, portal: str) -> None:
        """Give `portal`'s lock up (kept while another name of its hash holds it)."""
        with self.mutex:
            key = self.held.pop(portal, None)
            shared = key in self.held.values()
            if key is not None:
                self.lease.unheld.add(portal)  # free until the next count shows who took it
        if key is not None and not shared:
            self.run(lambda session: session.unlock(key))
            logger.debug("replica %s: gave portal %s up", self.name, portal)

    def run(self, statements: Callable[[LockSession], T]) -> T | None:
        """Run `statements` on the session; None after turning the held locks into the lease."""
        session = self.session
        if session is None:
            return None
        try:
            return statements(session)
        except DatabaseFailure as exc:
            with self.mutex:
                self.lease.keep(self.held, exc)
                self.held.clear()
                self.session = None
            session.close()
            return None

    def settle(self) -> bool:
        """Connected again: take the leased portals' locks; hand over those taken meanwhile.

        A portal stays leased until its lock is taken or found taken: a connection lost again
        meanwhile leaves the rest leased. True when a lease of a database reached before was
        settled (the others may still be reconnecting to theirs).
        """
        with self.mutex:
            leased = sorted(self.lease.portals)
        handed = []
        for portal in leased:
            taken = self.try_lock(portal)
            if taken is None:
                break
            if not taken:
                with self.mutex:
                    self.lease.portals.discard(portal)
                handed.append(portal)
        with self.mutex:
            if self.session is None:
                return False
            returned = self.lease.reached and bool(leased)
            self.lease.settled([portal for portal in leased if portal in self.held], handed)
            return returned

    def drop(self) -> LockSession | None:
        """Forget every portal and the session (at shutdown); return the session to close."""
        with self.mutex:
            self.held.clear()
            self.lease.portals.clear()
            session, self.session = self.session, None
        return session
