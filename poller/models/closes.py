"""Closed months: each close's digest, and its workdays and canonical lines as they stood."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from poller.models.base import Base, UTCDateTime

# A month's close per portal: the digest of the canonical rendering (poller.history.canonical) as it
# stood. Closing again (--force) adds a row with the next sequence; none is ever replaced.
month_closes_table = Table(
    "month_closes",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("portal", String(200), nullable=False),
    Column("month", Date, nullable=False),  # its first day
    Column("sequence", Integer, nullable=False),  # 1: the first close; 2, 3...: closed again
    Column("closed_at", UTCDateTime(), nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256, hex
    Column("row_count", Integer, nullable=False),  # canonical lines under the digest
    Column("canonical_version", Integer, nullable=False),
    UniqueConstraint("portal", "month", "sequence"),
)

# The workdays of a closed month as they stood at the close: the timesheet `--as-closed`.
closed_workdays_table = Table(
    "closed_workdays",
    Base.metadata,
    Column("close_id", ForeignKey("month_closes.id"), primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("time_start", UTCDateTime(), primary_key=True),
    Column("work_date", Date, nullable=True),
    Column("time_finish", UTCDateTime(), nullable=True),
    Column("status", String(32), nullable=True),
    Column("worked_seconds", Integer, nullable=True),
    Column("worked_is_estimate", Boolean, nullable=False),
    Column("leaks_seconds", Integer, nullable=True),
    Column("pending_approval", Boolean, nullable=False),
    Column("user_name", String(511), nullable=True),
    Column("department", String(255), nullable=True),
    Column("source", String(8), nullable=False),
    Column("record_id", Integer, nullable=True),
    Column("corrections", Integer, nullable=False),
)

# The canonical lines a close's digest was computed over, by row key: what `verify` compares.
closed_rows_table = Table(
    "closed_rows",
    Base.metadata,
    Column("close_id", ForeignKey("month_closes.id"), primary_key=True),
    Column("row_key", String(400), primary_key=True),
    Column("line", Text, nullable=False),
)
