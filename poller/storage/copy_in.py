"""Many rows into a PostgreSQL table through COPY: the driver's fastest way in.

An executemany sends each row as a statement of its own (psycopg pipelines them, but every row
is still one execution on the server and a dozen Python calls on the client). COPY streams the
rows in one command; since COPY cannot skip or update a stored key, the rows go to a temporary
staging table first (one per table and column list, ON COMMIT DELETE ROWS, created by the first
write of a session) and from there into the table by one INSERT ... SELECT that takes the same
ON CONFLICT clause as the executemany would have, emptying the stage as it reads it. Rows
expected new (a cycle's snapshots) are copied straight into the table in a savepoint, and take
the stage only when a key turns out stored already (a replay).

A role that may not create temporary tables (no TEMP privilege) is seen at the engine's first
COPY, in a savepoint: the engine then keeps to executemany. A row the database refuses raises
SQLAlchemy's error for it (DataError, IntegrityError) as the executemany would: the caller's
refusal handling does not see a difference. A float for an integer column, whose text COPY
would refuse where a parameter is rounded, comes rounded from storage.bulk's conversions.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from poller.storage.deadline import guarded

logger = logging.getLogger(__name__)

_UNIQUE_VIOLATION = "23505"
MIN_ROWS = 50  # fewer rows: one pipelined executemany costs fewer round trips than stage + insert

_ALLOWED: WeakKeyDictionary[Engine, bool] = WeakKeyDictionary()
_LOCK = threading.Lock()


def copy_allowed(connection: Connection, rows: int) -> bool:
    """Whether `rows` rows go in through COPY on this connection (PostgreSQL, enough rows, and
    the role may create the stage)."""
    if rows < MIN_ROWS or connection.dialect.name != "postgresql":
        return False
    with _LOCK:
        known = _ALLOWED.get(connection.engine)
    if known is None:
        known = _probe(connection)
        with _LOCK:
            _ALLOWED[connection.engine] = known
    return known


def copy_rows(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict: str,
    *,
    fresh: bool = False,
) -> int:
    """Insert `rows` (driver values of `columns`) into `table` through its stage, with `conflict`
    (an ON CONFLICT clause, or ""); the rows inserted or updated. The rows must not repeat a key
    that `conflict` updates.

    `fresh` (rows expected new, a key stored already being rare, as a cycle's snapshots): the
    rows are copied straight into the table, in a savepoint; only when a key is stored already
    (a replay) does the savepoint go back and the rows take the stage. That spares the stage's
    second insert, which costs as much as the copy.
    """
    listed = ", ".join(f'"{name}"' for name in columns)
    if fresh and _copied_straight(connection, table, listed, rows):
        return len(rows)
    stage = _stage(connection, table, columns, listed)
    _copy(connection, f"COPY {stage} ({listed}) FROM STDIN", rows)
    inserted = connection.exec_driver_sql(
        f'WITH staged AS (DELETE FROM {stage} RETURNING {listed}) INSERT INTO "{table}" ({listed}) '
        f"SELECT {listed} FROM staged{conflict}"
    )
    return int(inserted.rowcount)


def _copied_straight(
    connection: Connection, table: str, listed: str, rows: Sequence[tuple[Any, ...]]
) -> bool:
    """COPY `rows` into `table` itself in a savepoint; False (nothing kept) when a key is stored."""
    try:
        with connection.begin_nested():
            _copy(connection, f'COPY "{table}" ({listed}) FROM STDIN', rows)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
            return False
        raise
    return True


def _copy(connection: Connection, copy_sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run `copy_sql` (a COPY ... FROM STDIN) with `rows`; a failure as SQLAlchemy raises it."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with guarded(connection), cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    except Exception as exc:
        wrapped = _wrapped(connection, copy_sql, exc)
        if wrapped is exc:
            raise
        raise wrapped from exc
    finally:
        cursor.close()


def _stage(connection: Connection, table: str, columns: Sequence[str], listed: str) -> str:
    """The session's staging table for `table` and `columns`, created when missing."""
    digest = hashlib.sha256(f"{table}({','.join(columns)})".encode()).hexdigest()[:12]
    stage = f"stage_{table}_{digest}"
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS "
        f'AS SELECT {listed} FROM "{table}" WITH NO DATA'
    )
    return stage


def _probe(connection: Connection) -> bool:
    """Whether this role may create temporary tables (tried in a savepoint, so a refusal costs
    nothing else)."""
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS stage_probe (x integer)")
    except DBAPIError as exc:
        logger.info("no temporary tables for this database role (%s): rows go in by executemany", exc.orig)
        return False
    return True


def _wrapped(connection: Connection, statement: str, exc: Exception) -> Exception:
    """The driver's error as SQLAlchemy raises it for a statement (DataError, IntegrityError, ...)."""
    dbapi = connection.dialect.loaded_dbapi
    if not isinstance(exc, dbapi.Error):
        return exc
    return DBAPIError.instance(
        statement, None, exc, dbapi.Error, hide_parameters=True, dialect=connection.dialect
    )
