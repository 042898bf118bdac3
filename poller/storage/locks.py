"""The SQL of the replicas' portal locks on PostgreSQL: the lock session and who holds what.

A replica holds its portals as session-level advisory locks on one autocommit connection named
by its `application_name`. Which portals it takes, and the lease that outlives an outage, are the
daemon's policy (poller.daemon.portal_locks); here are the statements, each failing as
DatabaseUnavailable when the connection is lost or a statement goes unanswered too long.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from poller.errors import DatabaseFailure
from poller.storage.failures import database_call, failures_translated

__all__ = ["OLD_SESSION_WAIT_SECONDS", "LockSession", "get_lock_holders", "lock_engine"]

OLD_SESSION_WAIT_SECONDS = 3.0  # pg_terminate_backend returns before the session's locks go
# The server's side of the keepalives: a replica whose host vanishes (no FIN, no RST) loses its
# session, and its portals, within ~20 s instead of the system's 2 hours.
SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=2"
    " -c tcp_user_timeout=20000"
)

_ADVISORY = (
    "l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_COUNT_REPLICAS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name LIKE :prefix"
)
_LOCKED_KEYS = text(f"SELECT l.classid::bigint, l.objid::bigint FROM pg_locks l WHERE {_ADVISORY}")
_HOLDERS = text(
    "SELECT l.classid::bigint, l.objid::bigint, a.application_name"
    f" FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_ADVISORY}"
    " AND a.application_name LIKE :prefix"
)
_SESSION_LEFT = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND application_name = :name")
_END_SESSION = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE pid = :pid AND application_name = :name"
)
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")


def lock_engine(url: URL | str, application_name: str, connect_timeout: int) -> Engine:
    """An engine of autocommit connections named `application_name`, one at a time."""
    return create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={
            "application_name": application_name,
            "connect_timeout": connect_timeout,
            # Notice a vanished database within ~20 s instead of the system's 2 hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 2,
            "tcp_user_timeout": 20_000,
            "options": SERVER_KEEPALIVES,
        },
    )


class LockSession:
    """One open lock session: take, give up and read advisory locks on it.

    Not thread-safe: the caller lets one statement at a time use it. Every method but `close`
    raises DatabaseUnavailable (or DatabaseFailure) when the session fails; the caller then
    closes it and opens another.
    """

    def __init__(self, connection: Connection, pid: int, statement_seconds: float) -> None:
        self.connection = connection
        self.pid = pid  # the server process: ended by the next session if it outlives this one
        self._seconds = statement_seconds

    @classmethod
    def open(
        cls, engine: Engine, application_name: str, statement_seconds: float, previous_pid: int | None = None
    ) -> LockSession:
        """Connect; first end `previous_pid`, the session of the same name the database still
        has (it has not noticed that connection is gone), so its locks are free again."""
        connection = None
        try:
            with failures_translated():
                connection = engine.connect()
                with _deadline(connection, statement_seconds + OLD_SESSION_WAIT_SECONDS):
                    if previous_pid is not None:
                        _end_session(connection, previous_pid, application_name)
                    pid = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        except DatabaseFailure:
            if connection is not None:
                cls(connection, 0, statement_seconds).close()
            raise
        return cls(connection, pid, statement_seconds)

    def try_lock(self, key: int) -> bool:
        """Take the lock `key` if no session holds it; whether this one holds it now."""
        with self._statement():
            return bool(
                self.connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one()
            )

    def unlock(self, key: int) -> None:
        with self._statement():
            self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})

    def read_replicas(self, like_prefix: str) -> tuple[int, set[int]]:
        """The sessions whose application_name is LIKE `like_prefix`, and the advisory lock keys
        any session holds in this database."""
        with self._statement():
            count = int(self.connection.execute(_COUNT_REPLICAS, {"prefix": like_prefix}).scalar_one())
            keys = {_key(classid, objid) for classid, objid in self.connection.execute(_LOCKED_KEYS)}
        return count, keys

    def close(self, *, unlock: bool = False) -> None:
        """Close the session (giving every lock up first with `unlock`); never raises: a session
        that failed is gone, and its locks with it."""
        with contextlib.suppress(DatabaseFailure):
            if unlock:
                with self._statement():
                    self.connection.execute(text("SELECT pg_advisory_unlock_all()"))
            with failures_translated():
                self.connection.close()

    @contextlib.contextmanager
    def _statement(self) -> Iterator[None]:
        with failures_translated(), _deadline(self.connection, self._seconds):
            yield


@database_call
def get_lock_holders(engine: Engine, like_prefix: str) -> dict[int, str]:
    """The advisory lock keys held now by sessions whose application_name is LIKE `like_prefix`,
    each with that name; empty on databases other than PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as connection:
        rows = connection.execute(_HOLDERS, {"prefix": like_prefix}).all()
    return {_key(classid, objid): str(name) for classid, objid, name in rows}


def _key(classid: int, objid: int) -> int:
    """The bigint key of an advisory lock, from pg_locks' two 32-bit halves."""
    key = (int(classid) << 32) | int(objid)
    return key - (1 << 64) if key >= 1 << 63 else key


def _end_session(connection: Connection, pid: int, name: str) -> None:
    """End session `pid` of `name` if the database still has it, and wait until it is gone."""
    session = {"pid": pid, "name": name}
    if not connection.execute(_END_SESSION, session).scalar_one():
        return
    deadline = time.monotonic() + OLD_SESSION_WAIT_SECONDS
    while connection.execute(_SESSION_LEFT, session).scalar_one() and time.monotonic() < deadline:
        time.sleep(0.05)


@contextlib.contextmanager
def _deadline(connection: Connection, seconds: float) -> Iterator[None]:
    """Fail the statements of this block as a lost connection when they take over `seconds`.

    A database that stops answering (frozen, or its packets dropped) leaves a statement waiting
    for hours: past the deadline the connection's socket is shut down, so the statement fails
    at once and the caller turns to its lease.
    """
    try:
        fd = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
    except Exception:  # closed already: its statements fail by themselves
        yield
        return
    guard = threading.Lock()
    done = False

    def shut() -> None:
        with guard:
            if not done:
                with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, shut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with guard:  # the socket is not shut once the block is over
            done = True
        timer.cancel()
