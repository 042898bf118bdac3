"""Store one portal's cycle so that a value the database refuses costs only its own user."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import StatementError

from poller.models import PollRun
from poller.storage.collector import young_collections_put_off
from poller.storage.failures import database_call, describe_db_error, is_refused_for_data
from poller.storage.runs import ErrorRow, write_errors
from poller.storage.snapshots import SnapshotRow, StorageMode, write_snapshots

logger = logging.getLogger(__name__)

BAD_VALUE = "BAD_VALUE"

_Row = TypeVar("_Row", SnapshotRow, ErrorRow)


@dataclass(frozen=True)
class CycleSaved:
    """What save_portal_cycle stored of one portal's cycle, and what the database refused."""

    snapshots: int  # snapshots the database took (a replayed one it already had included)
    errors: int  # poll_errors rows written, the BAD_VALUE rows included
    refused: tuple[ErrorRow, ...] = ()  # the BAD_VALUE row of each user whose snapshot was refused


@database_call
def save_portal_cycle(
    engine: Engine,
    run_id: int | None,
    snapshots: Sequence[SnapshotRow],
    errors: Sequence[ErrorRow],
    mode: StorageMode = "all",
) -> CycleSaved:
    """Write one portal's snapshots and error rows of a cycle.

    1. All in one transaction: the usual case.
    2. If the database refuses a row for its data, the snapshots again in halves, each half in
       its own transaction, down to the single rows it refuses: each becomes a BAD_VALUE error
       row of its user, with the database's reason.
    3. Then the error rows, the BAD_VALUE ones included (one the database refuses is logged).
    Anything else (the database down, a lost connection, a missing table) is raised as
    DatabaseUnavailable (or DatabaseFailure): the caller keeps the whole cycle for later, and a
    replay cannot double a snapshot.
    """
    started = time.perf_counter()
    try:
        with young_collections_put_off(), engine.begin() as connection:
            write_snapshots(connection, snapshots, mode)
            write_errors(connection, run_id, errors)
        _log_write(snapshots, len(snapshots), len(errors), mode, started)
        return CycleSaved(len(snapshots), len(errors))
    except (StatementError, ValueError, OverflowError) as exc:
        if not is_refused_for_data(exc):
            raise
        portal = snapshots[0].portal if snapshots else errors[0].portal
        logger.warning(
            "portal %s: the database refused a value (%s): storing the rows apart",
            portal,
            describe_db_error(exc),
        )
    refused = _write_apart(engine, snapshots, lambda c, rows: write_snapshots(c, rows, mode))
    bad_values = tuple(
        ErrorRow(row.portal, row.user_id, row.polled_at, BAD_VALUE, None, f"snapshot refused: {reason}")
        for row, reason in refused
    )
    for error in bad_values:
        logger.error("portal %s user %s: %s", error.portal, error.user_id, error.message)
    lost = _write_apart(engine, [*errors, *bad_values], lambda c, rows: write_errors(c, run_id, rows))
    for row, reason in lost:
        logger.error("portal %s user %s: error row %s refused: %s", row.portal, row.user_id, row.code, reason)
    saved = CycleSaved(len(snapshots) - len(refused), len(errors) + len(bad_values) - len(lost), bad_values)
    _log_write(snapshots, saved.snapshots, saved.errors, mode, started)
    return saved


@database_call
def get_last_cycle_start(engine: Engine, portal: str) -> datetime | None:
    """When the newest poll_runs row of `portal` started, whichever replica wrote it."""
    with engine.connect() as connection:
        last = connection.execute(select(func.max(PollRun.started_at)).where(PollRun.portal == portal))
        return last.scalar_one_or_none()


def _log_write(
    snapshots: Sequence[SnapshotRow], stored: int, errors: int, mode: StorageMode, started: float
) -> None:
    """One DEBUG line per cycle written (--log-level DEBUG shows each write): counts and time, no values."""
    if snapshots and logger.isEnabledFor(logging.DEBUG):
        days = {(row.user_id, row.parsed.values["time_start"]) for row in snapshots}
        logger.debug(
            "portal %s: stored %d snapshots, %d errors, %d workdays (%s mode) in %.3f s",
            snapshots[0].portal,
            stored,
            errors,
            len({day for day in days if day[1] is not None}),
            mode,
            time.perf_counter() - started,
        )


def _write_apart(
    engine: Engine, rows: Sequence[_Row], write: Callable[[Connection, Sequence[_Row]], None]
) -> list[tuple[_Row, str]]:
    """Write `rows` in halves, each in its own transaction; return the single rows refused, and why."""
    if not rows:
        return []
    try:
        with engine.begin() as connection:
            write(connection, rows)
        return []
    except (StatementError, ValueError, OverflowError) as exc:
        if not is_refused_for_data(exc):
            raise
        if len(rows) == 1:
            return [(rows[0], describe_db_error(exc))]
    middle = len(rows) // 2
    return _write_apart(engine, rows[:middle], write) + _write_apart(engine, rows[middle:], write)
