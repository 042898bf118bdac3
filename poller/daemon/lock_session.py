"""The lock connection of a replica: how it is opened, what it reads, how its previous session is
ended, and the time limit of its statements."""

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

from poller.daemon.replica_names import APPLICATION_PREFIX

OLD_SESSION_WAIT_SECONDS = 3.0  # pg_terminate_backend returns before the session's locks go

STATEMENT_SECONDS = 10.0  # a lock statement unanswered this long counts as a lost connection
# The server's side of the keepalives: a replica whose host vanishes (no FIN, no RST) loses its
# session, and its portals, within ~20 s instead of the system's 2 hours.
SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=2"
    " -c tcp_user_timeout=20000"
)

COUNT_REPLICAS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name LIKE :prefix"
)
_LOCKED_KEYS = text(
    "SELECT classid::bigint, objid::bigint FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_SESSION_LEFT = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND application_name = :name")
_END_SESSION = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE pid = :pid AND application_name = :name"
)


def lock_engine(url: URL, name: str, connect_timeout: int) -> Engine:
    """An engine of autocommit connections named `timeman-poller:<name>`, one at a time."""
    return create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={
            "application_name": APPLICATION_PREFIX + name,
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


def read_replicas(connection: Connection, prefix: str) -> tuple[int, set[int]]:
    """The live replicas, and the advisory lock keys any session holds in this database."""
    count = int(connection.execute(COUNT_REPLICAS, {"prefix": prefix}).scalar_one())
    keys = set()
    for classid, objid in connection.execute(_LOCKED_KEYS):
        key = (int(classid) << 32) | int(objid)
        keys.add(key - (1 << 64) if key >= 1 << 63 else key)
    return count, keys


@contextlib.contextmanager
def statement_deadline(connection: Connection, seconds: float) -> Iterator[None]:
    """Fail the statements of this block as a lost connection when they take over `seconds`.

    A database that stops answering (frozen, or its packets dropped) leaves a statement waiting
    for hours: past the deadline the connection's socket is shut down, so the statement fails
    at once and the caller turns to its lease.
    """
    fd = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
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


def end_old_session(connection: Connection, pid: int | None, name: str) -> None:
    """End the replica's previous session `pid` if the database still has it (it has not noticed
    the connection is gone), and wait until it is: its locks must be free before they are taken
    again."""
    if pid is None:
        return
    session = {"pid": pid, "name": APPLICATION_PREFIX + name}
    if not connection.execute(_END_SESSION, session).scalar_one():
        return
    deadline = time.monotonic() + OLD_SESSION_WAIT_SECONDS
    while connection.execute(_SESSION_LEFT, session).scalar_one() and time.monotonic() < deadline:
        time.sleep(0.05)
