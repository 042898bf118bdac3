"""Many rows into one table at the driver's speed: the large writes of a cycle or a backfill.

SQLAlchemy's executemany turns every value of every row into a parameter through the column
types' bind processors and builds a parameter dict per row; for the thousands of snapshots and
workdays of a cycle that costs more than the database's own work. Here each table's INSERT
text (plain, skipping a stored key, or replacing some columns of it) is built once per
dialect, each column's conversion is chosen once (storage.driver_values), and the rows go to
the driver as tuples: by
executemany, or on PostgreSQL by COPY through a staging table (storage.copy_in) when there are
enough of them. Values stored are the same as through SQLAlchemy: tests/test_bulk.py compares them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import StatementError

from poller.storage.copy_in import copy_allowed, copy_rows
from poller.storage.driver_values import Convert, converter, row_converter

_Statement = tuple[str, Convert | None, str]  # INSERT, a row's conversion, its ON CONFLICT
_Names = tuple[str, ...]
_Key = tuple[str, str, _Names, _Names | None, _Names, _Names, tuple[Any, ...], str]
_STATEMENTS: dict[_Key, _Statement] = {}


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
    databases speak). A value the column cannot take raises as through SQLAlchemy: a
    StatementError (the converter's ValueError or TypeError as its `orig`, e.g. a naive
    instant), the driver's error (wrapped by SQLAlchemy) for the rest.
    """
    if not rows:
        return
    columns = tuple(rows[0])
    get = itemgetter(*columns)
    values = [get(row) for row in rows] if len(columns) > 1 else [(get(row),) for row in rows]
    insert_tuples(connection, table, columns, values, keys=keys, replaced=replaced)


def insert_tuples(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    keys: Sequence[str] = (),
    replaced: Sequence[str] | None = None,
    filled: Sequence[str] = (),
    own: tuple[tuple[str, Convert], ...] = (),
    fresh: bool = False,
    only_if: str = "",
    converted: bool = False,
) -> int:
    """insert_rows of rows given as tuples of the values of `columns`; the rows the database
    inserted or updated (a skipped key, or an update `only_if` refused, counts none).

    `filled` (with `replaced`): columns of a stored key that take the row's value unless it is
    None (a NULL given never erases a stored value). `own`: (column, conversion) pairs that
    replace a column's conversion to the driver's value (the same function each call: the
    statement is cached with it); what they raise is refused as any conversion's error is.
    `fresh`: the rows are expected new (a key stored already is a rare replay): COPY may then
    write them straight into the table (storage.copy_in). `only_if` (with `replaced`): an SQL
    condition on the stored row (the table's name) and the given one (`excluded`) without which
    a stored key keeps its row. `converted`: the rows are driver values already (driver_rows).
    """
    if not rows:
        return 0
    sql, convert, conflict = _statement(
        connection,
        table,
        tuple(columns),
        tuple(keys),
        tuple(replaced) if replaced else None,
        tuple(filled),
        own,
        only_if,
    )
    values = list(rows) if convert is None or converted else _converted(convert, rows, sql)
    if copy_allowed(connection, len(values)):
        return copy_rows(connection, table.name, columns, values, conflict, fresh=fresh)
    return int(connection.exec_driver_sql(sql, values).rowcount)


def driver_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    own: tuple[tuple[str, Convert], ...] = (),
) -> list[tuple[Any, ...]]:
    """`rows` (tuples of the values of `columns`) as insert_tuples hands them to the driver, for a
    caller that reads the driver values too (a snapshot's become its day's); what a conversion
    raises is raised as insert_tuples raises it."""
    sql, convert, _ = _statement(connection, table, tuple(columns), (), None, (), own)
    return list(rows) if convert is None else _converted(convert, rows, sql)


def _converted(convert: Convert, rows: Sequence[tuple[Any, ...]], sql: str) -> list[tuple[Any, ...]]:
    """The rows as driver values; a value a converter rejects raises StatementError (the
    original as its `orig`), as SQLAlchemy's own bind processing does: a refused value, not a
    database that is down."""
    try:
        return list(map(convert, rows))
    except (TypeError, ValueError, OverflowError) as exc:
        kind = f"{type(exc).__module__}.{type(exc).__name__}"
        raise StatementError(f"({kind}) {exc}", sql, None, exc) from exc  # SQLAlchemy's wording


def _statement(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    replaced: tuple[str, ...] | None,
    filled: tuple[str, ...] = (),
    own: tuple[tuple[str, Convert], ...] = (),
    only_if: str = "",
) -> _Statement:
    dialect = connection.dialect
    cache_key = (dialect.name, table.name, columns, replaced, keys, filled, own, only_if)
    if cache_key not in _STATEMENTS:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        conflict = ""
        if keys:
            conflict = f" ON CONFLICT ({', '.join(quote(name) for name in keys)})"
            if replaced:
                sets = ", ".join(
                    [f"{quote(name)} = excluded.{quote(name)}" for name in replaced]
                    + [
                        f"{quote(name)} = COALESCE(excluded.{quote(name)}, {quote(table.name)}.{quote(name)})"
                        for name in filled
                    ]
                )
                conflict += f" DO UPDATE SET {sets}" + (f" WHERE {only_if}" if only_if else "")
            else:
                conflict += " DO NOTHING"
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))}){conflict}"
        )
        given = dict(own)
        converters = [
            given.get(name) or converter(table.c[name].type, dialect.name, dialect) for name in columns
        ]
        _STATEMENTS[cache_key] = (sql, row_converter(converters), conflict)
    return _STATEMENTS[cache_key]
