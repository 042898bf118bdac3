"""SQLAlchemy models of the public tables; Alembic revisions in migrations/ create them.

One module per subject; every name is exported here, so `from poller.models import X` works
and `Base.metadata` holds every table once this package is imported (migrations/env.py).
"""

from __future__ import annotations

from poller.models.base import NAMING_CONVENTION, Base, UTCDateTime, status_column_type
from poller.models.closes import closed_rows_table, closed_workdays_table, month_closes_table
from poller.models.directory import departments_table, users_table
from poller.models.norms import (
    absences_table,
    portal_calendars_table,
    schedule_assignments_table,
    schedules_table,
    user_norms_table,
)
from poller.models.polls import PollError, PollRun, Snapshot, snapshots_table
from poller.models.portal_state import DirectoryVersion, OAuthToken, PortalTask
from poller.models.workdays import (
    backfill_progress_table,
    workday_records_table,
    workday_revisions_table,
    workdays_table,
)

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "DirectoryVersion",
    "OAuthToken",
    "PollError",
    "PollRun",
    "PortalTask",
    "Snapshot",
    "UTCDateTime",
    "absences_table",
    "backfill_progress_table",
    "closed_rows_table",
    "closed_workdays_table",
    "departments_table",
    "month_closes_table",
    "portal_calendars_table",
    "schedule_assignments_table",
    "schedules_table",
    "snapshots_table",
    "status_column_type",
    "user_norms_table",
    "users_table",
    "workday_records_table",
    "workday_revisions_table",
    "workdays_table",
]
