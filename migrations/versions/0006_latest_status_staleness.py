"""latest_status says when a row is stale: two columns added, none renamed.

- stale: true when the row may no longer say where the user stands.
- stale_reason: why, or null when the row is current:
  'inactive'          the directory marks the user inactive (fired, or missing from a full
                      `user.get` refresh): they are no longer polled;
  'not_in_directory'  the portal has a directory and the user is not in it;
  'failed'            a poll_errors row of this user is newer than the row's last_seen_at:
                      the user was asked for and could not be stored since.
  The directory reasons win over 'failed'.
- An index on poll_errors (portal, user_id, occurred_at) answers "failed since" per row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The first department id in users.department_ids (a JSON list), per dialect (as in 0004).
_FIRST_DEPARTMENT = {
    "sqlite": "json_extract(u.department_ids, '$[0]')",
    "postgresql": (
        "CASE WHEN json_typeof(u.department_ids) = 'array' THEN (u.department_ids ->> 0)::integer END"
    ),
}

STALE_REASON = """CASE
           WHEN u.active = {false} THEN 'inactive'
           WHEN u.user_id IS NULL AND EXISTS (
               SELECT 1 FROM users p WHERE p.portal = s.portal
           ) THEN 'not_in_directory'
           WHEN EXISTS (
               SELECT 1 FROM poll_errors e
               WHERE e.portal = s.portal AND e.user_id = s.user_id AND e.occurred_at > s.last_seen_at
           ) THEN 'failed'
       END"""

# The reason is computed once, in the inner select; stale follows from it.
LATEST_STATUS = """
CREATE VIEW latest_status AS
SELECT r.*, r.stale_reason IS NOT NULL AS stale
FROM (
    SELECT s.*,
           NULLIF(TRIM(COALESCE(u.name, '') || ' ' || COALESCE(u.last_name, '')), '') AS user_name,
           d.name AS department,
           {stale_reason} AS stale_reason
    FROM snapshots s
    LEFT JOIN users u ON u.portal = s.portal AND u.user_id = s.user_id
    LEFT JOIN departments d ON d.portal = s.portal AND d.department_id = {first_department}
    WHERE s.polled_at = (
        SELECT max(m.polled_at) FROM snapshots m WHERE m.portal = s.portal AND m.user_id = s.user_id
    )
) r
"""


def latest_status_sql(dialect: str) -> str:
    """The view's CREATE statement for `dialect` (SQLite keeps booleans as 0 and 1)."""
    false = "FALSE" if dialect == "postgresql" else "0"
    return LATEST_STATUS.format(
        stale_reason=STALE_REASON.format(false=false), first_department=_FIRST_DEPARTMENT[dialect]
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_index(
        "ix_poll_errors_portal_user_id_occurred_at", "poll_errors", ["portal", "user_id", "occurred_at"]
    )
    op.execute("DROP VIEW latest_status")
    op.execute(latest_status_sql(dialect))


def _revision_0004() -> ModuleType:
    """Revision 0004's module, whose view definition the downgrade restores."""
    path = Path(__file__).with_name("0004_directory_records_workdays.py")
    spec = importlib.util.spec_from_file_location("_timeman_poller_revision_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW latest_status")
    op.drop_index("ix_poll_errors_portal_user_id_occurred_at", table_name="poll_errors")
    previous = _revision_0004()
    op.execute(previous.LATEST_STATUS.format(first_department=previous._FIRST_DEPARTMENT[dialect]))
