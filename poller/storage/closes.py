"""month_closes, closed_workdays, closed_rows: a portal's month frozen with its digest, and reads
of a month's rows as canonical lines (poller.history.canonical) to compute or check that digest.

A close is written in one transaction that reads the month as one consistent state: REPEATABLE
READ on PostgreSQL; on SQLite the transaction takes the write lock before it reads. Closes are
never updated or deleted; closing a month again adds a close with the next sequence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, insert, literal, select, union

from poller.errors import PollerError
from poller.history import canonical
from poller.models import (
    closed_rows_table,
    closed_workdays_table,
    month_closes_table,
    snapshots_table,
    workday_records_table,
    workday_revisions_table,
    workdays_table,
)
from poller.storage.statements import chunks

# The tables under a month's digest, and the date column that puts a row in a month.
MONTH_TABLES: tuple[Table, ...] = (
    workdays_table,
    workday_records_table,
    workday_revisions_table,
    snapshots_table,
)
CLOSED_WORKDAY_COLUMNS = tuple(c.name for c in closed_workdays_table.columns if c.name != "close_id")


class AlreadyClosed(PollerError):
    """The month is closed for the portal already, and closing it again was not asked for."""


@dataclass(frozen=True)
class MonthClose:
    """One month_closes row."""

    id: int
    portal: str
    month: date
    sequence: int
    closed_at: datetime
    digest: str
    row_count: int
    canonical_version: int


def month_span(month: date) -> tuple[date, date]:
    """The first and the last date of the month `month` falls in."""
    first = month.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


@contextmanager
def consistent(engine: Engine) -> Iterator[Connection]:
    """A transaction whose reads see one state of the database until it ends (see the module doc)."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            if (
                connection.dialect.name == "sqlite"
            ):  # a write statement takes the lock; this one writes nothing
                connection.execute(delete(month_closes_table).where(month_closes_table.c.id < 0))
            yield connection


def month_lines(connection: Connection, portal: str, month: date, cutoff: datetime) -> list[str]:
    """The canonical lines of the portal's rows of `month` (snapshots polled at or before `cutoff`)."""
    first, last = month_span(month)
    lines: list[str] = []
    for table in MONTH_TABLES:
        columns = canonical.CANONICAL_COLUMNS[table.name]
        query = select(*(table.c[name] for name in columns)).where(
            table.c.portal == portal, table.c.work_date.between(first, last)
        )
        if table is snapshots_table:
            query = query.where(table.c.polled_at <= cutoff)
        rows = connection.execute(query.execution_options(yield_per=5000)).mappings()
        lines += (canonical.line(table.name, row) for row in rows)
    return lines


def month_portals(connection: Connection, month: date) -> list[str]:
    """The portals that have a row of `month` in a table under the digest, or a close of it."""
    first, last = month_span(month)
    parts = [
        select(table.c.portal).where(table.c.work_date.between(first, last)).distinct()
        for table in MONTH_TABLES
    ]
    parts.append(select(month_closes_table.c.portal).where(month_closes_table.c.month == first))
    return sorted(connection.execute(union(*parts)).scalars())


def closed_portals(connection: Connection, month: date) -> list[str]:
    """The portals that have closed `month`."""
    table = month_closes_table.c
    query = select(table.portal).where(table.month == month.replace(day=1)).distinct()
    return sorted(connection.execute(query).scalars())


def get_closes(connection: Connection, portal: str, month: date) -> list[MonthClose]:
    """The closes of the portal's month, oldest first."""
    table = month_closes_table.c
    query = (
        select(month_closes_table)
        .where(table.portal == portal, table.month == month.replace(day=1))
        .order_by(table.sequence)
    )
    return [MonthClose(**row) for row in connection.execute(query).mappings()]


def save_close(
    connection: Connection,
    portal: str,
    month: date,
    closed_at: datetime,
    lines: Sequence[str],
    *,
    again: bool = False,
) -> MonthClose:
    """Store a close of the portal's month: its digest, its lines, and its workdays as they stand.

    A month closed before is refused (AlreadyClosed) unless `again`: then the close gets the
    next sequence and the earlier ones stay.
    """
    first, last = month_span(month)
    earlier = get_closes(connection, portal, first)
    if earlier and not again:
        newest = earlier[-1]
        raise AlreadyClosed(
            f"{first:%Y-%m} on portal {portal} is closed already (at {newest.closed_at:%Y-%m-%d %H:%M} UTC, "
            f"sha256 {newest.digest}): `verify --month {first:%Y-%m}` checks it; "
            "--force closes it again and keeps the earlier close"
        )
    close: dict[str, Any] = {
        "portal": portal,
        "month": first,
        "sequence": (earlier[-1].sequence + 1) if earlier else 1,
        "closed_at": closed_at,
        "digest": canonical.digest(portal, first, lines),
        "row_count": len(lines),
        "canonical_version": canonical.CANONICAL_VERSION,
    }
    close_id = connection.execute(
        insert(month_closes_table).returning(month_closes_table.c.id), close
    ).scalar_one()
    keyed = [{"close_id": close_id, "row_key": canonical.row_key(text), "line": text} for text in lines]
    for chunk in chunks(keyed, 1000):
        connection.execute(insert(closed_rows_table), chunk)
    w = workdays_table.c
    frozen = select(literal(close_id), *(w[name] for name in CLOSED_WORKDAY_COLUMNS)).where(
        w.portal == portal, w.work_date.between(first, last)
    )
    connection.execute(
        insert(closed_workdays_table).from_select(["close_id", *CLOSED_WORKDAY_COLUMNS], frozen)
    )
    return MonthClose(id=close_id, **close)


def get_closed_lines(connection: Connection, close_id: int) -> dict[str, str]:
    """The lines a close stored, by row key."""
    table = closed_rows_table.c
    query = select(table.row_key, table.line).where(table.close_id == close_id)
    return {key: text for key, text in connection.execute(query.execution_options(yield_per=5000))}


def get_closed_workdays(connection: Connection, close: MonthClose) -> list[dict[str, Any]]:
    """The workdays a close froze, as workdays rows (with the close's portal)."""
    table = closed_workdays_table.c
    query = (
        select(closed_workdays_table)
        .where(table.close_id == close.id)
        .order_by(table.user_id, table.time_start)
    )
    return [{**row, "portal": close.portal} for row in connection.execute(query).mappings()]
