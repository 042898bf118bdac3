"""poll_runs and poll_errors: the cycles and what each could not store."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, update

from poller.models import PollError, PollRun

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


def save_run_started(engine: Engine, started_at: datetime) -> int:
    """Insert the poll_runs row of a starting cycle and return its id."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                insert(PollRun)
                .values(started_at=started_at, users_ok=0, users_failed=0)
                .returning(PollRun.id)
            ).scalar_one()
        )


def save_run_finished(
    engine: Engine, run_id: int, finished_at: datetime, users_ok: int, users_failed: int
) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(PollRun)
            .where(PollRun.id == run_id)
            .values(finished_at=finished_at, users_ok=users_ok, users_failed=users_failed)
        )


def write_errors(connection: Connection, run_id: int | None, rows: Sequence[ErrorRow]) -> None:
    """Insert error rows on an open transaction; their texts are cleaned to fit the columns."""
    if rows:
        connection.execute(insert(PollError), [_error_values(run_id, row) for row in rows])


def _error_values(run_id: int | None, row: ErrorRow) -> dict[str, object]:
    return {
        "run_id": run_id,
        "portal": row.portal,
        "user_id": row.user_id,
        "occurred_at": row.occurred_at,
        "code": _UNSTORABLE.sub("", row.code)[:100],
        "http_status": row.http_status,
        "message": _UNSTORABLE.sub("", row.message),
    }
