"""Engines and the schema: connect, upgrade with Alembic, refuse a database at another revision."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from poller.errors import ConfigError, DatabaseUnavailable, StorageError
from poller.storage.deadline import limit_statement_time, no_time_limit
from poller.storage.failures import database_call, describe_db_error, is_outage

__all__ = [
    "check_schema",
    "describe_db_error",
    "get_head_revision",
    "is_known_revision",
    "make_engine",
    "migrations_path",
    "schema_revision",
    "shorten_lock_waits",
    "sqlite_file",
    "upgrade_database",
]

BUSY_TIMEOUT_SECONDS = 30  # how long a command waits for another SQLite writer
CONNECT_TIMEOUT_SECONDS = 5  # a PostgreSQL that does not answer is an outage, not a wait
# A PostgreSQL whose host or network vanishes (no FIN, no RST): a write waits ~10 s for its
# packets to be acknowledged, an idle connection is probed after 5 s, then the cycle spools.
POSTGRESQL_CONNECT_ARGS = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
# SQLite result codes after which a connection is opened afresh: SQLITE_IOERR, SQLITE_READONLY
# (a connection opened while the file was read-only stays so), SQLITE_CANTOPEN.
_REOPEN_AFTER = {10, 8, 14}


def make_engine(url: str) -> Engine:
    """Create an Engine for `url`; SQLite waits for locks instead of failing at once.

    Statement parameters are kept out of error messages: they can hold tokens. A SQLite
    connection that failed to read or write its file is replaced by a new one at its next
    use, so writes resume as soon as the file can be written again.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "config key database.url: not a database URL; expected e.g. sqlite:///timeman.sqlite3 "
            "or postgresql+psycopg://user@host/db"
        ) from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        connect_args = dict(POSTGRESQL_CONNECT_ARGS) if parsed.get_backend_name() == "postgresql" else {}
        # A server may close a pooled connection (a restart): PostgreSQL's are pinged before use. A
        # SQLite connection is a file handle; one that fails is replaced (_reopen_after_file_errors).
        ping = parsed.get_backend_name() != "sqlite"
        engine = create_engine(parsed, pool_pre_ping=ping, hide_parameters=True, connect_args=connect_args)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"config key database.url: unsupported database: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "handle_error", _reopen_after_file_errors)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _configure_postgresql)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _reopen_after_file_errors(context: ExceptionContext) -> None:
    """Count a SQLite file error as a lost connection: the pool then opens a new one."""
    code = getattr(context.original_exception, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _REOPEN_AFTER:
        context.is_disconnect = True


def shorten_lock_waits(engine: Engine, seconds: float) -> Callable[[], None]:
    """Make `engine`'s SQLite connections wait at most `seconds` for a lock; return the undo.

    Set on every checkout, so connections already in the pool follow too. The daemon and `poll`
    use it with `[database] lock_wait_seconds`: a locked database is an outage to poll through,
    not a wait. On PostgreSQL a statement unanswered for STATEMENT_SECONDS fails instead
    (storage/deadline.py).
    """
    if engine.dialect.name == "postgresql":
        return limit_statement_time(engine)
    if engine.dialect.name != "sqlite":
        return lambda: None
    statement = f"PRAGMA busy_timeout = {int(seconds * 1000)}"

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()

    def undo() -> None:
        event.remove(engine, "checkout", on_checkout)
        engine.dispose()  # the pooled connections keep their timeout: new ones get the default

    event.listen(engine, "checkout", on_checkout)
    return undo


def _configure_postgresql(dbapi_connection: Any, _record: Any) -> None:
    """Read timestamptz in UTC: the driver turns each value into the session's zone, and UTC is
    its fast path (a month of workdays reads about twice as fast as in 'Etc/UTC')."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()


def migrations_path() -> Path:
    """Where the Alembic scripts are, in a checkout and in an installed package alike."""
    return Path(str(files("poller.migrations")))


@database_call
def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic, on a connection of `engine`. A database at
    the head already is only read (Alembic's scripts and env.py are not run for nothing)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", str(migrations_path()))
    try:
        with no_time_limit(), engine.begin() as connection:
            alembic_config.attributes["connection"] = connection
            if connection.dialect.name == "postgresql":  # replicas upgrading at once take turns
                connection.execute(text("SELECT pg_advisory_xact_lock(7466544745363010561)"))
            at_head = revision == "head" and schema_revision(connection) == get_head_revision()
            if not at_head:
                command.upgrade(alembic_config, revision)
    except SQLAlchemyError as exc:
        kind = DatabaseUnavailable if is_outage(exc) else StorageError
        raise kind(f"database upgrade failed: {describe_db_error(exc)}") from None


@database_call
def check_schema(engine: Engine) -> None:
    """Refuse to poll into a database whose schema is not at the newest revision."""
    head = get_head_revision()
    try:
        with engine.connect() as connection:
            current = schema_revision(connection)
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(f"database unavailable: {describe_db_error(exc)}") from exc
    if current != head:
        raise StorageError(
            f"database schema is at revision {current or 'none'}, this poller needs {head}: "
            "run `timeman-poller db upgrade` (or `poll --migrate`)"
        )


def schema_revision(connection: Connection) -> str | None:
    """The Alembic revision the database of `connection` is at; None when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def get_head_revision() -> str:
    """The newest revision this poller ships."""
    head = _scripts().get_current_head()
    assert head is not None, "the migrations directory has no revision"
    return head


def is_known_revision(revision: str) -> bool:
    """Whether `revision` is one of this poller's migrations (else a newer poller wrote it)."""
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # alembic raises its own CommandError, or a KeyError, for an unknown id
        return False


@cache  # the scripts ship with the package: read once per process (each read parses every file)
def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(migrations_path()))


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite database URL; None for other databases, in-memory SQLite and SQLite
    URIs (`file:...`, left to SQLite)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database)
