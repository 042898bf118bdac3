"""Typed descriptions of the SQL views (created by revision 0003), for reading them.

They live in their own MetaData: the views are created by migrations, never as tables.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table

from poller.fields import STATUS_FIELDS
from poller.models import UTCDateTime, status_column_type

view_metadata = MetaData()


def _snapshot_columns() -> list[Column[object]]:
    """The latest_status columns the reports read: the snapshot's key, then its status fields."""
    return [
        Column("portal", String),
        Column("user_id", Integer),
        Column("polled_at", UTCDateTime()),
        Column("last_seen_at", UTCDateTime()),
        Column("seen_count", Integer),
        *(Column(spec.column, status_column_type(spec)) for spec in STATUS_FIELDS if spec.in_latest_view),
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
