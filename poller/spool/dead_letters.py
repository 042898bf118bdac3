"""Entries the database refused for their data: kept in `<spool>.dead.jsonl`, never retried.

A refused entry must not hold the queue back; its line keeps it (with when and why) for an
operator to look at.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from poller import storage
from poller.spool.files import append_to, sibling, why
from poller.spool.lines import SpoolEntry, entry_line

logger = logging.getLogger(__name__)


def refused_part(entry: SpoolEntry, refused: tuple[storage.ErrorRow, ...]) -> tuple[SpoolEntry, str]:
    """The snapshots of `entry` the database refused, and why (their BAD_VALUE rows are stored)."""
    keys = {(row.user_id, row.occurred_at) for row in refused}
    rows = tuple(s for s in entry.snapshots if (s.user_id, s.polled_at) in keys)
    reasons = sorted({row.message for row in refused})
    return SpoolEntry(entry.run_id, rows, ()), "; ".join(reasons)[:300]


def describe(exc: BaseException) -> str:
    """One line for why an entry was refused, free of SQL and secrets."""
    if isinstance(exc, storage.DatabaseFailure):
        return storage.describe_db_error(exc)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def dead_letter(
    spool_path: Path | None, seq: int, entry: SpoolEntry, reason: str, exc: BaseException | None
) -> None:
    """Append `entry` to `<spool>.dead.jsonl` (as a spool line, with why) and log where it went.

    `exc`: what the database raised, if anything; one that is not a database answer is a bug
    and is logged with its traceback.
    """
    rows_of = entry.snapshots or entry.errors
    portal = rows_of[0].portal if rows_of else "?"
    target = sibling(spool_path, ".dead.jsonl") if spool_path is not None else None
    kept_in = "is lost: the spool has no file"
    if target is not None:
        try:
            line = entry_line(seq, entry, dead_at=datetime.now(UTC).isoformat(), reason=reason)
            append_to(target, line, sync=True)
            kept_in = f"moved to {target}"
        except (OSError, ValueError, RecursionError) as error:
            kept_in = f"is lost: {target} cannot be written ({why(error)})"
    expected = storage.DatabaseFailure | ValueError | OverflowError
    unexpected = exc is not None and not isinstance(exc, expected)
    logger.error(
        "portal %s: the database refused %d kept rows (%s); the entry %s",
        portal,
        entry.rows,
        reason,
        kept_in,
        exc_info=exc if unexpected else None,  # not a database answer: a bug to see whole
    )
