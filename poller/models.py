"""SQLAlchemy models of the public tables; Alembic revisions in migrations/ create them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class Snapshot(Base):
    """One user's `timeman.status` as seen at `polled_at`."""

    __tablename__ = "snapshots"
    __table_args__ = (
        UniqueConstraint("portal", "user_id", "polled_at"),
        Index("ix_snapshots_portal_work_date", "portal", "work_date"),
        Index("ix_snapshots_portal_user_id_work_date", "portal", "user_id", "work_date", "time_start"),
        Index("ix_snapshots_work_date", "work_date"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    portal: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(Integer)
    polled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str | None] = mapped_column(String(32))
    time_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    time_finish: Mapped[datetime | None] = mapped_column(UTCDateTime())
    time_finish_default: Mapped[datetime | None] = mapped_column(UTCDateTime())
    work_date: Mapped[date | None] = mapped_column(Date)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    time_leaks_seconds: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool | None] = mapped_column(Boolean)
    tz_offset: Mapped[int | None] = mapped_column(Integer)
    ip_open: Mapped[str | None] = mapped_column(String(64))
    ip_close: Mapped[str | None] = mapped_column(String(64))
    lat_open: Mapped[float | None] = mapped_column(Float)
    lon_open: Mapped[float | None] = mapped_column(Float)
    lat_close: Mapped[float | None] = mapped_column(Float)
    lon_close: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    # In storage mode "changes" one row stands for identical polls from polled_at to
    # last_seen_at; in mode "all" last_seen_at = polled_at and seen_count = 1.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_count: Mapped[int] = mapped_column(Integer, default=1)


class PollRun(Base):
    """One poll cycle over every configured portal."""

    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    users_ok: Mapped[int] = mapped_column(Integer, default=0)
    users_failed: Mapped[int] = mapped_column(Integer, default=0)


class PollError(Base):
    """A user (or, with user_id NULL, a whole portal) that a cycle could not store."""

    __tablename__ = "poll_errors"
    __table_args__ = (Index("ix_poll_errors_portal_occurred_at", "portal", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("poll_runs.id"), index=True)
    portal: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    code: Mapped[str] = mapped_column(String(100))
    http_status: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)


class OAuthToken(Base):
    """The newest OAuth token pair of a portal; it wins over the config's seed tokens."""

    __tablename__ = "oauth_tokens"

    portal: Mapped[str] = mapped_column(String(200), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
