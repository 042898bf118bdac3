"""portal_tasks: when each portal's directory refresh and reconcile were last tried and done.

A run of a task reads the state (`get_task`) and says how it ended (`save_task_done` or
`save_task_failed`); a run cut by a stop or a crash leaves no trace, so the next one is due
at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from poller.models import PortalTask
from poller.storage.failures import database_call
from poller.storage.statements import upsert

ERROR_LENGTH = 1000  # a failure's line, cut: it is for a person, the log has the rest


@dataclass(frozen=True)
class TaskState:
    """One portal_tasks row: None where the task was never tried, done, or has not failed."""

    last_tried_at: datetime | None = None
    last_done_at: datetime | None = None
    last_error: str | None = None


@database_call
def get_task(engine: Engine, portal: str, task: str) -> TaskState:
    """The task's state; an empty TaskState when it never ran for the portal."""
    table = PortalTask.__table__.c
    with engine.connect() as connection:
        row = connection.execute(
            select(table.last_tried_at, table.last_done_at, table.last_error).where(
                table.portal == portal, table.task == task
            )
        ).one_or_none()
    return TaskState() if row is None else TaskState(*row)


@database_call
def save_task_done(engine: Engine, portal: str, task: str, at: datetime) -> None:
    """The task succeeded: done at `at`, no error."""
    _save(engine, portal, task, {"last_tried_at": at, "last_done_at": at, "last_error": None})


@database_call
def save_task_failed(engine: Engine, portal: str, task: str, at: datetime, error: str) -> None:
    """The task failed with `error` (one line, already free of secrets)."""
    _save(engine, portal, task, {"last_tried_at": at, "last_error": error[:ERROR_LENGTH]})


def _save(engine: Engine, portal: str, task: str, values: dict[str, object]) -> None:
    with engine.begin() as connection:
        statement = upsert(connection, PortalTask.__table__, ["portal", "task"], replaced=list(values))  # type: ignore[arg-type]
        connection.execute(statement, {"portal": portal, "task": task, **values})
