"""poll_runs and poll_errors: the cycles and what each could not store."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, Engine, Table, insert, update

from poller.models import PollError, PollRun
from poller.storage.bulk import insert_rows
from poller.storage.failures import database_call

# Characters no database text column takes: NUL, and halves of UTF-16 pairs.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class ErrorRow:
    """A failure to record in poll_errors; `message` must already be free of secrets."""

    portal: str
    user_id: int | None
    occurred_at: datetime
    code: str
    http_status: int | None
    message: str


RunOutcome = Literal["finished", "interrupted", "failed"]


@database_call
def save_run_started(
    engine: Engine, started_at: datetime, *, portal: str | None = None, replica: str | None = None
) -> int:
    """Insert the poll_runs row of a starting portal cycle and return its id."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                insert(PollRun)
                .values(started_at=started_at, users_ok=0, users_failed=0, portal=portal, replica=replica)
                .returning(PollRun.id)
            ).scalar_one()
        )


@database_call
def save_run_finished(
    engine: Engine,
    run_id: int,
    finished_at: datetime,
    users_ok: int,
    users_failed: int,
    *,
    outcome: RunOutcome = "finished",
) -> None:
    """Close a cycle's row: 'finished'; 'interrupted' when a stop cut it; 'failed' when the
    portal failed as a whole (its users could not be listed, or a portal-wide error)."""
    with engine.begin() as connection:
        connection.execute(
            update(PollRun)
            .where(PollRun.id == run_id)
            .values(finished_at=finished_at, users_ok=users_ok, users_failed=users_failed, outcome=outcome)
        )


def write_errors(connection: Connection, run_id: int | None, rows: Sequence[ErrorRow]) -> None:
    """Insert error rows on an open transaction; their texts are cleaned to fit the columns.

    A row whose error_key the portal already has is skipped: a replayed spool entry adds nothing.
    """
    table: Table = PollError.__table__  # type: ignore[assignment]
    insert_rows(connection, table, [_error_values(run_id, row) for row in rows], keys=("portal", "error_key"))


def error_key(run_id: int | None, row: ErrorRow) -> str:
    """What tells one error row from another: the cycle, the user, the moment, the stored code."""
    moment = row.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    user = "-" if row.user_id is None else str(row.user_id)
    return f"{'-' if run_id is None else run_id}|{user}|{moment}|{_stored_code(row)}"


def _stored_code(row: ErrorRow) -> str:
    return _UNSTORABLE.sub("", row.code)[:100]


def _error_values(run_id: int | None, row: ErrorRow) -> dict[str, object]:
    return {
        "run_id": run_id,
        "portal": row.portal,
        "user_id": row.user_id,
        "occurred_at": row.occurred_at,
        "code": _stored_code(row),
        "http_status": row.http_status,
        "message": _UNSTORABLE.sub("", row.message),
        "error_key": error_key(run_id, row),
    }
