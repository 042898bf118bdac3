"""Share the portals among daemons on one database, and keep a second daemon off a SQLite file.

On PostgreSQL each portal is a session-level advisory lock (`pg_try_advisory_lock`) held on a
connection of its own, named `timeman-poller:<replica>`. A replica polls a portal only while it
holds that portal's lock, so one live replica polls it at a time; the lock ends with the
session, so a replica that dies, even by SIGKILL, frees its portals at once and the others take
them at their next trigger. The live replicas are the sessions of that name in the database;
each takes at most its fair share (portals / replicas, rounded up) and gives back what is over
it after that portal's cycle, so adding a replica spreads the portals again.

When the lock connection breaks, the replica forgets every lock at once and claims nothing until
the database is back: the database ended the session and its locks, so another replica may
already hold them. Polling no portal is the price of never polling one twice.

SQLite takes no replicas: the daemon holds an exclusive `flock` on `<database file>.lock`, and a
second daemon on the same file refuses to start with one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import TextClause

from poller.errors import ConfigError, StorageError
from poller.storage import describe_db_error

logger = logging.getLogger(__name__)

APPLICATION_PREFIX = "timeman-poller:"
# PostgreSQL keeps 63 bytes of application_name; the replica's name gets what the prefix leaves.
_NAME_LIMIT = 63 - len(APPLICATION_PREFIX)

_COUNT_REPLICAS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name LIKE :prefix"
)
_HOLDERS = text(
    "SELECT l.classid::bigint, l.objid::bigint, a.application_name"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND a.application_name LIKE :prefix"
)


class ReplicaLocks(Protocol):
    """What the daemon asks before and after each portal's cycle."""

    name: str

    @property
    def held(self) -> frozenset[str]: ...

    def claim(self, portal: str) -> bool: ...

    def release(self, portal: str) -> None: ...

    def rebalance(self, portal: str) -> bool: ...

    def close(self) -> None: ...


def default_replica_name() -> str:
    """`<hostname>-<pid>`: unique among live processes, readable in `status`."""
    return f"{socket.gethostname()}-{os.getpid()}"


def clean_replica_name(name: str | None) -> str:
    """A name PostgreSQL keeps whole in application_name: printable ASCII, at most 48 characters.

    The pid stays at the end when a long host name has to be cut.
    """
    name = name or default_replica_name()
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in name).strip() or default_replica_name()
    if len(cleaned) > _NAME_LIMIT:
        head, sep, tail = cleaned.rpartition("-")
        keep = _NAME_LIMIT - len(sep + tail)
        cleaned = head[:keep] + sep + tail if sep and keep > 0 else cleaned[:_NAME_LIMIT]
    return cleaned


def portal_lock_key(portal: str) -> int:
    """The advisory lock key of `portal`: 64 bits of a hash of its name, signed as PostgreSQL wants."""
    digest = hashlib.blake2b(f"timeman-poller portal {portal}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PortalLocks:
    """The portals this replica polls, as advisory locks on one autocommit connection.

    Thread-safe: the daemon's portal jobs call it from several threads. Every method returns
    quickly; a database error drops all locks (see the module docstring) and never raises.
    The live replica count is read at most every `refresh_seconds`, which bounds how stale a
    fair share can be and how long a lock lost with the session can still be believed held.
    """

    def __init__(
        self,
        url: URL,
        portals: Collection[str],
        replica_name: str | None = None,
        *,
        refresh_seconds: float = 0.5,
        retry_seconds: float = 5.0,
        connect_timeout: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = clean_replica_name(replica_name)
        self._portals = set(portals)
        self._refresh_seconds = refresh_seconds
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._engine = create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,
            connect_args={
                "application_name": APPLICATION_PREFIX + self.name,
                "connect_timeout": connect_timeout,
                # Notice a vanished database within ~20 s instead of the system's 2 hours.
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 2,
            },
        )
        self._mutex = threading.Lock()
        self._connection: Connection | None = None
        self._backend_pid: int | None = None  # the session that held our locks, ended on reconnect
        self._held: dict[str, int] = {}  # portal -> lock key
        self._replicas = 1
        self._counted_at = -math.inf
        self._retry_at = -math.inf
        with self._mutex:
            self._connect()

    @property
    def held(self) -> frozenset[str]:
        """The portals this replica may poll now."""
        return frozenset(self._held)

    @property
    def replicas(self) -> int:
        """The live replicas last counted, this one included."""
        return self._replicas

    @property
    def share(self) -> int:
        """The most portals this replica holds: all of them over the live replicas, rounded up."""
        return max(1, math.ceil(len(self._portals) / self._replicas))

    def claim(self, portal: str) -> bool:
        """True when this replica holds `portal` (taking it if free and under its share)."""
        with self._mutex:
            self._portals.add(portal)
            if not self._refresh():
                return False
            if portal in self._held:
                return True
            if len(self._held) >= self.share:
                return False
            key = portal_lock_key(portal)
            if key not in self._held.values():  # two names of one hash share the lock
                got = self._execute("SELECT pg_try_advisory_lock(:key)", key=key)
                if not got:
                    return False
            self._held[portal] = key
            logger.debug("replica %s: took portal %s", self.name, portal)
            return True

    def release(self, portal: str) -> None:
        """Give `portal` up now (after its cycle), so that another replica can take it."""
        with self._mutex:
            self._release(portal)

    def rebalance(self, portal: str) -> bool:
        """After `portal`'s cycle: give it up if this replica holds more than its share.

        Returns True when it was given up; another replica takes it at its next trigger.
        """
        with self._mutex:
            if portal not in self._held or not self._refresh() or len(self._held) <= self.share:
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

    def close(self) -> None:
        """Give every portal up and close the lock connection (at shutdown)."""
        with self._mutex:
            self._held.clear()
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
                    self._connection.close()
                except SQLAlchemyError:
                    pass  # the session is gone, and its locks with it
                self._connection = None
            self._retry_at = math.inf
            self._engine.dispose()

    # -- under self._mutex -------------------------------------------------------------------

    def _release(self, portal: str) -> None:
        key = self._held.pop(portal, None)
        if key is not None and key not in self._held.values():
            self._execute("SELECT pg_advisory_unlock(:key)", key=key)
            logger.debug("replica %s: gave portal %s up", self.name, portal)

    def _refresh(self) -> bool:
        """Count the live replicas when the count is stale; False while the database is away.

        The count is also the check that the session, and so every lock, is still there.
        """
        if self._connection is None and not self._connect():
            return False
        if self._clock() - self._counted_at < self._refresh_seconds:
            return True
        count = self._execute(_COUNT_REPLICAS, prefix=_like_prefix())
        if count is None:
            return False
        self._replicas = max(1, int(count))
        self._counted_at = self._clock()
        return True

    def _connect(self) -> bool:
        if self._clock() < self._retry_at:
            return False
        try:
            connection = self._engine.connect()
            if self._backend_pid is not None:  # a session the database has not noticed is gone
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE pid = :pid AND application_name = :name"
                    ),
                    {"pid": self._backend_pid, "name": APPLICATION_PREFIX + self.name},
                )
            self._backend_pid = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        except SQLAlchemyError as exc:
            self._retry_at = self._clock() + self._retry_seconds
            logger.warning(
                "replica %s: cannot open the lock connection (%s); polling no portal until it opens",
                self.name,
                describe_db_error(exc),
            )
            return False
        self._connection = connection
        self._counted_at = -math.inf
        logger.info("replica %s: lock connection open", self.name)
        return True

    def _execute(self, statement: str | TextClause, **parameters: object) -> Any:
        """Run one statement and return its scalar; None after dropping every lock on an error."""
        assert self._connection is not None
        query = text(statement) if isinstance(statement, str) else statement
        try:
            return self._connection.execute(query, parameters).scalar_one()
        except SQLAlchemyError as exc:
            logger.warning(
                "replica %s: lock connection lost (%s): gave up %d portals; "
                "claiming none until the database is back",
                self.name,
                describe_db_error(exc),
                len(self._held),
            )
            self._held.clear()
            with contextlib.suppress(SQLAlchemyError):
                self._connection.close()
            self._connection = None
            self._retry_at = self._clock() + self._retry_seconds
            return None


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

    def claim(self, portal: str) -> bool:
        self._held.add(portal)
        return True

    def release(self, portal: str) -> None:
        self._held.discard(portal)

    def rebalance(self, portal: str) -> bool:
        return False

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


def for_engine(engine: Engine, portals: Collection[str], replica_name: str | None = None) -> ReplicaLocks:
    """The locks that fit `engine`'s database: portal locks on PostgreSQL, a file lock on SQLite.

    Raises ConfigError (exit 2) when another daemon runs on the same SQLite file.
    """
    url = engine.url
    backend = url.get_backend_name()
    if backend == "postgresql":
        return PortalLocks(url, portals, replica_name)
    if backend != "sqlite":
        logger.warning("%s database: replicas are not coordinated; run one daemon on it", backend)
        return SingleDaemonLock(None, replica_name)
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return SingleDaemonLock(None, replica_name)
    return SingleDaemonLock(Path(database).absolute(), replica_name)


def get_portal_holders(engine: Engine, portals: Iterable[str]) -> dict[str, str]:
    """Which live replica holds each of `portals` now; portals no replica holds are left out.

    From pg_locks joined to pg_stat_activity; empty on databases other than PostgreSQL.
    """
    if engine.url.get_backend_name() != "postgresql":
        return {}
    by_lock: dict[tuple[int, int], list[str]] = {}
    for portal in portals:
        key = portal_lock_key(portal)
        by_lock.setdefault(((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF), []).append(portal)
    with engine.connect() as connection:
        rows = connection.execute(_HOLDERS, {"prefix": _like_prefix()}).all()
    holders: dict[str, str] = {}
    for classid, objid, application_name in rows:
        for portal in by_lock.get((int(classid), int(objid)), ()):
            holders[portal] = str(application_name)[len(APPLICATION_PREFIX) :]
    return dict(sorted(holders.items()))


def _like_prefix() -> str:
    return APPLICATION_PREFIX.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
