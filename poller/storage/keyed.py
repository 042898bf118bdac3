"""Rows of a table by (user_id, instant) keys, read by index probes: a cycle of N users costs N
probes whatever the history's length.

The keys go in as a VALUES list joined to the primary key or index; a chunk is padded to the
smallest of _SIZES (repeating its last key), so a small portal's cycle does not bind 800
parameters for a handful of keys, and each size's statement is still compiled only once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Integer, RowMapping, Table, TextualSelect, bindparam, text

from poller.models import UTCDateTime
from poller.storage.statements import chunks

KEYS_PER_STATEMENT = 400  # two parameters each, under SQLite's and PostgreSQL's limits
_SIZES = (10, 50, KEYS_PER_STATEMENT)


def rows_by_key(
    connection: Connection,
    table: Table,
    time_column: str,
    portal: str,
    keys: Collection[tuple[int, datetime]],
) -> Iterator[RowMapping]:
    """Rows of `table` of `portal` whose (user_id, `time_column`) is one of `keys`."""
    for chunk in chunks(list(keys), KEYS_PER_STATEMENT):
        size = next(size for size in _SIZES if size >= len(chunk))
        statement = _keyed_select(table, time_column, size)
        padded = [*chunk, *[chunk[-1]] * (size - len(chunk))]
        params: dict[str, Any] = {"portal": portal}
        for number, (user_id, instant) in enumerate(padded):
            params[f"u{number}"], params[f"t{number}"] = user_id, instant
        seen: set[tuple[int, datetime]] = set()
        for row in connection.execute(statement, params).mappings():
            key = (row["user_id"], row[time_column])
            if key not in seen:  # a padded key finds its row more than once
                seen.add(key)
                yield row


_KEYED: dict[tuple[str, str, int], TextualSelect] = {}


def _keyed_select(table: Table, time_column: str, size: int) -> TextualSelect:
    if (table.name, time_column, size) not in _KEYED:
        pairs = ", ".join(f"(:u{n}, :t{n})" for n in range(size))
        columns = ", ".join(f"x.{c.name}" for c in table.columns)
        sql = (
            f"WITH wanted(u, t) AS (VALUES {pairs}) SELECT {columns} FROM {table.name} x "
            f"JOIN wanted ON x.user_id = wanted.u AND x.{time_column} = wanted.t WHERE x.portal = :portal"
        )
        binds: list[BindParameter[Any]] = [bindparam(f"u{n}", type_=Integer()) for n in range(size)]
        binds += [bindparam(f"t{n}", type_=UTCDateTime()) for n in range(size)]
        _KEYED[(table.name, time_column, size)] = text(sql).bindparams(*binds).columns(*table.columns)
    return _KEYED[(table.name, time_column, size)]
