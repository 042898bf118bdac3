"""poll_runs: one row per portal cycle, with its outcome and the replica that ran it.

- portal: the portal the cycle polled. Rows written before this revision covered every portal
  at once and keep NULL.
- outcome: 'finished', or 'interrupted' when a stop (SIGTERM, Ctrl-C) cut the cycle; NULL
  while the cycle runs, and forever when its process died. Old rows with a finished_at become
  'finished'.
- replica: who ran the cycle (host and process), when several daemons share the database.
- An index on (portal, started_at) for the newest cycles of a portal.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("poll_runs") as batch:
        batch.add_column(sa.Column("portal", sa.String(200), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(20), nullable=True))
        batch.add_column(sa.Column("replica", sa.String(200), nullable=True))
        batch.create_index("ix_poll_runs_portal_started_at", ["portal", "started_at"])
    op.execute("UPDATE poll_runs SET outcome = 'finished' WHERE finished_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("poll_runs") as batch:
        batch.drop_index("ix_poll_runs_portal_started_at")
        batch.drop_column("replica")
        batch.drop_column("outcome")
        batch.drop_column("portal")
