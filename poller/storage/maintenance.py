"""The database as the operator's commands see it: opened at the newest schema, its revision,
and pruning its history.

Opening never leaves an empty SQLite file behind (SQLite creates one on connect), and every
database error names the database (the SQLite file, or the URL without its password).
Pruning, and the retention floor it keeps to, live in poller.history.retention.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from poller import storage
from poller.errors import StorageError
from poller.history.retention import PruneCounts as PruneCounts  # where callers found them before
from poller.history.retention import prune_history as prune_history
from poller.redaction import redact


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
    except storage.DatabaseFailure as exc:
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
