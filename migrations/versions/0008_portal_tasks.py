"""portal_tasks: when each portal's directory refresh and daily reconcile were last tried and done.

`poll` (a timer, cron) is a new process every cycle: what is due must be read from the
database, as must be what `run` did before (and what another replica did). One row per
portal and task ('directory', 'reconcile'). A portal whose users are already stored gets its
'directory' row from the newest users.updated_at (that refresh's time), so an upgrade does
not make every directory due at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_tasks",
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("task", sa.String(40), nullable=False),
        sa.Column("last_tried_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("portal", "task", name="pk_portal_tasks"),
    )
    op.execute(
        "INSERT INTO portal_tasks (portal, task, last_tried_at, last_done_at) "
        "SELECT portal, 'directory', MAX(updated_at), MAX(updated_at) FROM users GROUP BY portal"
    )


def downgrade() -> None:
    op.drop_table("portal_tasks")
