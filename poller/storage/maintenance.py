"""The database as the operator's commands see it: opened at the newest schema, its revision,
and pruning its history.

Opening never leaves an empty SQLite file behind (SQLite creates one on connect), and every
database error names the database (the SQLite file, or the URL without its password).
Pruning's SQL is storage/prune.py; the retention floor it keeps to is poller.history.retention.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from poller.errors import DatabaseFailure, StorageError
from poller.redaction import redact
from poller.storage.engine import (
    check_schema,
    get_head_revision,
    make_engine,
    schema_revision,
    sqlite_file,
    upgrade_database,
)
from poller.storage.failures import database_call, project_error
from poller.storage.prune import PruneCounts, prune_history

__all__ = [
    "PruneCounts",
    "check_sqlite_directory",
    "database_errors",
    "describe_database",
    "get_head_revision",
    "get_schema_revision",
    "open_database",
    "prune_history",
    "sqlite_file",
]


def describe_database(engine: Engine) -> str:
    """Name the database in a message: the SQLite file, or the URL without its password."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        return f"SQLite file {path.absolute()}" if path is not None else "SQLite in memory"
    return f"database {url.render_as_string(hide_password=True)}"


@contextmanager
def open_database(url: str, *, migrate: bool = False) -> Iterator[Engine]:
    """Yield an Engine on the database at `url`, at the newest schema; dispose of it after.

    With `migrate` the schema is upgraded first (a new SQLite file is created); without it, a
    database that is missing or behind is refused, and no empty SQLite file is left behind.
    Database errors inside the block come out as one StorageError naming the database.
    """
    engine = make_engine(url)
    with database_errors(engine):
        if migrate:
            check_sqlite_directory(engine)
            upgrade_database(engine)
        else:
            path = sqlite_file(engine.url)
            if path is not None and not path.exists():
                raise StorageError("does not exist: run `timeman-poller db upgrade` first")
            check_schema(engine)
        yield engine


@contextmanager
def database_errors(engine: Engine) -> Iterator[None]:
    """Name the database in every error from it, without a password; dispose of the engine."""
    where = describe_database(engine)
    password = engine.url.password
    try:
        yield
    except SQLAlchemyError as exc:  # a block that runs storage's connection-level functions
        failure = project_error(exc)
        raise type(failure)(f"{where}: {redact(str(failure), [password])}") from None
    except StorageError as exc:  # a DatabaseFailure stays one, of its kind
        kind = type(exc) if isinstance(exc, DatabaseFailure) else StorageError
        raise kind(f"{where}: {redact(str(exc), [password])}") from None
    finally:
        engine.dispose()


def check_sqlite_directory(engine: Engine) -> None:
    """Refuse a SQLite file in a directory that is not there (SQLite only says "unable to open")."""
    path = sqlite_file(engine.url)
    if path is not None and not path.absolute().parent.is_dir():
        raise StorageError(f"directory {path.absolute().parent} does not exist")


@database_call
def get_schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at; None when it has no schema yet."""
    with engine.connect() as connection:
        return schema_revision(connection)
