"""Read and write the poller's tables; every function takes the Engine it works on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from poller.errors import ConfigError, StorageError
from poller.models import OAuthToken, PollError, PollRun, Snapshot
from poller.status import ParsedStatus

logger = logging.getLogger(__name__)

StorageMode = Literal["all", "changes"]


@dataclass(frozen=True)
class SnapshotRow:
    """A parsed status ready to be written for one portal and user."""

    portal: str
    user_id: int
    polled_at: datetime
    parsed: ParsedStatus


@dataclass(frozen=True)
class ErrorRow:
    """A failure to record in poll_errors; `message` must already be free of secrets."""

    portal: str
    user_id: int | None
    occurred_at: datetime
    code: str
    http_status: int | None
    message: str


def make_engine(url: str) -> Engine:
    """Create an Engine for `url`; SQLite waits for locks instead of failing at once."""
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
        engine = create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"config key database.url: unsupported database: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def migrations_path() -> Path:
    """Where the Alembic scripts are, in a checkout and in an installed package alike."""
    return Path(str(files("poller.migrations")))


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic, on a connection of `engine`."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", str(migrations_path()))
    try:
        with engine.begin() as connection:
            alembic_config.attributes["connection"] = connection
            command.upgrade(alembic_config, revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"database upgrade failed: {describe_db_error(exc)}") from None


def check_schema(engine: Engine) -> None:
    """Refuse to poll into a database whose schema is not at the newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(migrations_path())).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise StorageError(f"database unavailable: {describe_db_error(exc)}") from None
    if current != head:
        raise StorageError(
            f"database schema is at revision {current or 'none'}, this poller needs {head}: "
            "run `timeman-poller db upgrade` (or `poll --migrate`)"
        )


def describe_db_error(exc: SQLAlchemyError) -> str:
    """One line about a database error, without the SQL statement and its parameters."""
    original = getattr(exc, "orig", None) or exc
    return " ".join(str(original).split())[:300] or type(original).__name__


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


def save_portal_cycle(
    engine: Engine,
    run_id: int | None,
    snapshots: Sequence[SnapshotRow],
    errors: Sequence[ErrorRow],
    mode: StorageMode = "all",
) -> None:
    """Write one portal's snapshots and errors of a cycle in one transaction.

    In mode "changes" a snapshot equal to the user's newest row only extends that row
    (last_seen_at, seen_count) instead of adding one.
    """
    with engine.begin() as connection:
        inserts = list(snapshots)
        if mode == "changes" and snapshots:
            inserts = _extend_unchanged(connection, snapshots)
        if inserts:
            connection.execute(_insert_new_snapshots(connection), [_snapshot_values(row) for row in inserts])
        if errors:
            connection.execute(insert(PollError), [_error_values(run_id, row) for row in errors])


def _insert_new_snapshots(connection: Connection) -> Any:
    """INSERT that skips a snapshot already stored: replaying a spool must not fail or double."""
    columns = ["portal", "user_id", "polled_at"]
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(Snapshot).on_conflict_do_nothing(index_elements=columns)
    if connection.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(Snapshot).on_conflict_do_nothing(index_elements=columns)
    return insert(Snapshot)


_COMPARED = (
    "status",
    "time_start",
    "time_finish",
    "time_finish_default",
    "work_date",
    "duration_seconds",
    "time_leaks_seconds",
    "active",
    "tz_offset",
    "ip_open",
    "ip_close",
    "lat_open",
    "lon_open",
    "lat_close",
    "lon_close",
)


def _extend_unchanged(connection: Connection, snapshots: Sequence[SnapshotRow]) -> list[SnapshotRow]:
    """Extend the newest rows that the new snapshots repeat; return the snapshots to insert."""
    portal = snapshots[0].portal
    newest = (
        select(Snapshot.user_id, func.max(Snapshot.polled_at).label("polled_at"))
        .where(Snapshot.portal == portal)
        .group_by(Snapshot.user_id)
        .subquery()
    )
    columns = [Snapshot.id, Snapshot.user_id, Snapshot.last_seen_at, Snapshot.raw]
    columns += [getattr(Snapshot, name) for name in _COMPARED]
    previous = {
        row.user_id: row
        for row in connection.execute(
            select(*columns).join(
                newest,
                (Snapshot.portal == portal)
                & (Snapshot.user_id == newest.c.user_id)
                & (Snapshot.polled_at == newest.c.polled_at),
            )
        )
    }
    inserts: list[SnapshotRow] = []
    extended: list[dict[str, object]] = []
    for row in snapshots:
        before = previous.get(row.user_id)
        values = _snapshot_values(row)
        if (
            before is not None
            and row.polled_at > before.last_seen_at
            and all(getattr(before, name) == values[name] for name in _COMPARED)
        ):
            extended.append({"row_id": before.id, "seen_at": row.polled_at})
        else:
            inserts.append(row)
    if extended:
        connection.execute(
            update(Snapshot)
            .where(Snapshot.id == bindparam("row_id"))
            .values(last_seen_at=bindparam("seen_at"), seen_count=Snapshot.seen_count + 1),
            extended,
        )
    return inserts


def prune_snapshots(engine: Engine, older_than: datetime) -> int:
    """Delete snapshots last seen before `older_than`, never a user's newest row."""
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
    with engine.begin() as connection:
        result = connection.execute(delete(Snapshot).where(Snapshot.last_seen_at < older_than, has_newer))
    return int(result.rowcount or 0)


def get_latest_snapshots(engine: Engine, portal: str | None = None) -> list[Snapshot]:
    """The newest snapshot of every portal and user, ordered by portal and user."""
    newest = (
        select(Snapshot.portal, Snapshot.user_id, func.max(Snapshot.polled_at).label("polled_at"))
        .group_by(Snapshot.portal, Snapshot.user_id)
        .subquery()
    )
    query = (
        select(Snapshot)
        .join(
            newest,
            (Snapshot.portal == newest.c.portal)
            & (Snapshot.user_id == newest.c.user_id)
            & (Snapshot.polled_at == newest.c.polled_at),
        )
        .order_by(Snapshot.portal, Snapshot.user_id)
    )
    if portal is not None:
        query = query.where(Snapshot.portal == portal)
    with Session(engine) as session:
        return list(session.scalars(query))


def save_tokens(
    engine: Engine, portal: str, access_token: str, refresh_token: str | None, now: datetime
) -> None:
    """Store a portal's new token pair at once: the old refresh token is already dead."""
    with Session(engine) as session, session.begin():
        session.merge(
            OAuthToken(
                portal=portal,
                access_token=access_token,
                refresh_token=refresh_token,
                updated_at=now,
            )
        )


def get_tokens(engine: Engine, portal: str) -> tuple[str, str | None] | None:
    """The stored token pair of `portal`, or None when it was never refreshed."""
    with Session(engine) as session:
        row = session.get(OAuthToken, portal)
        return None if row is None else (row.access_token, row.refresh_token)


def _snapshot_values(row: SnapshotRow) -> dict[str, object]:
    parsed = row.parsed
    return {
        "portal": row.portal,
        "user_id": row.user_id,
        "polled_at": row.polled_at,
        "status": parsed.status,
        "time_start": parsed.time_start,
        "time_finish": parsed.time_finish,
        "time_finish_default": parsed.time_finish_default,
        "work_date": parsed.work_date,
        "duration_seconds": parsed.duration_seconds,
        "time_leaks_seconds": parsed.time_leaks_seconds,
        "active": parsed.active,
        "tz_offset": parsed.tz_offset,
        "ip_open": parsed.ip_open,
        "ip_close": parsed.ip_close,
        "lat_open": parsed.lat_open,
        "lon_open": parsed.lon_open,
        "lat_close": parsed.lat_close,
        "lon_close": parsed.lon_close,
        "raw": parsed.raw,
        "last_seen_at": row.polled_at,
        "seen_count": 1,
    }


def _error_values(run_id: int | None, row: ErrorRow) -> dict[str, object]:
    return {
        "run_id": run_id,
        "portal": row.portal,
        "user_id": row.user_id,
        "occurred_at": row.occurred_at,
        "code": row.code[:100],
        "http_status": row.http_status,
        "message": row.message,
    }


def get_view_rows(
    engine: Engine,
    view: Table,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    portals: Sequence[str] = (),
    users: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Rows of one report view, filtered on work_date, portal and user, in a stable order."""
    query = select(view)
    if date_from is not None:
        query = query.where(view.c.work_date >= date_from)
    if date_to is not None:
        query = query.where(view.c.work_date <= date_to)
    if portals:
        query = query.where(view.c.portal.in_(portals))
    if users:
        query = query.where(view.c.user_id.in_(users))
    order = [view.c.portal, view.c.user_id]
    if "work_date" in view.c:
        order.append(view.c.work_date)
    if "time_start" in view.c:
        order.append(view.c.time_start)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query.order_by(*order))]


def get_recent_runs(engine: Engine, limit: int = 10) -> list[PollRun]:
    """The newest poll_runs rows, newest first."""
    with Session(engine) as session:
        return list(session.scalars(select(PollRun).order_by(PollRun.id.desc()).limit(limit)))


def get_error_summary(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    """Errors since `since` per portal and code: how many, users hit, the last message."""
    query = (
        select(
            PollError.portal,
            PollError.code,
            func.count().label("count"),
            func.count(func.distinct(PollError.user_id)).label("users"),
            func.max(PollError.occurred_at).label("last_at"),
        )
        .where(PollError.occurred_at >= since)
        .group_by(PollError.portal, PollError.code)
        .order_by(PollError.portal, func.count().desc())
    )
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
        for row in rows:
            row["last_message"] = connection.execute(
                select(PollError.message)
                .where(PollError.portal == row["portal"], PollError.code == row["code"])
                .order_by(PollError.occurred_at.desc())
                .limit(1)
            ).scalar_one()
    return rows
