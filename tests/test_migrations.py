"""Alembic owns the schema: the revisions create exactly what the models declare."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, column, insert, inspect, table, text

from poller import storage
from poller.fields import STATUS_COLUMNS
from poller.models import Base, Snapshot, UTCDateTime


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
    # Rows as the first revision's poller wrote them: its columns only, its timestamp type.
    runs = table(
        "poll_runs",
        column("id"),
        column("started_at", UTCDateTime()),
        column("users_ok"),
        column("users_failed"),
    )
    snapshots = table(
        "snapshots", column("portal"), column("user_id"), column("polled_at", UTCDateTime()),
        column("status"), column("duration_seconds"), column("raw", JSON()),
    )  # fmt: skip
    errors = table(
        "poll_errors", column("run_id"), column("portal"), column("user_id"),
        column("occurred_at", UTCDateTime()), column("code"), column("message"),
    )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(runs).values(id=1, started_at=polled, users_ok=1, users_failed=1))
        connection.execute(
            insert(snapshots).values(
                portal="acme", user_id=5, polled_at=polled, status="CLOSED", duration_seconds=3600,
                raw={"STATUS": "CLOSED"},
            )
        )  # fmt: skip
        connection.execute(
            insert(errors).values(
                run_id=1, portal="acme", user_id=9, occurred_at=polled, code="USER_NOT_FOUND",
                message="User not found",
            )
        )  # fmt: skip
    storage.upgrade_database(engine)
    with engine.connect() as connection:
        snapshot = connection.execute(
            text("SELECT portal, user_id, status, duration_seconds, last_seen_at, seen_count FROM snapshots")
        ).one()
        workday_count = connection.execute(text("SELECT count(*) FROM latest_status")).scalar_one()
        error = connection.execute(text("SELECT run_id, user_id, code FROM poll_errors")).one()
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        tokens = connection.execute(text("SELECT count(*) FROM oauth_tokens")).scalar_one()
    assert tuple(snapshot)[:4] == ("acme", 5, "CLOSED", 3600)
    assert UTCDateTime().process_result_value(_as_datetime(snapshot[4]), engine.dialect) == polled
    assert snapshot[5] == 1  # the new columns are filled for old rows
    assert workday_count == 1
    assert tuple(error) == (1, 9, "USER_NOT_FOUND")
    assert version == ScriptDirectory(str(storage.migrations_path())).get_current_head()
    assert tokens == 0
    engine.dispose()


def _as_datetime(value: object) -> datetime:
    """SQLite hands back raw text through a plain SQL query."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


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


def test_the_snapshot_model_has_a_column_per_declared_field_and_types_only_columns() -> None:
    columns = list(Snapshot.__table__.columns.keys())
    assert columns == [
        "id",
        "portal",
        "user_id",
        "polled_at",
        *STATUS_COLUMNS,
        "raw",
        "last_seen_at",
        "seen_count",
    ]
    assert set(Snapshot.__annotations__) <= set(columns)


def test_revision_0005_keeps_the_runs_and_marks_the_finished_ones(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0004")
    started = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    runs = table(
        "poll_runs",
        column("id"),
        column("started_at", UTCDateTime()),
        column("finished_at", UTCDateTime()),
        column("users_ok"),
        column("users_failed"),
    )
    with engine.begin() as connection:
        connection.execute(
            insert(runs),
            [
                {"started_at": started, "finished_at": started, "users_ok": 5, "users_failed": 1},
                {"started_at": started, "finished_at": None, "users_ok": 0, "users_failed": 0},
            ],
        )
    storage.upgrade_database(engine, "0005")
    with engine.begin() as connection:
        kept = connection.execute(
            text("SELECT users_ok, users_failed, portal, outcome, replica FROM poll_runs ORDER BY id")
        ).all()
    run_id = storage.save_run_started(engine, started, portal="acme", replica="host:1")
    assert [tuple(row) for row in kept] == [(5, 1, None, "finished", None), (0, 0, None, None, None)]
    storage.save_run_finished(engine, run_id, started, 3, 0, outcome="interrupted")
    with engine.connect() as connection:
        new = connection.execute(
            text("SELECT portal, outcome, replica FROM poll_runs WHERE id = :id"), {"id": run_id}
        ).one()
        indexes = {index["name"] for index in inspect(connection).get_indexes("poll_runs")}
    assert tuple(new) == ("acme", "interrupted", "host:1")
    assert "ix_poll_runs_portal_started_at" in indexes
    engine.dispose()
