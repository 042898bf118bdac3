"""Alembic owns the schema: the revisions create exactly what the models declare."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Date, column, insert, inspect, select, table, text

from poller import storage
from poller.fields import STATUS_COLUMNS
from poller.models import Base, Snapshot, UTCDateTime, workdays_table
from poller.status import parse_status


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


def _snapshot_at_0003(
    user_id: int, polled: datetime, seen_until: datetime, result: dict[str, object]
) -> dict:
    """A snapshots row as revision 0003's poller wrote it (no record_id)."""
    values = dict(parse_status(result).values)
    values.pop("record_id")
    return {"portal": "acme", "user_id": user_id, "polled_at": polled, **values, "raw": result,
            "last_seen_at": seen_until, "seen_count": 1}  # fmt: skip


def test_upgrading_a_0003_database_fills_workdays_and_names_nobody_yet(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0003")
    start = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
    minutes = [start + timedelta(minutes=m) for m in range(0, 700, 10)]
    day = {"TIME_START": "2026-11-16T09:00:00+03:00", "TIME_FINISH": None, "DURATION": "00:00:00",
           "TIME_LEAKS": "00:00:00", "ACTIVE": True, "TZ_OFFSET": 10800, "ID": 4711}  # fmt: skip
    closed = {**day, "STATUS": "CLOSED", "TIME_FINISH": "2026-11-16T18:00:00+03:00", "DURATION": "08:23:00",
              "TIME_LEAKS": "00:37:00"}  # fmt: skip
    rows = [  # mode "changes": user 1 opened, paused (null TIME_FINISH) at 3:03, resumed, closed
        _snapshot_at_0003(1, minutes[0], minutes[18], {**day, "STATUS": "OPENED"}),
        _snapshot_at_0003(1, minutes[19], minutes[23], {**day, "STATUS": "PAUSED"}),
        _snapshot_at_0003(1, minutes[24], minutes[53], {**day, "STATUS": "OPENED", "TIME_LEAKS": "00:37:00"}),
        _snapshot_at_0003(1, minutes[55], minutes[69], closed),
        _snapshot_at_0003(2, minutes[0], minutes[69], {"STATUS": "CLOSED"}),
        _snapshot_at_0003(3, minutes[0], minutes[21], {**day, "STATUS": "PAUSED", "ID": "12"}),
    ]
    snapshots = table(
        "snapshots", *(column(name) for name in rows[0] if name not in {"raw"}), column("raw", JSON())
    )
    stamped = {"polled_at", "last_seen_at", "time_start", "time_finish", "time_finish_default"}
    for name in stamped:
        snapshots.c[name].type = UTCDateTime()
    errors = table("poll_errors", column("portal"), column("user_id"), column("occurred_at", UTCDateTime()),
                   column("code"), column("message"))  # fmt: skip
    error = {
        "portal": "acme",
        "user_id": 9,
        "occurred_at": start,
        "code": "USER_NOT_FOUND",
        "message": "gone",
    }
    with engine.begin() as connection:
        connection.execute(insert(snapshots), rows)
        connection.execute(insert(errors), [error, error])  # doubled by the old spool replay (issue #9)
    storage.upgrade_database(engine)
    with engine.connect() as connection:
        days = [dict(r) for r in connection.execute(select(workdays_table).order_by("user_id")).mappings()]
        latest = connection.execute(
            text("SELECT user_id, record_id, user_name, department FROM latest_status ORDER BY user_id")
        ).all()
        daily = connection.execute(
            text("SELECT user_id, worked_seconds, user_name FROM daily_worktime ORDER BY user_id")
        ).all()
        keys = connection.execute(text("SELECT error_key FROM poll_errors ORDER BY id")).scalars().all()
    common = {"portal": "acme", "work_date": date(2026, 11, 16), "time_start": start, "tz_offset": 10800,
              "pending_approval": False, "user_name": None, "department": None,
              "source": "polls", "corrections": 0, "corrections_after_close": 0}  # fmt: skip
    assert days == [
        {**common, "user_id": 1, "time_finish": start + timedelta(hours=9), "status": "CLOSED",
         "worked_seconds": 503 * 60, "worked_is_estimate": False, "leaks_seconds": 37 * 60,
         "first_seen_at": minutes[0], "last_seen_at": minutes[69], "record_id": 4711},
        {**common, "user_id": 3, "time_finish": None, "status": "PAUSED", "worked_seconds": 0,
         "worked_is_estimate": True, "leaks_seconds": 0, "first_seen_at": minutes[0],
         "last_seen_at": minutes[21], "record_id": 12},
    ]  # fmt: skip
    assert [tuple(r) for r in latest] == [(1, 4711, None, None), (2, None, None, None), (3, 12, None, None)]
    assert [tuple(r) for r in daily] == [(1, 503 * 60, None), (3, 0, None)]
    assert keys == [f"legacy:{n}" for n in (1, 2)]
    # The poller goes on from the filled table: a poll of the closed day moves only last_seen_at.
    later = minutes[69] + timedelta(minutes=10)
    storage.save_portal_cycle(engine, None, [storage.SnapshotRow("acme", 1, later, parse_status(closed))], [])
    storage.save_portal_cycle(
        engine, None, [], [storage.ErrorRow("acme", 9, start, "USER_NOT_FOUND", 400, "gone")]
    )
    with engine.connect() as connection:
        [moved, _] = [
            dict(r) for r in connection.execute(select(workdays_table).order_by("user_id")).mappings()
        ]
        errors_now = connection.execute(text("SELECT count(*) FROM poll_errors")).scalar_one()
    assert moved == {**days[0], "last_seen_at": later}
    assert errors_now == 3  # the new row has a key of its own
    engine.dispose()


def test_revision_0010_adds_norms_calendars_absences_and_attendance_over_the_workdays_there(
    database_url: str,
) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0009")
    start = datetime(2026, 11, 16, 6, 20, tzinfo=UTC)  # 09:20 in Moscow, a Monday
    workdays = table(
        "workdays", column("portal"), column("user_id"), column("work_date", Date()),
        column("time_start", UTCDateTime()), column("time_finish", UTCDateTime()), column("tz_offset"),
        column("status"), column("worked_seconds"), column("worked_is_estimate"), column("leaks_seconds"),
        column("pending_approval"), column("source"),
    )  # fmt: skip
    day = {"portal": "acme", "user_id": 1, "work_date": date(2026, 11, 16), "time_start": start,
           "time_finish": start + timedelta(hours=9), "tz_offset": 10800, "status": "CLOSED",
           "worked_seconds": 8 * 3600, "worked_is_estimate": False, "leaks_seconds": 3600,
           "pending_approval": False, "source": "polls"}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(workdays), [day])
    storage.upgrade_database(engine, "0010")
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT user_id, worked_seconds FROM workdays")).all()
        empty = [
            connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in ("user_norms", "schedules", "schedule_assignments", "portal_calendars", "absences")
        ]
        first = connection.execute(
            text(
                "SELECT work_date, day_kind, worked_seconds, break_seconds, start_local, late, no_show"
                " FROM attendance WHERE work_date <= '2026-11-17' ORDER BY work_date"
            )
        ).all()
    assert [tuple(row) for row in kept] == [(1, 8 * 3600)]
    assert empty == [0, 0, 0, 0, 0]
    # No norms yet: nothing to be late against; no calendar: Saturday and Sunday off.
    assert [(str(r[0]), r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6])) for r in first] == [
        ("2026-11-16", "workday", 8 * 3600, 3600, "09:20:00", False, False),
        ("2026-11-17", "workday", None, None, None, False, True),
    ]
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0009")
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names()) | set(inspect(connection).get_view_names())
        assert connection.execute(text("SELECT count(*) FROM workdays")).scalar_one() == 1
    assert not names & {"user_norms", "schedules", "portal_calendars", "absences", "attendance"}
    engine.dispose()
