"""What a database failure means for the caller, decided here once for the whole poller.

Two outcomes matter outside storage: the database cannot take anything now (down, locked,
unreachable, its schema missing: keep the work and retry later), or it refused these rows for
their values (retrying cannot help: record the reason). `classify` turns a failure into one of
the two project errors; code outside storage catches `DatabaseFailure` and never imports
SQLAlchemy's exceptions.
"""

from __future__ import annotations

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

from poller.errors import StorageError
from poller.storage.engine import describe_db_error

__all__ = [
    "DatabaseFailure",
    "DatabaseUnavailable",
    "RowsRefused",
    "classify",
    "is_database_url",
    "is_outage",
    "is_refused_for_data",
]

# Every failure the database layer raises: what callers of storage catch to record and go on.
DatabaseFailure = SQLAlchemyError


class DatabaseUnavailable(StorageError):
    """The database cannot take anything now (down, locked, connection lost): retry later."""


class RowsRefused(StorageError):
    """The database refused the rows for their values; `reason` says why, retrying cannot help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError):
        return not isinstance(exc, DBAPIError)
    return isinstance(exc, ValueError | OverflowError)


def classify(exc: BaseException) -> DatabaseUnavailable | RowsRefused | None:
    """The project error `exc` amounts to, or None when it is neither (a bug, not the database).

    An outage wins over a refusal: a lost connection can surface as any DBAPIError.
    """
    if is_outage(exc):
        return DatabaseUnavailable(describe_db_error(exc))
    if is_refused_for_data(exc):
        return RowsRefused(describe_db_error(exc))
    return None


def is_database_url(text: str) -> bool:
    """Whether SQLAlchemy can parse `text` as a database URL (the engine is not opened)."""
    try:
        make_url(text)
    except ArgumentError:
        return False
    return True
