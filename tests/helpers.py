"""Small helpers several test modules need: a free loopback port, counting rows, a seeded copy
of the session's head database.

The fixtures live in conftest.py; these are plain functions a test calls.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

from poller import storage

DISTINCT_SNAPSHOTS = "SELECT count(*) FROM (SELECT DISTINCT portal, user_id, polled_at FROM snapshots) AS d"


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (for a server a test starts, or to
    stand for a portal or database that is not there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def row_count(engine: Engine, table: str, where: str = "") -> int:
    """How many rows `table` holds (that match `where`, SQL). Both come from the test, never
    from outside."""
    query = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
    with engine.connect() as connection:
        return int(connection.execute(text(query)).scalar_one())


def snapshots_stored(engine: Engine) -> tuple[int, int]:
    """Snapshot rows, and distinct (portal, user, polled_at) among them: equal when nothing was
    stored twice."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM snapshots")).scalar_one()
        distinct = connection.execute(text(DISTINCT_SNAPSHOTS)).scalar_one()
    return int(rows), int(distinct)


def seeded_copy(head: Path, path: Path, seed: Callable[[Engine], object]) -> Path:
    """`path`: a copy of the SQLite file `head` (at the head revision) that `seed` wrote into."""
    shutil.copyfile(head, path)
    engine = storage.make_engine(f"sqlite:///{path}")
    try:
        seed(engine)
    finally:
        engine.dispose()
    return path
