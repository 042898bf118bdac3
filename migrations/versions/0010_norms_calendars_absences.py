"""Norms, schedules, calendars and absences, and the attendance view over them (issue #16).

- user_norms: `timeman.settings` per user, versioned: a change seen at T closes the current
  row (valid_to = T) and adds one valid from T; an unchanged read adds nothing.
- schedules, schedule_assignments: `timeman.schedule.get` by id and the config's user or
  department to schedule map, versioned the same way.
- portal_calendars: holidays, moved working days and weekly days off per portal and year,
  versioned the same way (its source: the portal, the config or the holidays package).
- absences: one row per user and local day an `absent` calendar event covers; a refresh marks
  what the portal no longer lists with removed_at.
- attendance (a view): one row per user and calendar day from the user's first known day (a
  workday, an absence, the first norms seen) to the last one, or the user's own today for a
  user the directory does not mark inactive, with the kind of day, the worked time and the
  flags. no_show waits for the day to end in the user's zone.
  Overtime is over the shift of the user's schedule (their own assignment, else their first
  department's) where one applies, else over the minimum duration of their norms.

Nothing is filled: the tables start empty and fill from the next refresh.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# What differs between the databases, as functions of an SQL expression. SQLite keeps dates as
# 'YYYY-MM-DD' text and UTC instants as naive text; PostgreSQL as date and timestamptz.
_DIALECT: dict[str, dict[str, Callable[..., str]]] = {
    "sqlite": {
        "next_day": lambda day: f"date({day}, '+1 day')",
        "utc_date": lambda instant: f"date({instant})",
        "local_today": lambda offset: f"date('now', ({offset}) || ' seconds')",
        "later": lambda a, b: f"max({a}, {b})",
        "epoch": lambda instant: f"CAST(strftime('%s', {instant}) AS INTEGER)",
        "date_epoch": lambda day: f"CAST(strftime('%s', {day}) AS INTEGER)",
        "weekday": lambda day: f"CAST(strftime('%w', {day}) AS INTEGER)",
        "year": lambda day: f"CAST(strftime('%Y', {day}) AS INTEGER)",
        "iso": lambda day: day,
        "clock": lambda seconds: f"time({seconds}, 'unixepoch')",
        "first_department": lambda: "json_extract(u.department_ids, '$[0]')",
    },
    "postgresql": {
        "next_day": lambda day: f"{day} + 1",
        "utc_date": lambda instant: f"CAST({instant} AT TIME ZONE 'UTC' AS date)",
        "local_today": lambda offset: (
            f"CAST((now() AT TIME ZONE 'UTC') + ({offset}) * INTERVAL '1 second' AS date)"
        ),
        "later": lambda a, b: f"GREATEST({a}, {b})",
        "epoch": lambda instant: f"CAST(FLOOR(EXTRACT(EPOCH FROM {instant})) AS bigint)",
        "date_epoch": lambda day: f"CAST(EXTRACT(EPOCH FROM CAST({day} AS timestamp)) AS bigint)",
        "weekday": lambda day: f"CAST(EXTRACT(DOW FROM {day}) AS integer)",
        "year": lambda day: f"CAST(EXTRACT(YEAR FROM {day}) AS integer)",
        "iso": lambda day: f"to_char({day}, 'YYYY-MM-DD')",
        "clock": lambda seconds: (
            f"to_char(TIME '00:00' + MOD({seconds}, 86400) * INTERVAL '1 second', 'HH24:MI:SS')"
        ),
        "first_department": lambda: (
            "CASE WHEN json_typeof(u.department_ids) = 'array' THEN (u.department_ids ->> 0)::integer END"
        ),
    },
}

ATTENDANCE = """
CREATE VIEW attendance AS
WITH RECURSIVE
known AS (
    SELECT portal, user_id, work_date AS day FROM workdays WHERE work_date IS NOT NULL
    UNION ALL
    SELECT portal, user_id, day FROM absences WHERE removed_at IS NULL
    UNION ALL
    SELECT portal, user_id, {seen_date} FROM user_norms
),
spans AS (
    -- today: the user's own date now, at the offset of their last workday that has one (the
    -- directory keeps only a zone name, which SQLite cannot read), else UTC's
    SELECT s.portal, s.user_id, s.first_day,
           CASE WHEN u.active IS NULL OR u.active THEN {last_or_today} ELSE s.last_day END AS last_day,
           s.today, {first_department} AS department_id
    FROM (
        SELECT k.portal, k.user_id, k.first_day, k.last_day, {local_today} AS today
        FROM (
            SELECT portal, user_id, MIN(day) AS first_day, MAX(day) AS last_day
            FROM known GROUP BY portal, user_id
        ) k
    ) s
    LEFT JOIN users u ON u.portal = s.portal AND u.user_id = s.user_id
),
bounds AS (SELECT MIN(first_day) AS first_day, MAX(last_day) AS last_day FROM spans),
dates (day, weekday) AS (
    -- weekday: 0 = Sunday; worked out once per date here, not on each user's row
    SELECT first_day, {first_weekday} FROM bounds WHERE first_day IS NOT NULL
    UNION ALL
    SELECT {next_day}, CASE WHEN d.weekday = 6 THEN 0 ELSE d.weekday + 1 END
    FROM dates d, bounds b WHERE d.day < b.last_day
),
assigned AS (
    -- The config's map as periods of days; the portal's first read stands for the days before it.
    SELECT a.portal, a.subject, a.subject_id, a.schedule_id,
           CASE WHEN a.valid_from > f.first_seen THEN {assigned_from} END AS from_day,
           {assigned_to} AS to_day
    FROM schedule_assignments a
    JOIN (SELECT portal, MIN(valid_from) AS first_seen FROM schedule_assignments GROUP BY portal) f
      ON f.portal = a.portal
),
shifts AS (
    -- Each schedule version's first shift in seconds worked (a shift ending at or before its
    -- start ends the next day); the schedule's first version stands for the days before it.
    SELECT v.portal, v.schedule_id, v.work_days,
           CASE WHEN v.valid_from > f.first_seen THEN {shift_from} END AS from_day,
           {shift_to} AS to_day,
           {shift_seconds} AS shift_seconds
    FROM schedules v
    JOIN (SELECT portal, schedule_id, MIN(valid_from) AS first_seen FROM schedules
          GROUP BY portal, schedule_id) f
      ON f.portal = v.portal AND f.schedule_id = v.schedule_id
    WHERE v.shift_start IS NOT NULL AND v.shift_end IS NOT NULL
),
worked AS (
    SELECT portal, user_id, work_date AS day,
           SUM(worked_seconds) AS worked_seconds,
           SUM(leaks_seconds) AS break_seconds,
           MIN(time_start) AS time_start,
           CASE WHEN COUNT(time_finish) = COUNT(*) THEN MAX(time_finish) END AS time_finish,
           MIN({start_epoch} + COALESCE(tz_offset, 0)) - {work_date_epoch} AS start_seconds,
           CASE WHEN COUNT(time_finish) = COUNT(*)
                THEN MAX({finish_epoch} + COALESCE(tz_offset, 0)) - {work_date_epoch} END AS finish_seconds,
           MAX(CASE WHEN status = 'EXPIRED' THEN 1 ELSE 0 END) AS unclosed,
           MAX(CASE WHEN pending_approval THEN 1 ELSE 0 END) AS pending_approval
    FROM workdays WHERE work_date IS NOT NULL
    GROUP BY portal, user_id, work_date
),
judged AS (
    SELECT d.portal, d.user_id, d.day, d.today,
           CASE
               WHEN EXISTS (
                   SELECT 1 FROM absences a
                   WHERE a.portal = d.portal AND a.user_id = d.user_id AND a.day = d.day
                     AND a.removed_at IS NULL
               ) THEN 'absent'
               WHEN ',' || c.moved_workdays || ',' LIKE '%,' || {day_iso} || ',%' THEN 'workday'
               WHEN ',' || c.holidays || ',' LIKE '%,' || {day_iso} || ',%' THEN 'holiday'
               WHEN ',' || COALESCE(c.week_holidays, 'SA,SU') || ','
                    LIKE '%,' || substr('SUMOTUWETHFRSA', d.weekday * 2 + 1, 2) || ',%' THEN 'weekend'
               ELSE 'workday'
           END AS day_kind,
           w.portal IS NOT NULL AS has_work,
           w.worked_seconds, w.break_seconds, w.time_start, w.time_finish,
           w.start_seconds, w.finish_seconds, w.unclosed, w.pending_approval,
           n.id AS norm_id, n.tracked, n.max_start, n.min_finish, n.min_duration,
           COALESCE(n.allowed_delta, 0) AS delta,
           COALESCE(ua.schedule_id, da.schedule_id) AS schedule_id, sc.shift_seconds,
           CASE WHEN sc.shift_seconds IS NULL THEN NULL
                WHEN COALESCE(sc.work_days, '') = '' THEN 1
                WHEN sc.work_days LIKE '%' || substr('7123456', d.weekday + 1, 1) || '%' THEN 1
                ELSE 0
           END AS schedule_day
    FROM (
        SELECT s.portal, s.user_id, s.department_id, s.today, x.day, x.weekday
        FROM spans s JOIN dates x ON x.day >= s.first_day AND x.day <= s.last_day
    ) d
    LEFT JOIN worked w ON w.portal = d.portal AND w.user_id = d.user_id AND w.day = d.day
    LEFT JOIN user_norms n ON n.portal = d.portal AND n.user_id = d.user_id
        AND (n.valid_to IS NULL OR d.day < {valid_to_date})
        AND (d.day >= {valid_from_date} OR NOT EXISTS (
            SELECT 1 FROM user_norms p
            WHERE p.portal = n.portal AND p.user_id = n.user_id AND p.valid_from < n.valid_from
        ))
    LEFT JOIN portal_calendars c ON c.portal = d.portal AND c.year = {year} AND c.valid_to IS NULL
    LEFT JOIN assigned ua ON ua.portal = d.portal AND ua.subject = 'user' AND ua.subject_id = d.user_id
        AND (ua.from_day IS NULL OR d.day >= ua.from_day) AND (ua.to_day IS NULL OR d.day < ua.to_day)
    LEFT JOIN assigned da ON da.portal = d.portal AND da.subject = 'department'
        AND da.subject_id = d.department_id
        AND (da.from_day IS NULL OR d.day >= da.from_day) AND (da.to_day IS NULL OR d.day < da.to_day)
    LEFT JOIN shifts sc ON sc.portal = d.portal AND sc.schedule_id = COALESCE(ua.schedule_id, da.schedule_id)
        AND (sc.from_day IS NULL OR d.day >= sc.from_day) AND (sc.to_day IS NULL OR d.day < sc.to_day)
)
SELECT portal, user_id, day AS work_date, day_kind,
       worked_seconds, break_seconds, time_start, time_finish,
       start_seconds, finish_seconds,
       {start_clock} AS start_local, {finish_clock} AS finish_local,
       norm_id, schedule_id,
       CASE WHEN {clock_off} THEN NULL WHEN {late} THEN TRUE ELSE FALSE END AS late,
       CASE WHEN {late} THEN start_seconds - max_start END AS late_seconds,
       CASE WHEN {clock_off} THEN NULL WHEN {early} THEN TRUE ELSE FALSE END AS early_leave,
       CASE WHEN {early} THEN min_finish - finish_seconds END AS early_leave_seconds,
       CASE WHEN {short} THEN TRUE ELSE FALSE END AS short_day,
       CASE WHEN {short} THEN min_duration - worked_seconds END AS short_seconds,
       CASE WHEN day_kind = 'workday' AND worked_seconds IS NOT NULL THEN
           CASE WHEN schedule_day = 0 THEN worked_seconds
                WHEN schedule_day = 1 THEN {later_shift}
                WHEN min_duration IS NOT NULL THEN {later_duration}
           END
       END AS overtime_seconds,
       CASE WHEN day_kind = 'workday' AND worked_seconds IS NOT NULL THEN
           CASE WHEN schedule_day IS NOT NULL THEN 'schedule'
                WHEN min_duration IS NOT NULL THEN 'min_duration'
           END
       END AS overtime_basis,
       CASE WHEN day_kind = 'workday' AND NOT has_work AND day < today AND (tracked IS NULL OR tracked)
                 AND (schedule_day IS NULL OR schedule_day = 1)
            THEN TRUE ELSE FALSE END AS no_show,
       CASE WHEN unclosed = 1 THEN TRUE ELSE FALSE END AS unclosed,
       CASE WHEN pending_approval = 1 THEN TRUE ELSE FALSE END AS pending_approval
FROM judged
"""

_LAST_OFFSET = (
    "COALESCE((SELECT w.tz_offset FROM workdays w WHERE w.portal = k.portal AND w.user_id = k.user_id"
    " AND w.tz_offset IS NOT NULL ORDER BY w.time_start DESC LIMIT 1), 0)"
)
# A start outside its own day: the offset the portal sent disagrees with the day's date (the
# autumn DST night, dated in the user's zone at the new offset): the clock times are an hour
# off, so late and early_leave are not judged (null). short_day counts worked time, not clocks.
_CLOCK_OFF = "(start_seconds < 0 OR start_seconds >= 86400)"
_CLOCK_OK = "start_seconds >= 0 AND start_seconds < 86400"
_LATE = f"day_kind = 'workday' AND {_CLOCK_OK} AND start_seconds > max_start + delta"
_EARLY = f"day_kind = 'workday' AND {_CLOCK_OK} AND finish_seconds < min_finish - delta"
_SHIFT = (
    "v.shift_end - v.shift_start + CASE WHEN v.shift_end <= v.shift_start THEN 86400 ELSE 0 END"
    " - COALESCE(v.shift_break, 0)"
)
_SHORT = "day_kind = 'workday' AND finish_seconds IS NOT NULL AND worked_seconds < min_duration - delta"


def attendance_sql(dialect: str) -> str:
    """The attendance view's CREATE statement for `dialect` ('sqlite' or 'postgresql')."""
    f = _DIALECT[dialect]
    return ATTENDANCE.format(
        seen_date=f["utc_date"]("valid_from"),
        valid_from_date=f["utc_date"]("n.valid_from"),
        last_or_today=f["later"]("s.last_day", "s.today"),
        local_today=f["local_today"](_LAST_OFFSET),
        next_day=f["next_day"]("d.day"),
        start_epoch=f["epoch"]("time_start"),
        finish_epoch=f["epoch"]("time_finish"),
        work_date_epoch=f["date_epoch"]("work_date"),
        day_iso=f["iso"]("d.day"),
        first_weekday=f["weekday"]("first_day"),
        valid_to_date=f["utc_date"]("n.valid_to"),
        first_department=f["first_department"](),
        assigned_from=f["utc_date"]("a.valid_from"),
        assigned_to=f["utc_date"]("a.valid_to"),
        shift_from=f["utc_date"]("v.valid_from"),
        shift_to=f["utc_date"]("v.valid_to"),
        shift_seconds=f["later"](_SHIFT, "0"),
        later_shift=f["later"]("worked_seconds - shift_seconds", "0"),
        later_duration=f["later"]("worked_seconds - min_duration", "0"),
        year=f["year"]("d.day"),
        start_clock=f["clock"]("start_seconds"),
        finish_clock=f["clock"]("finish_seconds"),
        clock_off=_CLOCK_OFF,
        late=_LATE,
        early=_EARLY,
        short=_SHORT,
    )


_CURRENT_ONLY = (
    ("user_norms", ["portal", "user_id"], "valid_to"),
    ("schedules", ["portal", "schedule_id"], "valid_to"),
    ("schedule_assignments", ["portal", "subject", "subject_id"], "valid_to"),
    ("portal_calendars", ["portal", "year"], "valid_to"),
    ("absences", ["portal", "user_id", "day", "event_id"], "removed_at"),
)


def _validity() -> list[sa.Column[object]]:
    return [
        sa.Column("valid_from", UTC_TIMESTAMP, nullable=False),
        sa.Column("valid_to", UTC_TIMESTAMP, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "user_norms",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tracked", sa.Boolean(), nullable=True),
        sa.Column("free", sa.Boolean(), nullable=True),
        sa.Column("max_start", sa.Integer(), nullable=True),
        sa.Column("min_finish", sa.Integer(), nullable=True),
        sa.Column("min_duration", sa.Integer(), nullable=True),
        sa.Column("allowed_delta", sa.Integer(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        *_validity(),
        sa.PrimaryKeyConstraint("id", name="pk_user_norms"),
        sa.UniqueConstraint(
            "portal", "user_id", "valid_from", name="uq_user_norms_portal_user_id_valid_from"
        ),
    )
    op.create_table(
        "schedules",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("schedule_type", sa.String(20), nullable=True),
        sa.Column("report_period", sa.String(20), nullable=True),
        sa.Column("shifts", sa.JSON(), nullable=False),
        sa.Column("shift_start", sa.Integer(), nullable=True),
        sa.Column("shift_end", sa.Integer(), nullable=True),
        sa.Column("shift_break", sa.Integer(), nullable=True),
        sa.Column("work_days", sa.String(7), nullable=True),
        sa.Column("violation_rules", sa.JSON(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        *_validity(),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint(
            "portal", "schedule_id", "valid_from", name="uq_schedules_portal_schedule_id_valid_from"
        ),
    )
    op.create_table(
        "schedule_assignments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(10), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        *_validity(),
        sa.PrimaryKeyConstraint("id", name="pk_schedule_assignments"),
        sa.UniqueConstraint(
            "portal", "subject", "subject_id", "valid_from",
            name="uq_schedule_assignments_portal_subject_subject_id_valid_from",
        ),
    )  # fmt: skip
    op.create_table(
        "portal_calendars",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("holidays", sa.Text(), nullable=False),
        sa.Column("moved_workdays", sa.Text(), nullable=False),
        sa.Column("week_holidays", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=True),
        *_validity(),
        sa.PrimaryKeyConstraint("id", name="pk_portal_calendars"),
        sa.UniqueConstraint(
            "portal", "year", "valid_from", name="uq_portal_calendars_portal_year_valid_from"
        ),
    )
    op.create_table(
        "absences",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_id", sa.String(50), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("whole_day", sa.Boolean(), nullable=False),
        sa.Column("starts_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("ends_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("fetched_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("removed_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_absences"),
        sa.UniqueConstraint(
            "portal", "user_id", "day", "event_id", "fetched_at",
            name="uq_absences_portal_user_id_day_event_id_fetched_at",
        ),
    )  # fmt: skip
    op.create_index("ix_absences_portal_day", "absences", ["portal", "day"])
    # At most one current row per key: two writers racing on a key cannot both leave one.
    for table, key, open_column in _CURRENT_ONLY:
        where = sa.text(f"{open_column} IS NULL")
        op.create_index(
            f"uq_{table}_current", table, key, unique=True, sqlite_where=where, postgresql_where=where
        )
    op.execute(attendance_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP VIEW attendance")
    for name in ("absences", "portal_calendars", "schedule_assignments", "schedules", "user_norms"):
        op.drop_table(name)
