"""Alembic owns the schema: the revisions create exactly what the models declare."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import inspect, text

from poller import storage
from poller.models import Base


def alembic_config(connection: object) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(storage.migrations_path()))
    config.attributes["connection"] = connection
    return config


def test_head_matches_the_models_exactly(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine)
    with engine.begin() as connection:
        command.check(alembic_config(connection))  # raises when autogenerate finds a difference
        tables = set(inspect(connection).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    engine.dispose()


def test_upgrading_a_first_revision_database_keeps_its_rows(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0001")
    polled = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO poll_runs (id, started_at, users_ok, users_failed) VALUES (1, :t, 1, 1)"),
            {"t": polled},
        )
        connection.execute(
            text(
                "INSERT INTO snapshots (portal, user_id, polled_at, status, duration_seconds, raw) "
                "VALUES ('acme', 5, :t, 'CLOSED', 3600, :raw)"
            ),
            {"t": polled, "raw": '{"STATUS": "CLOSED"}'},
        )
        connection.execute(
            text(
                "INSERT INTO poll_errors (run_id, portal, user_id, occurred_at, code, message) "
                "VALUES (1, 'acme', 9, :t, 'USER_NOT_FOUND', 'User not found')"
            ),
            {"t": polled},
        )
    storage.upgrade_database(engine)
    with engine.connect() as connection:
        snapshot = connection.execute(
            text("SELECT portal, user_id, status, duration_seconds FROM snapshots")
        ).one()
        error = connection.execute(text("SELECT run_id, user_id, code FROM poll_errors")).one()
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        tokens = connection.execute(text("SELECT count(*) FROM oauth_tokens")).scalar_one()
    assert tuple(snapshot) == ("acme", 5, "CLOSED", 3600)
    assert tuple(error) == (1, 9, "USER_NOT_FOUND")
    assert version == "0002"
    assert tokens == 0
    engine.dispose()


def test_every_revision_downgrades_and_upgrades_again(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    storage.upgrade_database(engine)
    with engine.connect() as connection:
        assert "snapshots" in inspect(connection).get_table_names()
    engine.dispose()
