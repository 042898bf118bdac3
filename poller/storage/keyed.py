"""Rows of a table by (user_id, instant) keys, read by index probes: a cycle of N users costs N
probes whatever the history's length, and the plan does not depend on the table's statistics.

PostgreSQL: the keys go in as two arrays joined through `unnest` (three parameters whatever
the count: one short statement the driver prepares once; the planner knows the arrays' length
and probes the primary key or index, analyzed table or not), each array given as its text
literal (psycopg would dump a list element by element in Python). SQLite: as a VALUES list, a chunk
padded to the smallest of _SIZES (repeating its last key) so that each size's text is parsed
once. Both run at the driver's level (storage.bulk's conversions for the parameters, and the
column types' result conversions, done once per column), which keeps a cycle's reads of
thousands of days off SQLAlchemy's per-value path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table

from poller.models import UTCDateTime
from poller.storage.driver_values import instant_parameter, row_converter
from poller.storage.statements import chunks

# Two parameters per key: under the 999 of SQLite before 3.32, far under its 32,766 since.
KEYS_PER_STATEMENT = 1000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 400
_ARRAY_KEYS = 10_000  # keys per PostgreSQL statement (two arrays)
_SIZES = (10, 50, 200, *((500, 1000) if KEYS_PER_STATEMENT == 1000 else (KEYS_PER_STATEMENT,)))

_Read = Callable[[Any], Any]
_READERS: dict[tuple[str, str, tuple[str, ...]], tuple[tuple[str, ...], _Read | None]] = {}


def rows_by_key(
    connection: Connection,
    table: Table,
    time_column: str,
    portal: str,
    keys: Collection[tuple[int, datetime]],
    columns: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """Rows of `table` of `portal` whose (user_id, `time_column`) is one of `keys` (each once):
    their `columns` (default: all), user_id and `time_column` always included."""
    if not keys:
        return
    names, _ = _reader(connection, table, ("user_id", time_column, *columns) if columns else ())
    at = names.index("user_id"), names.index(time_column)
    seen: set[tuple[int, datetime]] = set()
    for values in tuples_by_key(connection, table, time_column, portal, keys, columns):
        key = (values[at[0]], values[at[1]])
        if key not in seen:  # a padded key finds its row more than once
            seen.add(key)
            yield dict(zip(names, values, strict=True))


def tuples_by_key(
    connection: Connection,
    table: Table,
    time_column: str,
    portal: str,
    keys: Collection[tuple[int, datetime]],
    columns: Sequence[str],
) -> list[tuple[Any, ...]]:
    """rows_by_key as tuples of the values of the table's columns in its order (user_id and
    `time_column` included; all when `columns` is empty); a padded key's row may come twice."""
    if not keys:
        return []
    names, read = _reader(connection, table, ("user_id", time_column, *columns) if columns else ())
    listed = ", ".join(f"x.{name}" for name in names)
    found: list[tuple[Any, ...]] = []
    for sql, params in _statements(connection, table.name, time_column, listed, portal, list(keys)):
        raws = connection.exec_driver_sql(sql, params).fetchall()
        found += raws if read is None else map(read, raws)
    return found


def count_by_key(
    connection: Connection,
    table: Table,
    time_column: str,
    portal: str,
    keys: Collection[tuple[int, datetime]],
) -> int:
    """How many of `keys` `table` holds (on SQLite a padded key may count twice)."""
    statements = _statements(connection, table.name, time_column, "count(*)", portal, list(keys))
    return sum(int(connection.exec_driver_sql(sql, params).scalar_one()) for sql, params in statements)


def ids_matching(
    connection: Connection, table: Table, portal: str, keys: Collection[tuple[int, datetime]], on: str
) -> set[int]:
    """The first items of those of `keys` (an integer and an instant: `wanted.u`, `wanted.t`) that
    some row `x` of `table` of `portal` matches `on` (an SQL condition): found by index probes,
    only the matches sent back."""
    found: set[int] = set()
    for sql, params in _statements(connection, table.name, "", "wanted.u", portal, list(keys), on):
        found.update(value for (value,) in connection.exec_driver_sql(sql, params))
    return found


def _statements(
    connection: Connection,
    table: str,
    time_column: str,
    columns: str,
    portal: str,
    keys: list[tuple[int, datetime]],
    on: str = "",
) -> Iterator[tuple[str, Any]]:
    """The statements (text, parameters) that read `keys`; `on` (default: the key's user_id and
    `time_column` equal to the wanted pair `wanted.u`, `wanted.t`) joins a row to its key."""
    on = on or f"x.user_id = wanted.u AND x.{time_column} = wanted.t"
    if connection.dialect.name == "postgresql":
        sql = (
            f"SELECT {columns} FROM {table} x JOIN unnest(%s::integer[], %s::timestamptz[]) AS wanted(u, t)"
            f" ON {on} WHERE x.portal = %s"
        )
        to_instant = instant_parameter("postgresql")
        for chunk in chunks(keys, _ARRAY_KEYS):  # the arrays as their text: no dumper per element
            users = ",".join([str(int(user_id)) for user_id, _ in chunk])
            instants = ",".join([to_instant(instant).isoformat() for _, instant in chunk])
            yield sql, (f"{{{users}}}", f"{{{instants}}}", portal)
        return
    to_text = instant_parameter(connection.dialect.name)
    for chunk in chunks(keys, KEYS_PER_STATEMENT):
        size = next(size for size in _SIZES if size >= len(chunk))
        pairs = ", ".join(["(?, ?)"] * size)
        sql = (
            f"WITH wanted(u, t) AS (VALUES {pairs}) SELECT {columns} FROM {table} x "
            f"JOIN wanted ON {on} WHERE x.portal = ?"
        )
        params: list[Any] = []
        for user_id, instant in [*chunk, *[chunk[-1]] * (size - len(chunk))]:
            params += (user_id, to_text(instant))
        params.append(portal)
        yield sql, tuple(params)


def _reader(
    connection: Connection, table: Table, wanted: tuple[str, ...]
) -> tuple[tuple[str, ...], _Read | None]:
    """The columns read (`wanted`, or all) and how a row of driver values becomes the values
    SQLAlchemy would return (None: as they are)."""
    dialect = connection.dialect
    cache_key = (dialect.name, table.name, wanted)
    if cache_key not in _READERS:
        chosen = [column for column in table.columns if not wanted or column.name in wanted]
        instant = _read_text if dialect.name == "sqlite" else _read_instant
        readers = [
            instant
            if isinstance(column.type, UTCDateTime)
            else column.type._cached_result_processor(dialect, None)
            for column in chosen
        ]
        _READERS[cache_key] = (
            tuple(column.name for column in chosen),
            row_converter(readers, none_as_is=True),
        )
    return _READERS[cache_key]


def _read_instant(value: Any) -> datetime:
    """A stored instant as UTCDateTime returns it (the driver's datetime, made UTC)."""
    if isinstance(value, str):
        return _read_text(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=4096)
def _read_text(value: str) -> datetime:
    """An instant as SQLite keeps it (naive UTC text), made UTC."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)
