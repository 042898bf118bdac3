"""SQLAlchemy models of the public tables; Alembic revisions in migrations/ create them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from poller.fields import DEPARTMENT_FIELDS, RECORD_FIELDS, STATUS_FIELDS, USER_FIELDS, StatusField

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC instant on every backend.

    PostgreSQL keeps it as timestamptz; SQLite has no time zones, so the value is stored as
    naive UTC and marked UTC again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def status_column_type(spec: StatusField) -> TypeEngine[Any]:
    """The SQL type that keeps one field of fields.STATUS_FIELDS."""
    if spec.kind == "text":
        return String(spec.length)
    return _STATUS_TYPES[spec.kind]()


_STATUS_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "timestamp": UTCDateTime,
    "hms-duration": Integer,
    "int": Integer,
    "float": Float,
    "bool": Boolean,
    "date-derived": Date,
    "int-list": JSON,
}


def _field_columns(
    fields: tuple[StatusField, ...], key: str, required: tuple[str, ...] = ()
) -> list[Column[Any]]:
    """Columns for declared fields; `key` (the Bitrix24 id) is part of the primary key."""
    return [
        Column(
            spec.column,
            status_column_type(spec),
            primary_key=spec.column == key,
            nullable=spec.column != key and spec.column not in required,
        )
        for spec in fields
    ]


snapshots_table = Table(
    "snapshots",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("polled_at", UTCDateTime(), nullable=False),
    *(Column(spec.column, status_column_type(spec), nullable=True) for spec in STATUS_FIELDS),
    Column("raw", JSON, nullable=False),
    # In storage mode "changes" one row stands for identical polls from polled_at to
    # last_seen_at; in mode "all" last_seen_at = polled_at and seen_count = 1.
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("seen_count", Integer, nullable=False, default=1),
    UniqueConstraint("portal", "user_id", "polled_at"),
    Index("ix_snapshots_portal_work_date", "portal", "work_date"),
    # The snapshots of one workday: what the workdays table is rebuilt from.
    Index("ix_snapshots_portal_user_id_time_start", "portal", "user_id", "time_start"),
)


class Snapshot(Base):
    """One user's `timeman.status` as seen at `polled_at`.

    The status columns come from fields.STATUS_FIELDS; only the columns code reads by name are
    annotated here; the others are mapped all the same (`Snapshot.ip_open`, `row.lat_open`).
    """

    __table__ = snapshots_table

    id: Mapped[int]
    portal: Mapped[str]
    user_id: Mapped[int]
    polled_at: Mapped[datetime]
    status: Mapped[str | None]
    time_start: Mapped[datetime | None]
    duration_seconds: Mapped[int | None]
    time_leaks_seconds: Mapped[int | None]
    tz_offset: Mapped[int | None]
    record_id: Mapped[int | None]
    raw: Mapped[dict[str, Any]]
    last_seen_at: Mapped[datetime]
    seen_count: Mapped[int]


class PollRun(Base):
    """One portal's poll cycle (rows from before revision 0005 cover every portal: portal NULL).

    `outcome`: 'finished'; 'interrupted' when a stop cut the cycle; 'failed' when the portal
    failed as a whole (its users could not even be listed, or a portal-wide error); NULL
    while it runs (and for good when its process died). `replica`: the daemon that ran it.
    """

    __tablename__ = "poll_runs"
    __table_args__ = (Index("ix_poll_runs_portal_started_at", "portal", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    users_ok: Mapped[int] = mapped_column(Integer, default=0)
    users_failed: Mapped[int] = mapped_column(Integer, default=0)
    portal: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(20))
    replica: Mapped[str | None] = mapped_column(String(200))


class PollError(Base):
    """A user (or, with user_id NULL, a whole portal) that a cycle could not store.

    error_key (run, user, moment, code) makes a replayed spool entry a no-op: the insert skips
    a key the portal already has. Rows from before revision 0004 have "legacy:<id>".
    """

    __tablename__ = "poll_errors"
    __table_args__ = (
        Index("ix_poll_errors_portal_occurred_at", "portal", "occurred_at"),
        # A user's errors since a moment: latest_status's "failed since" (revision 0006).
        Index("ix_poll_errors_portal_user_id_occurred_at", "portal", "user_id", "occurred_at"),
        UniqueConstraint("portal", "error_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("poll_runs.id"), index=True)
    portal: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    code: Mapped[str] = mapped_column(String(100))
    http_status: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    error_key: Mapped[str] = mapped_column(String(200))


class OAuthToken(Base):
    """The newest OAuth token pair of a portal; it wins over the config's seed tokens."""

    __tablename__ = "oauth_tokens"

    portal: Mapped[str] = mapped_column(String(200), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# The directory: `user.get` and `department.get` as last refreshed. A user missing from a
# full refresh is kept with active = false: history still names them.
users_table = Table(
    "users",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    *_field_columns(USER_FIELDS, "user_id"),
    Column("updated_at", UTCDateTime(), nullable=False),  # the refresh that last listed (or missed) them
)

departments_table = Table(
    "departments",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    *_field_columns(DEPARTMENT_FIELDS, "department_id"),
)

# The portal's own workday records (`timeman.record.list`), one row per record, changed in place.
workday_records_table = Table(
    "workday_records",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    *_field_columns(RECORD_FIELDS, "record_id", required=("user_id", "start_time")),
    Column("work_date", Date, nullable=True),  # the local date of startTime in its own offset
    Column("raw", JSON, nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False),  # when the stored values were fetched
    Index("ix_workday_records_portal_user_id_start_time", "portal", "user_id", "start_time"),
    Index("ix_workday_records_portal_work_date", "portal", "work_date"),
)

# Which users a backfill of exactly [date_from, date_to] has finished: a resumed run skips them.
backfill_progress_table = Table(
    "backfill_progress",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("date_from", Date, primary_key=True),
    Column("date_to", Date, primary_key=True),
    Column("finished_at", UTCDateTime(), nullable=False),
)

# One row per portal, user and workday (a TIME_START), kept up to date on write by
# poller.storage.workdays in the transaction that stores the snapshots or records it follows
# from; a report reads it like any indexed table. Figures come from the portal's closed
# record where there is one (source "record"), else from the polls (source "polls").
workdays_table = Table(
    "workdays",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("work_date", Date, nullable=True),
    Column("time_start", UTCDateTime(), primary_key=True),
    Column("time_finish", UTCDateTime(), nullable=True),
    Column("tz_offset", Integer, nullable=True),  # the user's offset from UTC that day, in seconds
    Column("status", String(32), nullable=True),
    Column("worked_seconds", Integer, nullable=True),
    Column("worked_is_estimate", Boolean, nullable=False),
    Column("leaks_seconds", Integer, nullable=True),
    Column("first_seen_at", UTCDateTime(), nullable=True),  # null: no poll saw the day
    Column("last_seen_at", UTCDateTime(), nullable=True),
    Column("pending_approval", Boolean, nullable=False),
    Column("user_name", String(511), nullable=True),
    Column("department", String(255), nullable=True),
    Column("source", String(8), nullable=False),
    Column("record_id", Integer, nullable=True),
    # How many times the day's figures or its record changed after they were stored (distinct
    # moments in workday_revisions), and how many of those came after its month was closed.
    Column("corrections", Integer, nullable=False, default=0, server_default="0"),
    Column("corrections_after_close", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_workdays_work_date", "work_date"),
    Index("ix_workdays_user_id_work_date", "user_id", "work_date"),
)

# Every change of a stored workday record (source "record") and of a closed past day's figures
# in workdays (source "workday"), one row per field, kept by poller.storage.revisions. Append-only:
# the poller never updates or deletes a row (prune past the retention floor may).
workday_revisions_table = Table(
    "workday_revisions",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("work_date", Date, nullable=True),  # the day's local date before the change
    Column("time_start", UTCDateTime(), nullable=False),  # the day's (record's) start before the change
    Column("record_id", Integer, nullable=True),
    Column("source", String(8), nullable=False),
    Column("field", String(64), nullable=False),
    Column("old_value", Text, nullable=True),  # canonical text (poller.history.canonical); null: none
    Column("new_value", Text, nullable=True),
    Column("old_seen_at", UTCDateTime(), nullable=True),  # when the old value was stored (seen)
    Column("changed_at", UTCDateTime(), nullable=False),  # when the new value was first seen
    Column("after_close", Boolean, nullable=False),  # the day's month was closed when it came
    UniqueConstraint(
        "portal", "source", "user_id", "time_start", "field", "changed_at", name="uq_workday_revisions_change"
    ),
    Index("ix_workday_revisions_portal_work_date", "portal", "work_date"),
    Index("ix_workday_revisions_portal_user_id_time_start", "portal", "user_id", "time_start"),
    Index("ix_workday_revisions_portal_record_id", "portal", "record_id"),
)

# A month's close per portal: the digest of the canonical rendering (poller.history.canonical) as it
# stood. Closing again (--force) adds a row with the next sequence; none is ever replaced.
month_closes_table = Table(
    "month_closes",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("month", Date, nullable=False),  # its first day
    Column("sequence", Integer, nullable=False),  # 1: the first close; 2, 3...: closed again
    Column("closed_at", UTCDateTime(), nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256, hex
    Column("row_count", Integer, nullable=False),  # canonical lines under the digest
    Column("canonical_version", Integer, nullable=False),
    UniqueConstraint("portal", "month", "sequence"),
)

# The workdays of a closed month as they stood at the close: the timesheet `--as-closed`.
closed_workdays_table = Table(
    "closed_workdays",
    Base.metadata,
    Column("close_id", ForeignKey("month_closes.id"), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("time_start", UTCDateTime(), primary_key=True),
    Column("work_date", Date, nullable=True),
    Column("time_finish", UTCDateTime(), nullable=True),
    Column("status", String(32), nullable=True),
    Column("worked_seconds", Integer, nullable=True),
    Column("worked_is_estimate", Boolean, nullable=False),
    Column("leaks_seconds", Integer, nullable=True),
    Column("pending_approval", Boolean, nullable=False),
    Column("user_name", String(511), nullable=True),
    Column("department", String(255), nullable=True),
    Column("source", String(8), nullable=False),
    Column("record_id", Integer, nullable=True),
    Column("corrections", Integer, nullable=False),
)

# The canonical lines a close's digest was computed over, by row key: what `verify` compares.
closed_rows_table = Table(
    "closed_rows",
    Base.metadata,
    Column("close_id", ForeignKey("month_closes.id"), primary_key=True),
    Column("row_key", String(400), primary_key=True),
    Column("line", Text, nullable=False),
)


class PortalTask(Base):
    """When a portal's periodic task ('directory', 'reconcile') was last tried and last done.

    In the database, not in a process: `poll` under a timer, `run`, and every replica then
    agree on when the directory refresh and the daily reconcile are due. `last_error` is the
    last failure's one line (free of secrets), cleared when the task succeeds.
    """

    __tablename__ = "portal_tasks"

    portal: Mapped[str] = mapped_column(String(200), primary_key=True)
    task: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_tried_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
