"""Keep PostgreSQL's planner statistics up with a table that grows fast within one run.

PostgreSQL plans a query from the table's statistics, which only ANALYZE (autovacuum's, once
a minute at best, never on a server with autovacuum off) brings up to date, and the driver's
prepared statements keep a plan made when the table was empty. A backfill that adds a year of
records would then probe with plans for an empty table, each request's write slower than the
last. So each write notes the rows it added; when a table has grown by as many rows as it held
at its last ANALYZE (and by at least MIN_ROWS), the write analyzes it, in a savepoint of its
own transaction (a refusal, e.g. a role that does not own the table, costs only the savepoint
and is not tried again by this process). ANALYZE reads a sample (30,000 rows by default), so
doubling the table between two keeps their total cost in proportion to the rows written.
SQLite plans without statistics: nothing to do there.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

MIN_ROWS = 5_000  # a table is analyzed once it has grown by this many rows, and by its own size


@dataclass
class _Growth:
    """Rows a table held at its last ANALYZE (as far as this process knows) and added since."""

    base: float
    added: int = 0
    refused: bool = False


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
        due = not growth.refused and growth.added >= max(MIN_ROWS, growth.base)
        if due:
            growth.base, growth.added = growth.base + growth.added, 0
    if due:
        _analyze(connection, table, growth)


def _rows_at_last_analyze(connection: Connection, table: str) -> float:
    """pg_class.reltuples: the rows the last ANALYZE (or VACUUM) counted; 0 when never analyzed."""
    found = connection.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:table)"), {"table": table}
    ).scalar()
    return max(float(found or 0), 0.0)


def _analyze(connection: Connection, table: str, growth: _Growth) -> None:
    try:
        with connection.begin_nested():
            connection.execute(text(f'ANALYZE "{table}"'))
    except SQLAlchemyError as exc:
        growth.refused = True
        logger.info("table %s could not be analyzed (%s): left to autovacuum", table, exc.__class__.__name__)
        return
    logger.debug("table %s analyzed after growing to about %.0f rows", table, growth.base)
