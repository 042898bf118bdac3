"""What a poll cycle writes: snapshots of `timeman.status`, the runs, and the users a run could not store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from poller.fields import STATUS_FIELDS
from poller.models.base import Base, UTCDateTime, status_column_type

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
