"""Share the portals among daemons on one database, and keep a second daemon off a SQLite file.

On PostgreSQL each portal is an advisory lock of the replica holding it (`portal_locks.py`:
a fair share each, a lease that outlives an outage of the database). `get_portal_holders`
reads who holds what, for `status`.

SQLite takes no replicas: the daemon holds an exclusive `flock` on `<database file>.lock`, and a
second daemon on the same file refuses to start with one line.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from poller.daemon.portal_locks import PortalLocks
from poller.daemon.replica_names import (
    APPLICATION_PREFIX,
    clean_replica_name,
    default_replica_name,
    like_prefix,
    portal_lock_key,
)
from poller.errors import ConfigError, StorageError
from poller.storage.engine import sqlite_file
from poller.storage.locks import get_lock_holders

__all__ = [
    "PortalLocks",
    "ReplicaLocks",
    "SingleDaemonLock",
    "clean_replica_name",
    "default_replica_name",
    "for_engine",
    "get_portal_holders",
    "portal_lock_key",
]

logger = logging.getLogger(__name__)


class ReplicaLocks(Protocol):
    """What the daemon asks before and after each portal's cycle."""

    name: str

    @property
    def held(self) -> frozenset[str]: ...

    @property
    def coordinated(self) -> bool:
        """Whether other replicas are coordinated with now (a lock connection is open)."""

    def claim(self, portal: str) -> bool: ...

    def release(self, portal: str) -> None: ...

    def rebalance(self, portal: str) -> bool: ...

    def renew(self) -> bool: ...

    def close(self) -> None: ...


class SingleDaemonLock:
    """The one daemon of a SQLite file: an exclusive flock on `<file>.lock` for its lifetime.

    `database` None (in-memory SQLite) locks nothing. Every portal is claimed. The lock file
    stays after the daemon (removing it would race with the next one); it names the holder.
    """

    def __init__(self, database: Path | None, replica_name: str | None = None) -> None:
        self.name = clean_replica_name(replica_name)
        self.path = database.with_name(database.name + ".lock") if database is not None else None
        self._held: set[str] = set()
        self._fd: int | None = None
        if database is not None:
            self._fd = _lock_file(database, self.name)

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    @property
    def coordinated(self) -> bool:
        return False  # no other daemon to coordinate with

    def claim(self, portal: str) -> bool:
        self._held.add(portal)
        return True

    def release(self, portal: str) -> None:
        self._held.discard(portal)

    def rebalance(self, portal: str) -> bool:
        return False

    def renew(self) -> bool:
        return True

    def close(self) -> None:
        self._held.clear()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor ends the flock
            self._fd = None


def _lock_file(database: Path, name: str) -> int:
    """Open and flock `<database>.lock`, writing our name into it; refuse when another process holds it."""
    path = database.with_name(database.name + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"SQLite file {database}: cannot open lock file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 100, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            f"SQLite file {database} is in use by another timeman-poller daemon ({holder}, lock {path}): "
            "run one daemon per SQLite file, or PostgreSQL for replicas"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{name}\n".encode(), 0)
    return fd


def for_engine(
    engine: Engine, portals: Collection[str], replica_name: str | None = None, *, settle_seconds: float = 10.0
) -> ReplicaLocks:
    """The locks that fit `engine`'s database: portal locks on PostgreSQL, a file lock on SQLite.

    `settle_seconds`: see PortalLocks. Raises ConfigError (exit 2) when another daemon runs
    on the same SQLite file.
    """
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        return PortalLocks(engine.url, portals, replica_name, settle_seconds=settle_seconds)
    if backend != "sqlite":
        logger.warning("%s database: replicas are not coordinated; run one daemon on it", backend)
        return SingleDaemonLock(None, replica_name)
    database = sqlite_file(engine.url)
    return SingleDaemonLock(database.absolute() if database is not None else None, replica_name)


def get_portal_holders(engine: Engine, portals: Iterable[str]) -> dict[str, str]:
    """Which live replica holds each of `portals` now; portals no replica holds are left out.

    From pg_locks joined to pg_stat_activity; empty on databases other than PostgreSQL.
    """
    held = get_lock_holders(engine, like_prefix())
    holders = {}
    for portal in portals:
        name = held.get(portal_lock_key(portal))
        if name is not None:
            holders[portal] = name[len(APPLICATION_PREFIX) :]
    return dict(sorted(holders.items()))
