"""latest_status is stale when the whole portal failed after the row was last seen.

A wrong webhook secret, a name that does not resolve or a closed port fail every user at once:
one poll_errors row without a user, and the cycle's poll_runs row has outcome 'failed'.
Revision 0006 looked only at each user's own errors, so such rows stayed current. Now:

  'portal_failed'  a poll_runs row of the row's portal with outcome 'failed' started after
                   the row's last_seen_at: the portal was polled and nothing came back since.

The other reasons are those of 0006 and win over it, in their order ('inactive',
'not_in_directory', 'failed'). The view keeps every column, in the same order; the index
ix_poll_runs_portal_started_at (revision 0005) answers "failed since" per row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STALE_REASON = """CASE
           WHEN u.active = {false} THEN 'inactive'
           WHEN u.user_id IS NULL AND EXISTS (
               SELECT 1 FROM users p WHERE p.portal = s.portal
           ) THEN 'not_in_directory'
           WHEN EXISTS (
               SELECT 1 FROM poll_errors e
               WHERE e.portal = s.portal AND e.user_id = s.user_id AND e.occurred_at > s.last_seen_at
           ) THEN 'failed'
           WHEN EXISTS (
               SELECT 1 FROM poll_runs r
               WHERE r.portal = s.portal AND r.outcome = 'failed' AND r.started_at > s.last_seen_at
           ) THEN 'portal_failed'
       END"""


def _revision_0006() -> ModuleType:
    """Revision 0006's module: the view's shape, and the definition the downgrade restores."""
    path = Path(__file__).with_name("0006_latest_status_staleness.py")
    spec = importlib.util.spec_from_file_location("_timeman_poller_revision_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def latest_status_sql(dialect: str) -> str:
    """The view's CREATE statement for `dialect` (SQLite keeps booleans as 0 and 1)."""
    previous = _revision_0006()
    false = "FALSE" if dialect == "postgresql" else "0"
    return str(previous.LATEST_STATUS).format(
        stale_reason=STALE_REASON.format(false=false),
        first_department=previous._FIRST_DEPARTMENT[dialect],
    )


def upgrade() -> None:
    op.execute("DROP VIEW latest_status")
    op.execute(latest_status_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP VIEW latest_status")
    op.execute(_revision_0006().latest_status_sql(op.get_bind().dialect.name))
