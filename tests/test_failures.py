"""Storage raises the project's errors on a real database failure, never SQLAlchemy's."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from poller import storage
from poller.errors import PollerError, StorageError
from poller.storage import maintenance
from poller.storage.engine import shorten_lock_waits
from poller.storage.locks import LockSession, lock_engine

AT = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
NOBODY_LISTENS = "postgresql+psycopg://poller:s3cret@127.0.0.1:1/worktime"  # port 1: refused at once


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a SQLite file another connection holds an exclusive lock on."""
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = storage.make_engine(f"sqlite:///{path}")
    undo = shorten_lock_waits(engine, 0.05)
    yield engine
    undo()
    holder.execute("ROLLBACK")
    holder.close()
    engine.dispose()


def _raised(call: object) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_locked_sqlite_file_is_database_unavailable(locked_sqlite: Engine) -> None:
    error = _raised(lambda: storage.save_run_started(locked_sqlite, AT))
    assert type(error) is storage.DatabaseUnavailable
    assert not isinstance(error, SQLAlchemyError)
    assert "locked" in str(error)
    assert isinstance(error.__cause__, SQLAlchemyError)  # kept for a traceback


def test_a_sqlite_file_in_a_missing_directory_is_database_unavailable(tmp_path: Path) -> None:
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'gone' / 'db.sqlite3'}")
    error = _raised(lambda: storage.get_recent_runs(engine))
    assert type(error) is storage.DatabaseUnavailable
    assert "unable to open" in str(error)
    engine.dispose()


def test_a_postgresql_nobody_listens_on_is_database_unavailable_without_its_password() -> None:
    engine = storage.make_engine(NOBODY_LISTENS)
    error = _raised(lambda: storage.get_tokens(engine, "acme"))
    assert type(error) is storage.DatabaseUnavailable
    assert isinstance(error, StorageError) and isinstance(error, PollerError)  # the CLI shows one line
    assert "s3cret" not in str(error)
    engine.dispose()


def test_an_operator_command_names_the_database_and_keeps_the_kind_of_failure() -> None:
    with pytest.raises(storage.DatabaseUnavailable) as caught, maintenance.open_database(NOBODY_LISTENS):
        pass
    message = str(caught.value)
    assert message.startswith("database postgresql+psycopg://poller:***@127.0.0.1:1/worktime: ")
    assert "s3cret" not in message


def test_the_lock_session_of_a_database_nobody_listens_on_is_database_unavailable() -> None:
    engine = lock_engine(NOBODY_LISTENS, "timeman-poller:test", connect_timeout=1)
    error = _raised(lambda: LockSession.open(engine, "timeman-poller:test", statement_seconds=1.0))
    assert type(error) is storage.DatabaseUnavailable
    engine.dispose()


def test_rows_refused_for_their_values_say_why(engine: Engine) -> None:
    @storage.database_call
    def insert_twice(engine: Engine) -> None:
        with engine.begin() as connection:
            connection.execute(text("CREATE TEMPORARY TABLE t_failures (k INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t_failures VALUES (1), (1)"))

    error = _raised(lambda: insert_twice(engine))
    assert type(error) is storage.RowsRefused
    assert error.reason and "INSERT" not in error.reason  # type: ignore[attr-defined]  # no SQL, no values


def test_an_outage_and_a_refusal_are_told_apart_inside_storage(engine: Engine) -> None:
    """A missing table is an outage (the entry waits); a duplicate key is the rows' own fault."""
    with pytest.raises(SQLAlchemyError) as missing, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table_here"))
    assert isinstance(storage.classify(missing.value), storage.DatabaseUnavailable)
    with pytest.raises(IntegrityError) as duplicate, engine.begin() as connection:
        connection.execute(text("CREATE TEMPORARY TABLE t_layering (k INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t_layering VALUES (1), (1)"))
    refused = storage.classify(duplicate.value)
    assert isinstance(refused, storage.RowsRefused)
    assert storage.classify(RuntimeError("a bug")) is None


def test_a_project_error_is_its_own_classification() -> None:
    unavailable = storage.DatabaseUnavailable("down")
    refused = storage.RowsRefused("too long")
    assert storage.classify(unavailable) is unavailable and storage.is_outage(unavailable)
    assert storage.classify(refused) is refused and storage.is_refused_for_data(refused)
    assert storage.classify(storage.DatabaseFailure("odd")) is None
    assert not storage.is_outage(refused) and not storage.is_refused_for_data(unavailable)


def test_a_pool_timeout_is_database_unavailable() -> None:
    @storage.database_call
    def wait_for_a_connection() -> None:
        raise PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached")

    with pytest.raises(storage.DatabaseUnavailable, match="QueuePool limit"):
        wait_for_a_connection()


def test_a_database_url_is_checked_by_storage() -> None:
    assert storage.is_database_url("sqlite:///x.db")
    assert storage.is_database_url("postgresql+psycopg://u@h/db")
    assert not storage.is_database_url("not a url")
