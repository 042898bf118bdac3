"""Create snapshots, poll_runs and poll_errors.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("polled_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("time_start", UTC_TIMESTAMP, nullable=True),
        sa.Column("time_finish", UTC_TIMESTAMP, nullable=True),
        sa.Column("time_finish_default", UTC_TIMESTAMP, nullable=True),
        sa.Column("work_date", sa.Date(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("time_leaks_seconds", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("tz_offset", sa.Integer(), nullable=True),
        sa.Column("ip_open", sa.String(64), nullable=True),
        sa.Column("ip_close", sa.String(64), nullable=True),
        sa.Column("lat_open", sa.Float(), nullable=True),
        sa.Column("lon_open", sa.Float(), nullable=True),
        sa.Column("lat_close", sa.Float(), nullable=True),
        sa.Column("lon_close", sa.Float(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        sa.UniqueConstraint("portal", "user_id", "polled_at", name="uq_snapshots_portal_user_id_polled_at"),
    )
    op.create_index("ix_snapshots_portal_work_date", "snapshots", ["portal", "work_date"])
    op.create_table(
        "poll_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("users_ok", sa.Integer(), nullable=False),
        sa.Column("users_failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_poll_runs"),
    )
    op.create_table(
        "poll_errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["poll_runs.id"], name="fk_poll_errors_run_id_poll_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_poll_errors"),
    )
    op.create_index("ix_poll_errors_run_id", "poll_errors", ["run_id"])
    op.create_index("ix_poll_errors_portal_occurred_at", "poll_errors", ["portal", "occurred_at"])


def downgrade() -> None:
    op.drop_table("poll_errors")
    op.drop_table("poll_runs")
    op.drop_table("snapshots")
