"""INSERT forms that both databases speak: skip a row already stored, or replace its values."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Insert, Table, any_, bindparam, insert

_T = TypeVar("_T")


def insert_or_skip(connection: Connection, table: Table, keys: Sequence[str]) -> Insert:
    """INSERT that skips a row whose `keys` are already stored (a replay must neither fail nor double)."""
    dialect = _dialect_insert(connection)
    if dialect is None:
        return insert(table)
    return dialect(table).on_conflict_do_nothing(index_elements=list(keys))


def other_columns(table: Table, keys: Sequence[str]) -> list[str]:
    """The columns of `table` outside `keys`: what a stored row takes from a new one."""
    return [column.name for column in table.columns if column.name not in keys]


def upsert(connection: Connection, table: Table, keys: Sequence[str], replaced: Sequence[str] = ()) -> Insert:
    """INSERT that replaces the columns `replaced` (default: every non-key one) of a stored row."""
    dialect = _dialect_insert(connection)
    if dialect is None:
        return insert(table)
    statement = dialect(table)
    columns = replaced or other_columns(table, keys)
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in columns}
    )


def one_of(
    connection: Connection, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(array)`: one short statement whatever the
    count (the driver parses and prepares it once, where an IN list is a new text per length)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """`items` in slices of at most `size`: statements stay under the databases' parameter limits."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dialect_insert(connection: Connection) -> Callable[[Table], Any] | None:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    if connection.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    return None
