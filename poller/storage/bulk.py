"""Many rows into one table at the driver's speed: the large writes of a cycle or a backfill.

SQLAlchemy's executemany turns every value of every row into a parameter through the column
types' bind processors and builds a parameter dict per row; for the thousands of snapshots and
workdays of a cycle that costs more than the database's own work. Here each table's INSERT
text (plain, skipping a stored key, or replacing some columns of it) is built once per
dialect, each column's conversion is chosen once (SQLAlchemy's own processor, or a faster one
that gives the same value for the UTC instants), and the rows go to the driver's executemany
as tuples. Values stored are the same as through SQLAlchemy: tests/test_bulk.py compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table

from poller.models import UTCDateTime

Convert = Callable[[Any], Any]
_Statement = tuple[str, tuple[Convert | None, ...]]
_STATEMENTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...] | None, tuple[str, ...]], _Statement] = {}


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str] = (),
    replaced: Sequence[str] | None = None,
) -> None:
    """INSERT `rows` (each with the same keys) into `table` on an open transaction.

    With `keys` (a unique key of the table): a row whose key is stored already is skipped, or,
    with `replaced`, has those columns replaced by the row's values (ON CONFLICT, which both
    databases speak). A value the column cannot take raises as through SQLAlchemy: ValueError
    for a naive instant, the driver's error (wrapped by SQLAlchemy) for the rest.
    """
    if not rows:
        return
    columns = tuple(rows[0])
    sql, converters = _statement(
        connection, table, columns, tuple(keys), tuple(replaced) if replaced else None
    )
    pairs = list(zip(columns, converters, strict=True))
    if all(convert is None for convert in converters):
        values = [tuple(row[name] for name in columns) for row in rows]
    else:
        values = [
            tuple(row[name] if convert is None else convert(row[name]) for name, convert in pairs)
            for row in rows
        ]
    connection.exec_driver_sql(sql, values)


def _statement(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    replaced: tuple[str, ...] | None,
) -> _Statement:
    dialect = connection.dialect
    cache_key = (dialect.name, table.name, columns, replaced, keys)
    if cache_key not in _STATEMENTS:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})"
        )
        if keys:
            conflict = f" ON CONFLICT ({', '.join(quote(name) for name in keys)})"
            if replaced:
                sets = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in replaced)
                sql += f"{conflict} DO UPDATE SET {sets}"
            else:
                sql += f"{conflict} DO NOTHING"
        converters = tuple(converter(table.c[name].type, dialect.name, dialect) for name in columns)
        _STATEMENTS[cache_key] = (sql, converters)
    return _STATEMENTS[cache_key]


def converter(column_type: Any, dialect_name: str, dialect: Any) -> Convert | None:
    """How a value of `column_type` becomes the driver's parameter (None: as it is)."""
    if isinstance(column_type, UTCDateTime):
        return _sqlite_instant if dialect_name == "sqlite" else _aware_instant
    process: Convert | None = column_type._cached_bind_processor(dialect)
    return process


def _aware_instant(value: datetime | None) -> datetime | None:
    """PostgreSQL (timestamptz) takes any aware datetime as the instant it is."""
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given where a UTC instant is required")
    return value


def _sqlite_instant(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DATETIME stores for a UTC instant (naive UTC, microseconds)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given where a UTC instant is required")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )
