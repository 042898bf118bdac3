"""Norms, schedules, calendars and absences: what a day is judged against (revision 0010).

The versioned tables (user_norms, schedules, schedule_assignments, portal_calendars) are
append-only apart from closing a version: a change seen at T sets the current row's valid_to to
T and adds a row valid from T; nothing else is ever rewritten. Absences are per day; a refresh
marks a day the portal no longer lists with removed_at instead of deleting it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from poller.models.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


def current_only(table: str, *columns: str, open_column: str = "valid_to") -> Index:
    """At most one current row (`open_column` null) per key: two writers racing on one key
    (a rebalanced replica, a backfill beside the daemon) cannot both leave a current row."""
    where = text(f"{open_column} IS NULL")
    return Index(f"uq_{table}_current", *columns, unique=True, sqlite_where=where, postgresql_where=where)


def _validity() -> list[Column[object]]:
    """valid_from: when the version was first seen; valid_to: when a change replaced it (null: current)."""
    return [
        Column("valid_from", UTCDateTime(), nullable=False),
        Column("valid_to", UTCDateTime(), nullable=True),
    ]


# `timeman.settings` per user: times of day and durations in seconds from local midnight.
user_norms_table = Table(
    "user_norms",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("tracked", Boolean, nullable=True),  # UF_TIMEMAN
    Column("free", Boolean, nullable=True),  # UF_TM_FREE
    Column("max_start", Integer, nullable=True),
    Column("min_finish", Integer, nullable=True),
    Column("min_duration", Integer, nullable=True),
    Column("allowed_delta", Integer, nullable=True),
    Column("raw", JSON, nullable=False),
    *_validity(),
    UniqueConstraint("portal", "user_id", "valid_from"),
    current_only("user_norms", "portal", "user_id"),
)

# `timeman.schedule.get` by id; the first shift's figures as columns, every shift in `shifts`.
schedules_table = Table(
    "schedules",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("schedule_id", Integer, nullable=False),
    Column("name", String(255), nullable=True),
    Column("schedule_type", String(20), nullable=True),
    Column("report_period", String(20), nullable=True),
    Column("shifts", JSON, nullable=False),
    Column("shift_start", Integer, nullable=True),
    Column("shift_end", Integer, nullable=True),
    Column("shift_break", Integer, nullable=True),
    Column("work_days", String(7), nullable=True),  # "12345": Monday to Friday
    Column("violation_rules", JSON, nullable=False),
    Column("raw", JSON, nullable=False),
    *_validity(),
    UniqueConstraint("portal", "schedule_id", "valid_from"),
    current_only("schedules", "portal", "schedule_id"),
)

# The config's map of a user or a department to a schedule (no REST method gives it).
schedule_assignments_table = Table(
    "schedule_assignments",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("subject", String(10), nullable=False),  # 'user' or 'department'
    Column("subject_id", Integer, nullable=False),
    Column("schedule_id", Integer, nullable=False),
    *_validity(),
    UniqueConstraint("portal", "subject", "subject_id", "valid_from"),
    current_only("schedule_assignments", "portal", "subject", "subject_id"),
)

# The portal's calendar per year: ISO dates and weekday codes as comma-separated text.
portal_calendars_table = Table(
    "portal_calendars",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("year", Integer, nullable=False),
    Column("holidays", Text, nullable=False),  # "2026-01-01,2026-01-02"
    Column("moved_workdays", Text, nullable=False),  # working days moved onto a day off
    Column("week_holidays", String(20), nullable=False),  # "SA,SU"
    Column("source", String(20), nullable=False),  # 'portal', 'config', 'holidays-package'
    Column("raw", JSON, nullable=True),
    *_validity(),
    UniqueConstraint("portal", "year", "valid_from"),
    current_only("portal_calendars", "portal", "year"),
)

# One row per day an `absent` event covers, per user; removed_at: a refresh no longer saw it.
absences_table = Table(
    "absences",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("day", Date, nullable=False),  # the user's local date
    Column("event_id", String(50), nullable=False),
    Column("name", String(255), nullable=True),
    Column("whole_day", Boolean, nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False),
    Column("removed_at", UTCDateTime(), nullable=True),
    UniqueConstraint("portal", "user_id", "day", "event_id", "fetched_at"),
    Index("ix_absences_portal_day", "portal", "day"),
    current_only("absences", "portal", "user_id", "day", "event_id", open_column="removed_at"),
)
