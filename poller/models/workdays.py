"""Workdays: the portal's records, backfill progress, the workdays table and its revisions."""

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
)

from poller.fields import RECORD_FIELDS
from poller.models.base import Base, UTCDateTime, field_columns

# The portal's own workday records (`timeman.record.list`), one row per record, changed in place.
workday_records_table = Table(
    "workday_records",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    *field_columns(RECORD_FIELDS, "record_id", required=("user_id", "start_time")),
    Column("work_date", Date, nullable=True),  # the local date of startTime in its own offset
    Column("raw", JSON, nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False),  # when the stored values were fetched
    Index("ix_workday_records_portal_user_id_start_time", "portal", "user_id", "start_time"),
    Index("ix_workday_records_portal_work_date", "portal", "work_date"),
)

# Which users a backfill of exactly [date_from, date_to] has finished: a resumed run skips them.
backfill_progress_table = Table(
    "backfill_progress",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("date_from", Date, primary_key=True),
    Column("date_to", Date, primary_key=True),
    Column("finished_at", UTCDateTime(), nullable=False),
)

# One row per portal, user and workday (a TIME_START), kept up to date on write by
# poller.storage.workdays in the transaction that stores the snapshots or records it follows
# from; a report reads it like any indexed table. Figures come from the portal's closed
# record where there is one (source "record"), else from the polls (source "polls").
workdays_table = Table(
    "workdays",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("work_date", Date, nullable=True),
    Column("time_start", UTCDateTime(), primary_key=True),
    Column("time_finish", UTCDateTime(), nullable=True),
    Column("tz_offset", Integer, nullable=True),  # the user's offset from UTC that day, in seconds
    Column("status", String(32), nullable=True),
    Column("worked_seconds", Integer, nullable=True),
    Column("worked_is_estimate", Boolean, nullable=False),
    Column("leaks_seconds", Integer, nullable=True),
    Column("first_seen_at", UTCDateTime(), nullable=True),  # null: no poll saw the day
    Column("last_seen_at", UTCDateTime(), nullable=True),
    Column("pending_approval", Boolean, nullable=False),
    Column("user_name", String(511), nullable=True),
    Column("department", String(255), nullable=True),
    Column("source", String(8), nullable=False),
    Column("record_id", Integer, nullable=True),
    # How many times the day's figures or its record changed after they were stored (distinct
    # moments in workday_revisions), and how many of those came after its month was closed.
    Column("corrections", Integer, nullable=False, default=0, server_default="0"),
    Column("corrections_after_close", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_workdays_work_date", "work_date"),
    Index("ix_workdays_user_id_work_date", "user_id", "work_date"),
)

# Every change of a stored workday record (source "record") and of a closed past day's figures
# in workdays (source "workday"), one row per field, kept by poller.storage.revisions. Append-only:
# the poller never updates or deletes a row (prune past the retention floor may).
workday_revisions_table = Table(
    "workday_revisions",
    Base.metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("work_date", Date, nullable=True),  # the day's local date before the change
    Column("time_start", UTCDateTime(), nullable=False),  # the day's (record's) start before the change
    Column("record_id", Integer, nullable=True),
    Column("source", String(8), nullable=False),
    Column("field", String(64), nullable=False),
    Column("old_value", Text, nullable=True),  # canonical text (poller.history.canonical); null: none
    Column("new_value", Text, nullable=True),
    Column("old_seen_at", UTCDateTime(), nullable=True),  # when the old value was stored (seen)
    Column("changed_at", UTCDateTime(), nullable=False),  # when the new value was first seen
    Column("after_close", Boolean, nullable=False),  # the day's month was closed when it came
    UniqueConstraint(
        "portal", "source", "user_id", "time_start", "field", "changed_at", name="uq_workday_revisions_change"
    ),
    Index("ix_workday_revisions_portal_work_date", "portal", "work_date"),
    Index("ix_workday_revisions_portal_user_id_time_start", "portal", "user_id", "time_start"),
    Index("ix_workday_revisions_portal_record_id", "portal", "record_id"),
)
