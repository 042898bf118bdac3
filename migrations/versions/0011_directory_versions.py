"""directory_versions: a token per portal that changes with every write of its directory.

A write of snapshots needs its users' zones and names. A process keeps them between writes and
trusts them while the portal's token is the one it read them under; save_users and
save_departments give the portal a new random token in the same transaction. A portal whose
directory is already stored gets its first token here, so an upgraded database is cached at once.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    versions = op.create_table(
        "directory_versions",
        sa.Column("portal", sa.String(200), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("portal", name="pk_directory_versions"),
    )
    portals = op.get_bind().execute(
        sa.text("SELECT portal FROM users UNION SELECT portal FROM departments ORDER BY 1")
    )
    now = datetime.now(UTC)
    rows = [{"portal": portal, "version": uuid.uuid4().hex, "changed_at": now} for (portal,) in portals]
    op.bulk_insert(versions, rows)


def downgrade() -> None:
    op.drop_table("directory_versions")
