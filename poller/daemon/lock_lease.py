"""The lease: the portals a replica polls without their locks while its lock connection is away.

It holds the portals the replica held when the connection broke, the portals no replica held at
its last count (else nobody would poll them through the outage: a duplicate is the lesser evil
than a gap), and, while the database was never reached, every portal it is asked about.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from poller.storage import describe_db_error

logger = logging.getLogger(__name__)


class Lease:
    """The leased portals of replica `name`, and what it says about them (once per outage).

    Not thread-safe: PortalLocks changes it under its mutex.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.portals: set[str] = set()  # polled without a lock while the database is away
        self.unheld: set[str] = set()  # no replica held these at the last count
        self.reached = False  # the database was reached once: else every portal is leased
        self._complained = False  # the failing connection was logged (once per outage)

    def poll(self, portal: str) -> bool:
        """Disconnected: whether `portal` is polled (leased now if it was free, or before the
        database was ever reached)."""
        if portal in self.portals:
            return True
        if not self.reached:
            if not self.portals:
                logger.warning(
                    "replica %s: database not reached yet: polling every portal into the spool meanwhile",
                    self.name,
                )
        elif portal in self.unheld:
            logger.warning(
                "replica %s: portal %s had no holder when the lock connection broke: polled into the "
                "spool too until the database is back",
                self.name,
                portal,
            )
        else:
            return False
        self.portals.add(portal)
        return True

    def keep(self, held: Iterable[str], exc: BaseException) -> None:
        """The lock connection broke: the portals `held` are polled on, without their locks."""
        self.portals |= set(held)
        self._complained = True  # said here; said again after the next connection
        logger.warning(
            "replica %s: lock connection lost (%s): polling the %d portals it held into the spool "
            "until the database is back",
            self.name,
            describe_db_error(exc),
            len(self.portals),
        )

    def cannot_connect(self, exc: BaseException) -> None:
        if self._complained:
            return
        self._complained = True
        logger.warning(
            "replica %s: cannot open the lock connection (%s); %s",
            self.name,
            describe_db_error(exc),
            f"polling the {len(self.portals)} portals it held meanwhile"
            if self.reached
            else "polling every portal meanwhile",
        )

    def settled(self, kept: Collection[str], handed: Collection[str]) -> None:
        """Connected again: the lease became the locks `kept`; `handed` went to other replicas."""
        self._complained = False
        self.reached = True
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
