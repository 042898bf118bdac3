"""Typed descriptions of the SQL views (created by revision 0003), for reading them.

They live in their own MetaData: the views are created by migrations, never as tables.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table

from poller.models import UTCDateTime

view_metadata = MetaData()


def _snapshot_columns() -> list[Column[object]]:
    return [
        Column("portal", String),
        Column("user_id", Integer),
        Column("polled_at", UTCDateTime()),
        Column("last_seen_at", UTCDateTime()),
        Column("seen_count", Integer),
        Column("status", String),
        Column("time_start", UTCDateTime()),
        Column("time_finish", UTCDateTime()),
        Column("time_finish_default", UTCDateTime()),
        Column("work_date", Date),
        Column("duration_seconds", Integer),
        Column("time_leaks_seconds", Integer),
        Column("active", Boolean),
        Column("tz_offset", Integer),
    ]


latest_status = Table("latest_status", view_metadata, *_snapshot_columns())

workdays = Table(
    "workdays",
    view_metadata,
    Column("portal", String),
    Column("user_id", Integer),
    Column("work_date", Date),
    Column("time_start", UTCDateTime()),
    Column("time_finish", UTCDateTime()),
    Column("status", String),
    Column("worked_seconds", Integer),
    Column("worked_is_estimate", Boolean),
    Column("leaks_seconds", Integer),
    Column("first_seen_at", UTCDateTime()),
    Column("last_seen_at", UTCDateTime()),
    Column("pending_approval", Boolean),
)

daily_worktime = Table(
    "daily_worktime",
    view_metadata,
    Column("portal", String),
    Column("user_id", Integer),
    Column("work_date", Date),
    Column("worked_seconds", Integer),
    Column("leaks_seconds", Integer),
    Column("workdays", Integer),
    Column("has_estimate", Boolean),
)
