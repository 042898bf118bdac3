"""The lock connection of a replica: how it is opened, and how its previous session is ended."""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from poller.replica_names import APPLICATION_PREFIX

OLD_SESSION_WAIT_SECONDS = 3.0  # pg_terminate_backend returns before the session's locks go

COUNT_REPLICAS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name LIKE :prefix"
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
        },
    )


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
