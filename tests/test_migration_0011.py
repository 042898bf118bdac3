"""Revision 0011 (directory_versions) on a 0010 database that holds a directory: every user and
department stays, each portal with a directory gets a version of its own (so a write keeps what
it reads at once), a change of one portal's directory changes its version alone, and the
downgrade removes the table and its triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, column, insert, inspect, table, text
from test_migrations import alembic_config

from poller import storage
from poller.models import UTCDateTime
from poller.status import parse_status

SEEN = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_revision_0011_gives_each_stored_directory_a_version_and_keeps_every_row(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0010")
    users = table("users", column("portal"), column("user_id"), column("name"), column("active"),
                  column("time_zone"), column("updated_at", UTCDateTime()))  # fmt: skip
    departments = table("departments", column("portal"), column("department_id"), column("name"))
    with engine.begin() as connection:
        connection.execute(
            insert(users),
            [{"portal": portal, "user_id": user_id, "name": f"U{user_id}", "active": True,
              "time_zone": "Europe/Istanbul", "updated_at": SEEN}
             for portal, user_id in (("acme", 1), ("acme", 2), ("beta", 1))],
        )  # fmt: skip
        connection.execute(insert(departments), [{"portal": "gamma", "department_id": 1, "name": "HQ"}])
    storage.upgrade_database(engine, "0011")
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT portal, version FROM directory_versions ORDER BY 1")).all()
        kept = connection.execute(text("SELECT portal, user_id, name FROM users ORDER BY 1, 2")).all()
    assert [row[0] for row in versions] == ["acme", "beta", "gamma"]
    assert len({row[1] for row in versions}) == 3 and all(len(row[1]) == 32 for row in versions)
    assert [tuple(row) for row in kept] == [("acme", 1, "U1"), ("acme", 2, "U2"), ("beta", 1, "U1")]

    # A change of one portal's directory gives that portal alone a new version (the triggers).
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET name = 'B1' WHERE portal = 'beta'"))
        after = dict(connection.execute(text("SELECT portal, version FROM directory_versions")).all())
    assert after["beta"] != dict(versions)["beta"]
    assert {portal: after[portal] for portal in ("acme", "gamma")} == {
        portal: dict(versions)[portal] for portal in ("acme", "gamma")
    }

    # A write right after the upgrade dates a day in the directory's zone (the kept facts are right).
    start = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    answer = {"STATUS": "OPENED", "TIME_START": start.isoformat(), "TZ_OFFSET": 0, "ACTIVE": True}
    row = storage.SnapshotRow("acme", 1, start + timedelta(minutes=1), parse_status(answer))
    storage.save_portal_cycle(engine, None, [row], [])
    with engine.connect() as connection:
        dated = connection.execute(text("SELECT work_date, user_name FROM workdays")).one()
    assert (str(dated[0]), dated[1]) == ("2026-11-21", "U1")

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0010")
    with engine.begin() as connection:  # no trigger is left to write a table that is gone
        assert "directory_versions" not in inspect(connection).get_table_names()
        connection.execute(text("UPDATE users SET name = 'A1' WHERE portal = 'acme' AND user_id = 1"))
        connection.execute(text("DELETE FROM departments"))
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 3
    engine.dispose()


def test_at_the_head_every_directory_trigger_is_there(engine: Engine) -> None:
    """A later revision that rebuilds users or departments must make them again (a batch alter on
    SQLite drops a table's triggers with it): this fails if one is lost."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        found = {name for (name,) in connection.execute(text(query))}
    events = ["insert", "update", "delete"] + (["truncate"] if engine.dialect.name == "postgresql" else [])
    expected = {f"tr_{table}_{event}_version" for table in ("users", "departments") for event in events}
    assert expected <= found


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_session_without_the_schema_on_its_path_can_write_the_directory(
    engine: Engine,
) -> None:
    """pg_dump's restore scripts set search_path to ''; the trigger must still find its table."""
    with engine.begin() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        connection.execute(text("SET LOCAL search_path TO ''"))
        connection.execute(
            text(
                f"INSERT INTO \"{schema}\".departments (portal, department_id, name) VALUES ('acme', 1, 'HQ')"
            )
        )
        found = connection.execute(text(f'SELECT portal FROM "{schema}".directory_versions')).all()
    assert [row[0] for row in found] == ["acme"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("table", ["users", "departments"])
def test_on_postgresql_a_truncate_of_the_directory_changes_every_version(engine: Engine, table: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO departments (portal, department_id, name) VALUES ('acme', 1, 'HQ')")
        )
        connection.execute(
            text("INSERT INTO departments (portal, department_id, name) VALUES ('beta', 1, 'HQ')")
        )
    with engine.connect() as connection:
        before = dict(connection.execute(text("SELECT portal, version FROM directory_versions")).all())
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {table}"))
    with engine.connect() as connection:
        after = dict(connection.execute(text("SELECT portal, version FROM directory_versions")).all())
    assert set(after) == {"acme", "beta"} and all(after[portal] != before[portal] for portal in after)
