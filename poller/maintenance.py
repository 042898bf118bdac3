"""The database as the operator's commands see it: opened at the newest schema, its revision,
and pruning its history.

Opening never leaves an empty SQLite file behind (SQLite creates one on connect), and every
database error names the database (the SQLite file, or the URL without its password). Pruning
covers the three tables that grow with every cycle (`snapshots`, `poll_runs`,
`poll_errors`) in one transaction, and a dry run counts with the same conditions, so what it
promises is what a real run deletes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from poller import storage
from poller.errors import StorageError
from poller.models import PollError, PollRun, Snapshot
from poller.redaction import redact


@dataclass(frozen=True)
class PruneCounts:
    """Rows deleted (or, in a dry run, that would be deleted) per table."""

    snapshots: int
    poll_runs: int
    poll_errors: int


def describe_database(engine: Engine) -> str:
    """Name the database in a message: the SQLite file, or the URL without its password."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = _sqlite_file(engine)
        return f"SQLite file {path.absolute()}" if path is not None else "SQLite in memory"
    return f"database {url.render_as_string(hide_password=True)}"


@contextmanager
def open_database(url: str, *, migrate: bool = False) -> Iterator[Engine]:
    """Yield an Engine on the database at `url`, at the newest schema; dispose of it after.

    With `migrate` the schema is upgraded first (a new SQLite file is created); without it, a
    database that is missing or behind is refused, and no empty SQLite file is left behind.
    Database errors inside the block come out as one StorageError naming the database.
    """
    engine = storage.make_engine(url)
    with database_errors(engine):
        if migrate:
            check_sqlite_directory(engine)
            storage.upgrade_database(engine)
        else:
            path = _sqlite_file(engine)
            if path is not None and not path.exists():
                raise StorageError("does not exist: run `timeman-poller db upgrade` first")
            storage.check_schema(engine)
        yield engine


@contextmanager
def database_errors(engine: Engine) -> Iterator[None]:
    """Name the database in every error from it, without a password; dispose of the engine."""
    where = describe_database(engine)
    password = engine.url.password
    try:
        yield
    except StorageError as exc:
        raise StorageError(f"{where}: {redact(str(exc), [password])}") from None
    except SQLAlchemyError as exc:
        raise StorageError(f"{where}: {redact(storage.describe_db_error(exc), [password])}") from None
    finally:
        engine.dispose()


def _sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite database; None for other databases and in-memory SQLite."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a SQLite URI: leave it to SQLite
        return None
    return Path(database)


def check_sqlite_directory(engine: Engine) -> None:
    """Refuse a SQLite file in a directory that is not there (SQLite only says "unable to open")."""
    path = _sqlite_file(engine)
    if path is not None and not path.absolute().parent.is_dir():
        raise StorageError(f"directory {path.absolute().parent} does not exist")


def get_schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at; None when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def get_head_revision() -> str:
    """The newest revision this poller ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(storage.migrations_path())).get_current_head()
    assert head is not None, "the migrations directory has no revision"
    return head


def prune_history(engine: Engine, cutoff: datetime, *, dry_run: bool = False) -> PruneCounts:
    """Delete history older than `cutoff`; with `dry_run`, only count it.

    Kept whatever their age: each user's newest snapshot (the last known status), and the
    newest poll run (so `status` still shows when the poller last ran). Errors go with their
    run, as poll_errors.run_id refers to it.
    """
    with engine.begin() as connection:
        if dry_run:
            return PruneCounts(
                snapshots=_count(connection, Snapshot, _old_snapshots(cutoff)),
                poll_runs=_count(connection, PollRun, _old_runs(cutoff)),
                poll_errors=_count(connection, PollError, _old_errors(cutoff)),
            )
        errors = connection.execute(delete(PollError).where(_old_errors(cutoff))).rowcount
        runs = connection.execute(delete(PollRun).where(_old_runs(cutoff))).rowcount
        snapshots = connection.execute(delete(Snapshot).where(_old_snapshots(cutoff))).rowcount
    return PruneCounts(snapshots=int(snapshots or 0), poll_runs=int(runs or 0), poll_errors=int(errors or 0))


def _count(
    connection: Connection, model: type[Snapshot | PollRun | PollError], condition: ColumnElement[bool]
) -> int:
    return int(connection.execute(select(func.count()).select_from(model).where(condition)).scalar_one())


def _old_snapshots(cutoff: datetime) -> ColumnElement[bool]:
    """Last seen before `cutoff`, and not the newest row of its portal and user."""
    newer = aliased(Snapshot)
    has_newer = (
        select(newer.id)
        .where(
            (newer.portal == Snapshot.portal)
            & (newer.user_id == Snapshot.user_id)
            & (newer.polled_at > Snapshot.polled_at)
        )
        .exists()
    )
    return (Snapshot.last_seen_at < cutoff) & has_newer


def _old_runs(cutoff: datetime) -> ColumnElement[bool]:
    """Started before `cutoff`, and not the newest run."""
    newest = select(func.max(PollRun.id)).scalar_subquery()
    return (PollRun.started_at < cutoff) & (PollRun.id != newest)


def _old_errors(cutoff: datetime) -> ColumnElement[bool]:
    """Occurred before `cutoff`, or belonging to a run that goes."""
    old_runs = select(PollRun.id).where(_old_runs(cutoff))
    return or_(PollError.occurred_at < cutoff, PollError.run_id.in_(old_runs))
