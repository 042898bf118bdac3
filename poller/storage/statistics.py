"""Keep PostgreSQL's planner statistics up with a table that grows fast within one run.

PostgreSQL plans a query from the table's statistics, which only ANALYZE (autovacuum's, once
a minute at best, never on a server with autovacuum off) brings up to date, and the driver's
prepared statements keep a plan made when the table was empty. A backfill that adds a year of
records would then probe with plans for an empty table, each request's write slower than the
last. So each write notes the rows it added; when a table has grown by as many rows as it held
at its last ANALYZE (and by at least MIN_ROWS), the write analyzes it, in a savepoint of its
own transaction, waiting at most LOCK_TIMEOUT_MS for the table's lock (another writer's
ANALYZE, a VACUUM) so that it never holds a cycle up for long. A failure costs only the
savepoint: a refused privilege stops this process analyzing the table; anything else (a lock
not given in time, a deadlock, a statement time limit) has it tried again once MIN_ROWS more
rows were added. ANALYZE reads a sample (30,000 rows by default), so
doubling the table between two keeps their total cost in proportion to the rows written. It
takes only the columns of the table's keys and indexes (what the write path's probes and the
reports' filters are planned on; the row count is updated all the same): on snapshots a
quarter of a whole-table ANALYZE, whose JSON and text columns autovacuum's own still covers.
SQLite plans without statistics: nothing to do there.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from poller.models import Base

logger = logging.getLogger(__name__)

MIN_ROWS = 5_000  # a table is analyzed once it has grown by this many rows, and by its own size
LOCK_TIMEOUT_MS = 2_000  # the longest an ANALYZE waits for its table's lock (a shorter setting stays)
_INSUFFICIENT_PRIVILEGE = "42501"  # SQLSTATE of a refusal that trying again cannot change


@dataclass
class _Growth:
    """Rows a table held at its last ANALYZE (as far as this process knows) and added since."""

    base: float
    added: int = 0
    refused: bool = False
    retry_at: int = 0  # after a failed ANALYZE: the rows added that make it due again


_TABLES: WeakKeyDictionary[Engine, dict[str, _Growth]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def note_rows_added(connection: Connection, table: str, count: int) -> None:
    """Count `count` rows written to `table` by this transaction; ANALYZE it when it has grown."""
    if count <= 0 or connection.dialect.name != "postgresql":
        return
    with _LOCK:
        tables = _TABLES.setdefault(connection.engine, {})
        growth = tables.get(table)
    if growth is None:
        growth = _Growth(_rows_at_last_analyze(connection, table))
        with _LOCK:
            growth = tables.setdefault(table, growth)
    with _LOCK:
        growth.added += count
        analyzed = growth.added
        due = not growth.refused and analyzed >= max(MIN_ROWS, growth.base, growth.retry_at)
        if due:
            growth.base, growth.added, growth.retry_at = growth.base + analyzed, 0, 0
    if due and not _analyze(connection, table, growth):
        with _LOCK:  # as if not analyzed: due again after MIN_ROWS more rows
            growth.base, growth.added = growth.base - analyzed, growth.added + analyzed
            growth.retry_at = growth.added + MIN_ROWS


def _rows_at_last_analyze(connection: Connection, table: str) -> float:
    """pg_class.reltuples: the rows the last ANALYZE (or VACUUM) counted; 0 when never analyzed."""
    found = connection.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:table)"), {"table": table}
    ).scalar()
    return max(float(found or 0), 0.0)


def _analyze(connection: Connection, table: str, growth: _Growth) -> bool:
    """ANALYZE `table` in a savepoint with a short lock wait; whether it was done."""
    try:
        with connection.begin_nested():
            setting = connection.execute(
                text("SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'")
            ).scalar_one()
            if setting == 0 or setting > LOCK_TIMEOUT_MS:
                connection.execute(text(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}"))
            connection.execute(text(f'ANALYZE "{table}"{_indexed_columns(table)}'))
            # SET LOCAL outlives the savepoint's release: the transaction gets its own back
            connection.execute(text(f"SET LOCAL lock_timeout = {int(setting)}"))
    except SQLAlchemyError as exc:
        code = getattr(exc.orig, "sqlstate", None) if isinstance(exc, DBAPIError) else None
        if code == _INSUFFICIENT_PRIVILEGE:
            growth.refused = True
            logger.info("table %s may not be analyzed by this role: left to autovacuum", table)
        else:
            logger.info("table %s not analyzed now (%s): tried again later", table, _reason(exc))
        return False
    logger.debug("table %s analyzed after growing to about %.0f rows", table, growth.base)
    return True


def _indexed_columns(table: str) -> str:
    """` (a, b, ...)`: the columns of `table`'s keys and indexes; "" for a table not modelled."""
    modelled = Base.metadata.tables.get(table)
    if modelled is None:
        return ""
    names: dict[str, None] = {}
    for group in [*modelled.indexes, *modelled.constraints]:
        names.update((column.name, None) for column in getattr(group, "columns", ()))
    quoted = ", ".join(f'"{name}"' for name in names)
    return f" ({quoted})" if names else ""


def _reason(exc: SQLAlchemyError) -> str:
    """The first line of the database's message (it names no secret), or the error's class."""
    orig = getattr(exc, "orig", None)
    first = str(orig).splitlines()[0] if orig is not None and str(orig) else ""
    return first or exc.__class__.__name__
