"""directory_versions: a token per portal that changes with every change of its directory.

A write of snapshots needs its users' zones and names. A process keeps them between writes and
trusts them while the portal's token is the one it read them under. Triggers on `users` and
`departments` give the portal a new random token in the same transaction as any insert, update
or delete: a refresh, a hand edit, or a replica still running an older release all change it.
On PostgreSQL one per statement (a refresh of 50,000 users bumps a portal once), and a TRUNCATE
gives every portal a new token; on SQLite one per row (it has no other kind; its DELETE without
WHERE fires them too). A portal whose directory is already stored gets its first token here, so
an upgraded database is cached at once.

A later revision that rebuilds `users` or `departments` (a batch alter on SQLite copies the table
and drops the old one, its triggers with it) must create these triggers again:
tests/test_migrations.py checks that they are there at the head.

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

_TABLES = ("users", "departments")
_EVENTS = ("INSERT", "UPDATE", "DELETE")

# SQLite: a new token for the row's portal (and the old portal, should an update move the row).
_SQLITE_BUMP = (
    "INSERT INTO directory_versions (portal, version, changed_at)"
    " VALUES ({row}.portal, lower(hex(randomblob(16))), strftime('%Y-%m-%d %H:%M:%f000', 'now'))"
    " ON CONFLICT (portal) DO UPDATE SET version = excluded.version, changed_at = excluded.changed_at;"
)
_SQLITE_ROWS = {"INSERT": ("NEW",), "UPDATE": ("NEW", "OLD"), "DELETE": ("OLD",)}

# PostgreSQL: one statement-level function; each trigger names its transition tables.
_POSTGRES_BUMP = """
        INSERT INTO directory_versions (portal, version, changed_at)
        SELECT portal, md5(random()::text || clock_timestamp()::text), now()
        FROM (SELECT DISTINCT portal FROM {rows}) AS changed
        ON CONFLICT (portal) DO UPDATE SET version = excluded.version, changed_at = excluded.changed_at;"""
_POSTGRES_FUNCTION = f"""
CREATE FUNCTION directory_changed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE directory_versions
        SET version = md5(random()::text || clock_timestamp()::text || portal), changed_at = now();
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN{_POSTGRES_BUMP.format(rows="new_rows")}
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN{_POSTGRES_BUMP.format(rows="old_rows")}
    END IF;
    RETURN NULL;
END
$$
"""
_POSTGRES_REFERENCING = {
    "INSERT": " REFERENCING NEW TABLE AS new_rows",
    "UPDATE": " REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows",
    "DELETE": " REFERENCING OLD TABLE AS old_rows",
    "TRUNCATE": "",  # a TRUNCATE trigger has no rows to name
}


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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
    for table in _TABLES:
        for event in _events(op.get_bind().dialect.name):
            op.execute(_trigger(op.get_bind().dialect.name, table, event))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in _TABLES:
        for event in _events(op.get_bind().dialect.name):
            name = _trigger_name(table, event)
            op.execute(f"DROP TRIGGER {name} ON {table}" if postgresql else f"DROP TRIGGER {name}")
    if postgresql:
        op.execute("DROP FUNCTION directory_changed()")
    op.drop_table("directory_versions")


def _events(dialect: str) -> tuple[str, ...]:
    return (*_EVENTS, "TRUNCATE") if dialect == "postgresql" else _EVENTS


def _trigger_name(table: str, event: str) -> str:
    return f"tr_{table}_{event.lower()}_version"


def _trigger(dialect: str, table: str, event: str) -> str:
    """The trigger that gives `table`'s portals a new version after `event`."""
    name = _trigger_name(table, event)
    if dialect == "postgresql":
        return (
            f"CREATE TRIGGER {name} AFTER {event} ON {table}{_POSTGRES_REFERENCING[event]}"
            " FOR EACH STATEMENT EXECUTE FUNCTION directory_changed()"
        )
    body = " ".join(_SQLITE_BUMP.format(row=row) for row in _SQLITE_ROWS[event])
    return f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN {body} END"
