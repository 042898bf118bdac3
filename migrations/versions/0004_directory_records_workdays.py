"""The directory (users, departments), the portal's workday records, backfill progress; workdays
as a table kept on write, with names; the record id on snapshots; a replay key for poll_errors.

- users, departments: `user.get` and `department.get` as last refreshed.
- workday_records: `timeman.record.list` items; backfill_progress: finished users of a backfill.
- workdays becomes a table (same name and columns, plus tz_offset, user_name, department,
  source and record_id), filled here from the snapshots with the rules the poller keeps it by
  (poller.storage.workday_rules): a running pause no longer counts as worked, and worked time
  is held between 0 and the time elapsed. latest_status and daily_worktime gain user_name
  and department; daily_worktime now reads the workdays table.
- snapshots.record_id: the answer's `ID` (newest builds), filled from the raw JSON of old rows.
  The snapshots index on work_date served only the old views; one on (portal, user_id,
  time_start) finds a workday's snapshots.
- poll_errors.error_key, unique per portal: a replayed spool entry adds no row. Old rows get
  "legacy:<id>" (they may hold the doubles issue #9 describes; none is deleted).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)

# The first department id in users.department_ids (a JSON list), per dialect.
_FIRST_DEPARTMENT = {
    "sqlite": "json_extract(u.department_ids, '$[0]')",
    "postgresql": (
        "CASE WHEN json_typeof(u.department_ids) = 'array' THEN (u.department_ids ->> 0)::integer END"
    ),
}

LATEST_STATUS = """
CREATE VIEW latest_status AS
SELECT s.*,
       NULLIF(TRIM(COALESCE(u.name, '') || ' ' || COALESCE(u.last_name, '')), '') AS user_name,
       d.name AS department
FROM snapshots s
LEFT JOIN users u ON u.portal = s.portal AND u.user_id = s.user_id
LEFT JOIN departments d ON d.portal = s.portal AND d.department_id = {first_department}
WHERE s.polled_at = (
    SELECT max(m.polled_at) FROM snapshots m WHERE m.portal = s.portal AND m.user_id = s.user_id
)
"""

# A day's names are the same on every row of its user (the directory updates them together).
DAILY_WORKTIME = """
CREATE VIEW daily_worktime AS
SELECT portal,
       user_id,
       work_date,
       SUM(worked_seconds) AS worked_seconds,
       SUM(leaks_seconds) AS leaks_seconds,
       COUNT(*) AS workdays,
       MAX(CASE WHEN worked_is_estimate THEN 1 ELSE 0 END) = 1 AS has_estimate,
       MAX(user_name) AS user_name,
       MAX(department) AS department
FROM workdays
GROUP BY portal, user_id, work_date
"""

# The answer's ID, where it is a whole number that fits (as the parser takes it).
_RECORD_ID_FILL = {
    "sqlite": """
UPDATE snapshots SET record_id = CAST(json_extract(raw, '$.ID') AS INTEGER)
WHERE json_type(raw, '$.ID') IN ('integer', 'text')
  AND json_extract(raw, '$.ID') NOT GLOB '*[^0-9]*'
  AND length(json_extract(raw, '$.ID')) BETWEEN 1 AND 9
  AND CAST(json_extract(raw, '$.ID') AS INTEGER) >= 1
""",
    "postgresql": """
UPDATE snapshots
SET record_id = CASE WHEN (raw ->> 'ID') ~ '^[0-9]{1,9}$' THEN NULLIF((raw ->> 'ID')::integer, 0) END
WHERE json_typeof(raw -> 'ID') IN ('number', 'string')
""",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for view in ("daily_worktime", "workdays", "latest_status"):
        op.execute(f"DROP VIEW {view}")
    op.add_column("snapshots", sa.Column("record_id", sa.Integer(), nullable=True))
    op.execute(_RECORD_ID_FILL[dialect])
    op.drop_index("ix_snapshots_portal_user_id_work_date", table_name="snapshots")
    op.drop_index("ix_snapshots_work_date", table_name="snapshots")
    op.create_index(
        "ix_snapshots_portal_user_id_time_start", "snapshots", ["portal", "user_id", "time_start"]
    )
    op.add_column("poll_errors", sa.Column("error_key", sa.String(200), nullable=True))
    op.execute("UPDATE poll_errors SET error_key = 'legacy:' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("poll_errors") as batch:
        batch.alter_column("error_key", existing_type=sa.String(200), nullable=False)
        batch.create_unique_constraint("uq_poll_errors_portal_error_key", ["portal", "error_key"])
    _create_directory_and_records()
    _create_workdays()
    _fill_workdays()
    op.execute(LATEST_STATUS.format(first_department=_FIRST_DEPARTMENT[dialect]))
    op.execute(DAILY_WORKTIME)


def _create_directory_and_records() -> None:
    op.create_table(
        "users",
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("last_name", sa.String(255), nullable=True),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("position", sa.String(255), nullable=True),
        sa.Column("department_ids", sa.JSON(), nullable=True),
        sa.Column("user_type", sa.String(32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=True),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("portal", "user_id", name="pk_users"),
    )
    op.create_table(
        "departments",
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("head_user_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("portal", "department_id", name="pk_departments"),
    )
    op.create_table(
        "workday_records",
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("start_time", UTC_TIMESTAMP, nullable=False),
        sa.Column("end_time", UTC_TIMESTAMP, nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("break_seconds", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("approved", sa.Boolean(), nullable=True),
        sa.Column("work_date", sa.Date(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("fetched_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("portal", "record_id", name="pk_workday_records"),
    )
    op.create_index(
        "ix_workday_records_portal_user_id_start_time", "workday_records", ["portal", "user_id", "start_time"]
    )
    op.create_index("ix_workday_records_portal_work_date", "workday_records", ["portal", "work_date"])
    op.create_table(
        "backfill_progress",
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("portal", "user_id", "date_from", "date_to", name="pk_backfill_progress"),
    )


def _create_workdays() -> None:
    op.create_table(
        "workdays",
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("work_date", sa.Date(), nullable=True),
        sa.Column("time_start", UTC_TIMESTAMP, nullable=False),
        sa.Column("time_finish", UTC_TIMESTAMP, nullable=True),
        sa.Column("tz_offset", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("worked_seconds", sa.Integer(), nullable=True),
        sa.Column("worked_is_estimate", sa.Boolean(), nullable=False),
        sa.Column("leaks_seconds", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_seen_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("pending_approval", sa.Boolean(), nullable=False),
        sa.Column("user_name", sa.String(511), nullable=True),
        sa.Column("department", sa.String(255), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("portal", "user_id", "time_start", name="pk_workdays"),
    )
    op.create_index("ix_workdays_work_date", "workdays", ["work_date"])
    op.create_index("ix_workdays_user_id_work_date", "workdays", ["user_id", "work_date"])


def _fill_workdays(batch_size: int = 5000) -> None:
    """Compute every workday from its snapshots, in order, as the poller would have poll by poll.

    Streams the snapshots (a server-side cursor on PostgreSQL), so memory stays flat however
    long the history. No directory exists yet: the names are null until the first refresh.
    """
    from poller.models import UTCDateTime
    from poller.storage.workday_rules import DAY_COLUMNS, Poll, advance

    stamp = UTCDateTime()
    snapshots = sa.table(
        "snapshots",
        *(sa.column(name, stamp) for name in ("polled_at", "last_seen_at", "time_start", "time_finish")),
        sa.column("time_finish_default", stamp),
        *(sa.column(name) for name in ("portal", "user_id", "status", "duration_seconds")),
        sa.column("time_leaks_seconds"),
        sa.column("work_date", sa.Date()),
        sa.column("active", sa.Boolean()),
        sa.column("tz_offset"),
        sa.column("record_id"),
    )
    workdays = sa.table(
        "workdays",
        *(sa.column(name) for name in ("portal", "user_id", "status", "worked_seconds", "leaks_seconds")),
        *(sa.column(name, stamp) for name in ("time_start", "time_finish", "first_seen_at", "last_seen_at")),
        sa.column("work_date", sa.Date()),
        *(sa.column(name, sa.Boolean()) for name in ("worked_is_estimate", "pending_approval")),
        sa.column("source"),
        sa.column("tz_offset"),
        sa.column("record_id"),
    )
    c = snapshots.c
    query = (
        sa.select(snapshots)
        .where(c.time_start.is_not(None))
        .order_by(c.portal, c.user_id, c.time_start, c.polled_at)
    )
    connection = op.get_bind()
    pending: list[dict[str, Any]] = []
    key: tuple[Any, ...] | None = None
    day: dict[str, Any] | None = None

    def keep(done_key: tuple[Any, ...], done_day: dict[str, Any]) -> None:
        pending.append(
            {"portal": done_key[0], "user_id": done_key[1], "time_start": done_key[2]}
            | {name: done_day[name] for name in DAY_COLUMNS}
        )
        if len(pending) >= batch_size:
            connection.execute(sa.insert(workdays), pending)
            pending.clear()

    rows = connection.execute(query.execution_options(stream_results=True, yield_per=batch_size))
    for row in rows.mappings():
        row_key = (row["portal"], row["user_id"], row["time_start"])
        if row_key != key:
            if key is not None and day is not None:
                keep(key, day)
            key, day = row_key, None
        day = advance(day, Poll.from_row(row))
    if key is not None and day is not None:
        keep(key, day)
    if pending:
        connection.execute(sa.insert(workdays), pending)


def _revision_0003() -> ModuleType:
    """Revision 0003's module, whose view definitions the downgrade restores."""
    path = Path(__file__).with_name("0003_report_views.py")
    spec = importlib.util.spec_from_file_location("_timeman_poller_revision_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW daily_worktime")
    op.execute("DROP VIEW latest_status")
    op.drop_table("workdays")
    op.drop_table("backfill_progress")
    op.drop_table("workday_records")
    op.drop_table("departments")
    op.drop_table("users")
    with op.batch_alter_table("poll_errors") as batch:
        batch.drop_constraint("uq_poll_errors_portal_error_key", type_="unique")
        batch.drop_column("error_key")
    op.drop_index("ix_snapshots_portal_user_id_time_start", table_name="snapshots")
    op.create_index("ix_snapshots_work_date", "snapshots", ["work_date"])
    op.create_index(
        "ix_snapshots_portal_user_id_work_date", "snapshots", ["portal", "user_id", "work_date", "time_start"]
    )
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("record_id")
    previous = _revision_0003()
    op.execute(previous.LATEST_STATUS)
    op.execute(previous._workdays_sql(dialect))
    op.execute(previous.DAILY_WORKTIME)
