"""Append-only workday revisions and closed months.

- workday_revisions: every change of a stored workday record (source "record") and of a
  closed past day's figures (source "workday"), one row per field, never updated or deleted.
- workdays.corrections, workdays.corrections_after_close: how many times each day changed
  (0 for the rows already there: nothing before this revision was kept).
- month_closes, closed_workdays, closed_rows: `close --month` freezes a month per portal with
  a SHA-256 digest over its canonical rendering, which `verify` recomputes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("workdays", sa.Column("corrections", sa.Integer(), nullable=False, server_default="0"))
    op.add_column(
        "workdays",
        sa.Column("corrections_after_close", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "workday_revisions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("work_date", sa.Date(), nullable=True),
        sa.Column("time_start", UTC_TIMESTAMP, nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("old_seen_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("changed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("after_close", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workday_revisions"),
        sa.UniqueConstraint(
            "portal", "source", "user_id", "time_start", "field", "changed_at",
            name="uq_workday_revisions_change",
        ),
    )  # fmt: skip
    op.create_index("ix_workday_revisions_portal_work_date", "workday_revisions", ["portal", "work_date"])
    op.create_index(
        "ix_workday_revisions_portal_user_id_time_start",
        "workday_revisions",
        ["portal", "user_id", "time_start"],
    )
    op.create_index("ix_workday_revisions_portal_record_id", "workday_revisions", ["portal", "record_id"])
    op.create_table(
        "month_closes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("closed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("canonical_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_month_closes"),
        sa.UniqueConstraint("portal", "month", "sequence", name="uq_month_closes_portal_month_sequence"),
    )
    op.create_table(
        "closed_workdays",
        sa.Column("close_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("time_start", UTC_TIMESTAMP, nullable=False),
        sa.Column("work_date", sa.Date(), nullable=True),
        sa.Column("time_finish", UTC_TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("worked_seconds", sa.Integer(), nullable=True),
        sa.Column("worked_is_estimate", sa.Boolean(), nullable=False),
        sa.Column("leaks_seconds", sa.Integer(), nullable=True),
        sa.Column("pending_approval", sa.Boolean(), nullable=False),
        sa.Column("user_name", sa.String(511), nullable=True),
        sa.Column("department", sa.String(255), nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["close_id"], ["month_closes.id"], name="fk_closed_workdays_close_id_month_closes"
        ),
        sa.PrimaryKeyConstraint("close_id", "user_id", "time_start", name="pk_closed_workdays"),
    )
    op.create_table(
        "closed_rows",
        sa.Column("close_id", sa.Integer(), nullable=False),
        sa.Column("row_key", sa.String(400), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["close_id"], ["month_closes.id"], name="fk_closed_rows_close_id_month_closes"
        ),
        sa.PrimaryKeyConstraint("close_id", "row_key", name="pk_closed_rows"),
    )


def downgrade() -> None:
    op.drop_table("closed_rows")
    op.drop_table("closed_workdays")
    op.drop_table("month_closes")
    op.drop_table("workday_revisions")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of workdays would trip over its views.
    op.drop_column("workdays", "corrections_after_close")
    op.drop_column("workdays", "corrections")
