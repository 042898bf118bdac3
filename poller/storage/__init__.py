"""Read and write the poller's tables; every function takes the Engine it works on.

engine: connect and keep the schema at head; snapshots: write snapshots; runs:
poll_runs and poll_errors; cycles: store a portal's cycle, a refused value costing only its
user; tokens: OAuth pairs; reads: what the commands show; directory: users and departments;
records: the portal's workday records and backfill progress; workdays (rules in
workday_rules, offsets and local_dates for a day's local date): the workdays table, kept up to
date by every write of snapshots or records; revisions: what a later change replaced; closes:
closed months; failures: the project errors storage raises in place of SQLAlchemy's
(unavailable, rows refused); prune: the SQL of pruning; locks: the SQL of the replicas'
advisory locks; tasks: when a portal's chores last ran. The fast path: bulk (rows to the driver
as tuples), copy_in (COPY on PostgreSQL), keyed (index probes by key), statistics (ANALYZE a
table that grew), deadline (a statement time limit for a database that stops answering).
"""

from __future__ import annotations

from poller.storage import records as _records
from poller.storage.absences import AbsenceDay, AbsencesSaved, get_absences, save_absences
from poller.storage.calendars import CalendarMonth, get_calendar_days, save_calendar
from poller.storage.compliance_reads import WorkdayFigures, get_workday_figures, get_workday_portals
from poller.storage.cycles import BAD_VALUE, CycleSaved, save_portal_cycle
from poller.storage.directory import get_directory_age, get_directory_user_ids, save_departments, save_users
from poller.storage.engine import (
    check_schema,
    get_head_revision,
    is_known_revision,
    make_engine,
    migrations_path,
    sqlite_file,
    upgrade_database,
)
from poller.storage.failures import (
    DatabaseFailure,
    DatabaseUnavailable,
    RowsRefused,
    classify,
    database_call,
    describe_db_error,
    is_database_url,
    is_outage,
    is_refused_for_data,
)
from poller.storage.norms import (
    NormVersion,
    get_norms,
    norm_on,
    save_norms,
    save_schedule_assignments,
    save_schedules,
)
from poller.storage.raw_json import storable_raw
from poller.storage.reads import get_error_summary, get_latest_snapshots, get_recent_runs, get_view_rows
from poller.storage.records import RecordsSaved
from poller.storage.runs import ErrorRow, save_run_finished, save_run_started, write_errors
from poller.storage.snapshots import (
    SnapshotRow,
    StorageMode,
    snapshot_values,
    write_snapshots,
)
from poller.storage.tokens import get_tokens, save_tokens
from poller.storage.versioned import VersionsSaved

# records.py's writers, as storage's boundary: their SQLAlchemy errors leave as project errors
save_records = database_call(_records.save_records)
save_backfill_done = database_call(_records.save_backfill_done)
get_backfill_done = database_call(_records.get_backfill_done)

__all__ = [
    "BAD_VALUE",
    "AbsenceDay",
    "AbsencesSaved",
    "CalendarMonth",
    "CycleSaved",
    "DatabaseFailure",
    "DatabaseUnavailable",
    "ErrorRow",
    "NormVersion",
    "RecordsSaved",
    "RowsRefused",
    "SnapshotRow",
    "StorageMode",
    "VersionsSaved",
    "WorkdayFigures",
    "check_schema",
    "classify",
    "describe_db_error",
    "get_absences",
    "get_backfill_done",
    "get_calendar_days",
    "get_directory_age",
    "get_directory_user_ids",
    "get_error_summary",
    "get_head_revision",
    "get_latest_snapshots",
    "get_norms",
    "get_recent_runs",
    "get_tokens",
    "get_view_rows",
    "get_workday_figures",
    "get_workday_portals",
    "is_database_url",
    "is_known_revision",
    "is_outage",
    "is_refused_for_data",
    "make_engine",
    "migrations_path",
    "norm_on",
    "save_absences",
    "save_backfill_done",
    "save_calendar",
    "save_departments",
    "save_norms",
    "save_portal_cycle",
    "save_records",
    "save_run_finished",
    "save_run_started",
    "save_schedule_assignments",
    "save_schedules",
    "save_tokens",
    "save_users",
    "snapshot_values",
    "sqlite_file",
    "storable_raw",
    "upgrade_database",
    "write_errors",
    "write_snapshots",
]
