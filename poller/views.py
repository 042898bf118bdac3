"""Typed descriptions of what the reports read: the latest_status and daily_worktime views and
the workdays table (a view until revision 0004), under one name each, and which one each
report reads (REPORTS): data the commands and the renderers share, not layout.

The views live in their own MetaData: migrations create them, never create_all. workdays is
the models' table itself.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table

from poller.fields import STATUS_FIELDS
from poller.models import UTCDateTime, status_column_type, workdays_table

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


def _name_columns() -> list[Column[object]]:
    """From the directory: "NAME LAST_NAME", and the first department's name; null when unknown."""
    return [Column("user_name", String), Column("department", String)]


def _staleness_columns() -> list[Column[object]]:
    """Whether the row may be out of date, and why (revision 0006): 'inactive',
    'not_in_directory' or 'failed'; since revision 0009 also 'portal_failed' (a cycle of the
    whole portal failed after the row was last seen). Null reason and stale false when the row
    is current."""
    return [Column("stale", Boolean), Column("stale_reason", String)]


latest_status = Table(
    "latest_status", view_metadata, *_snapshot_columns(), *_name_columns(), *_staleness_columns()
)

workdays = workdays_table

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
    *_name_columns(),
)

# The reports that list a view's rows, by name; the other reports build their own rows.
REPORTS: dict[str, Table] = {"workdays": workdays, "latest": latest_status, "daily": daily_worktime}
TIMESHEET = "timesheet"  # poller.history.timesheet
CORRECTIONS = "corrections"  # poller.history.corrections
COMPLIANCE = "compliance"  # poller.compliance.from_storage
REPORT_NAMES = (*REPORTS, TIMESHEET, CORRECTIONS, COMPLIANCE)

# `report corrections`: a revision's columns, in the order CSV and JSON carry them.
CORRECTION_COLUMNS = (
    "portal", "user_id", "user_name", "department", "work_date", "time_start", "record_id", "source",
    "field", "old_value", "new_value", "old_seen_at", "changed_at", "after_close",
)  # fmt: skip
