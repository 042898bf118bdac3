"""What a database failure means for the caller, decided here once for the whole poller.

Storage raises the project's own errors (poller.errors) at its boundary, never SQLAlchemy's:
DatabaseUnavailable (down, locked, unreachable, its schema missing: keep the work and retry
later), RowsRefused (refused for their values, with the reason: retrying cannot help), or plain
DatabaseFailure (any other SQLAlchemy error). Every storage function that callers outside
storage run with an Engine is a `database_call`; a block that hands a connection out runs under
`failures_translated`.

Why at the functions and not in an engine's `handle_error` event, which can replace the
exception too: that event does not see a pool timeout, nor the errors storage raises itself
(a refused converter value, a failed COPY), and it would take from storage's own savepoints
(an ANALYZE that may fail, a refused row written apart) the SQLAlchemy errors they catch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from poller.errors import DatabaseFailure, DatabaseUnavailable, RowsRefused

__all__ = [
    "DatabaseFailure",
    "DatabaseUnavailable",
    "RowsRefused",
    "classify",
    "database_call",
    "describe_db_error",
    "failures_translated",
    "is_database_url",
    "is_outage",
    "is_refused_for_data",
    "project_error",
]

P = ParamSpec("P")
R = TypeVar("R")

# The database cannot take anything now: whatever was being written waits.
_NOT_NOW = (
    OperationalError,
    InterfaceError,
    InternalError,
    ProgrammingError,
    DisconnectionError,
    PoolTimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot take anything now, rather than refusing one entry."""
    if isinstance(exc, DatabaseFailure):
        return isinstance(exc, DatabaseUnavailable)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _NOT_NOW)


def is_refused_for_data(exc: BaseException) -> bool:
    """Whether the database (or its driver) refused a row for its values, not for being down.

    DataError and IntegrityError come from the server (the duplicate guard never raises: it is
    ON CONFLICT DO NOTHING); a StatementError that is no DBAPIError, a ValueError or an
    OverflowError come from turning a value into a parameter (a lone surrogate, an integer
    past 64 bits on SQLite).
    """
    if isinstance(exc, DatabaseFailure):
        return isinstance(exc, RowsRefused)
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError):
        return not isinstance(exc, DBAPIError)
    return isinstance(exc, ValueError | OverflowError)


def classify(exc: BaseException) -> DatabaseUnavailable | RowsRefused | None:
    """The project error `exc` amounts to, or None when it is neither (a bug, not the database).

    An outage wins over a refusal: a lost connection can surface as any DBAPIError. A project
    error is its own answer.
    """
    if isinstance(exc, DatabaseUnavailable | RowsRefused):
        return exc
    if isinstance(exc, DatabaseFailure):
        return None
    if is_outage(exc):
        return DatabaseUnavailable(describe_db_error(exc))
    if is_refused_for_data(exc):
        return RowsRefused(describe_db_error(exc))
    return None


def project_error(exc: SQLAlchemyError) -> DatabaseFailure:
    """The project error that stands for SQLAlchemy's `exc` outside storage."""
    return classify(exc) or DatabaseFailure(describe_db_error(exc))


@contextmanager
def failures_translated() -> Iterator[None]:
    """Raise the project error in place of each SQLAlchemy error of the block (the original is
    its __cause__, for a traceback)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise project_error(exc) from exc


def database_call(function: Callable[P, R]) -> Callable[P, R]:
    """Mark `function` as a storage boundary: its SQLAlchemy errors leave as project errors."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        with failures_translated():
            return function(*args, **kwargs)

    call.database_call = True  # type: ignore[attr-defined]  # what tests/test_layering.py checks
    return call


def describe_db_error(exc: BaseException) -> str:
    """One line about a database error, without the SQL statement and its parameters, and
    without PostgreSQL's CONTEXT (for a COPY, the line and the value refused: a user's data)."""
    original = getattr(exc, "orig", None) or exc
    message = str(original).partition("\nCONTEXT:")[0]
    return " ".join(message.split())[:300] or type(original).__name__


def is_database_url(text: str) -> bool:
    """Whether SQLAlchemy can parse `text` as a database URL (the engine is not opened)."""
    try:
        make_url(text)
    except ArgumentError:
        return False
    return True
