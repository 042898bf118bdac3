"""latest_status says when a row is stale (revision 0006): the user left the directory, is not
in it, or failed after the row was last seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.config import Config as AlembicConfig
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import JSON, Engine, column, insert, inspect, select, table, text

from poller import storage, views
from poller.bitrix import fetch_users
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator
from poller.models import UTCDateTime
from poller.poll.cycle import poll_once
from poller.render.report import render
from poller.status import parse_status

POLLED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
OPENED = {"STATUS": "OPENED", "TIME_START": "2026-11-02T10:00:00+01:00", "TZ_OFFSET": 3600, "ID": 7}


def _insert_rows_as_0005(engine: Engine) -> None:
    """Users 1-5 polled; 1 current, 2 inactive, 3 not in the directory, 4 failed after its row,
    5 failed before its row (and polled since)."""
    values = dict(parse_status(OPENED).values)
    snapshots = table(
        "snapshots", *(column(name) for name in values), column("portal"), column("user_id"),
        column("polled_at", UTCDateTime()), column("last_seen_at", UTCDateTime()), column("seen_count"),
        column("raw", JSON()),
    )  # fmt: skip
    for name in ("time_start", "time_finish", "time_finish_default"):
        snapshots.c[name].type = UTCDateTime()
    users = table("users", column("portal"), column("user_id"), column("name"), column("active"),
                  column("updated_at", UTCDateTime()))  # fmt: skip
    errors = table("poll_errors", column("portal"), column("user_id"), column("occurred_at", UTCDateTime()),
                   column("code"), column("message"), column("error_key"))  # fmt: skip
    later = POLLED + timedelta(minutes=5)
    with engine.begin() as connection:
        connection.execute(
            insert(snapshots),
            [{**values, "portal": "acme", "user_id": user_id, "polled_at": POLLED - timedelta(minutes=1),
              "last_seen_at": POLLED, "seen_count": 2, "raw": OPENED} for user_id in (1, 2, 3, 4, 5)],
        )  # fmt: skip
        connection.execute(
            insert(users),
            [{"portal": "acme", "user_id": user_id, "name": f"U{user_id}", "active": user_id != 2,
              "updated_at": POLLED} for user_id in (1, 2, 4, 5)],
        )  # fmt: skip
        connection.execute(
            insert(errors),
            [{"portal": "acme", "user_id": 4, "occurred_at": later, "code": "ACCESS_DENIED", "message": "no",
              "error_key": "k4"},
             {"portal": "acme", "user_id": 5, "occurred_at": POLLED, "code": "TIMEOUT", "message": "slow",
              "error_key": "k5"},
             {"portal": "acme", "user_id": None, "occurred_at": later, "code": "TIMEOUT", "message": "all",
              "error_key": "kp"}],
        )  # fmt: skip


def _staleness(engine: Engine) -> list[tuple[object, ...]]:
    v = views.latest_status.c
    query = select(v.user_id, v.status, v.user_name, v.stale, v.stale_reason).order_by(v.user_id)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def test_revision_0006_adds_stale_and_its_reason_to_the_rows_already_stored(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0005")
    _insert_rows_as_0005(engine)
    with engine.connect() as connection:
        before = connection.execute(text("SELECT * FROM latest_status ORDER BY user_id")).mappings().all()
    storage.upgrade_database(engine, "0006")
    with engine.connect() as connection:
        after = connection.execute(text("SELECT * FROM latest_status ORDER BY user_id")).mappings().all()
        indexes = {index["name"] for index in inspect(connection).get_indexes("poll_errors")}
    # Every column the view had keeps its name and value; two are added at the end.
    assert [dict(row) for row in before] == [{name: row[name] for name in before[0]} for row in after]
    assert list(after[0].keys())[: len(before[0].keys())] == list(before[0].keys())
    assert set(after[0].keys()) - set(before[0].keys()) == {"stale", "stale_reason"}
    assert _staleness(engine) == [
        (1, "OPENED", "U1", False, None),
        (2, "OPENED", "U2", True, "inactive"),
        (3, "OPENED", None, True, "not_in_directory"),
        (4, "OPENED", "U4", True, "failed"),  # the portal-wide error alone makes nobody stale
        (5, "OPENED", "U5", False, None),  # an error at the moment last seen is not "since"
    ]
    assert "ix_poll_errors_portal_user_id_occurred_at" in indexes
    engine.dispose()


def test_revision_0006_downgrades_to_the_view_without_staleness(database_url: str) -> None:
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine, "0006")
    _insert_rows_as_0005(engine)
    with engine.begin() as connection:
        config = AlembicConfig()
        config.set_main_option("script_location", str(storage.migrations_path()))
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    with engine.connect() as connection:
        columns = set(connection.execute(text("SELECT * FROM latest_status")).keys())
        count = connection.execute(text("SELECT count(*) FROM latest_status")).scalar_one()
    assert {"user_name", "department", "status"} <= columns
    assert not columns & {"stale", "stale_reason"}
    assert count == 5
    engine.dispose()


def test_a_directory_nobody_refreshed_makes_no_row_stale(engine: Engine) -> None:
    storage.save_portal_cycle(
        engine, None, [storage.SnapshotRow("acme", 8, POLLED, parse_status(OPENED))], []
    )
    assert _staleness(engine) == [(8, "OPENED", None, False, None)]


# -- through the emulator: a user fired, a user failing ----------------------------------------


def _poll(emulator: Emulator, engine: Engine, clock: ManualClock, users: list[int]) -> None:
    config = make_config(portal(emulator, users, requests_per_second=1000), http={"max_retries": 0})
    poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)


def _refresh_directory(emulator: Emulator, engine: Engine, clock: ManualClock) -> None:
    config = make_config(portal(emulator, [1], requests_per_second=1000))
    (client,) = make_clients(config, engine, clock=clock)
    storage.save_users(engine, "emu", fetch_users(client), clock.now())


def test_a_fired_user_and_a_failing_user_are_stale_in_latest_status(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    users = [1, 2, 3, 4, 5]
    _refresh_directory(emulator, engine, clock)
    _poll(emulator, engine, clock, users)
    assert {row[0]: row[3:] for row in _staleness(engine)} == {u: (False, None) for u in users}
    emulator.fire(3)  # gone from the portal, and seen gone by the next directory refresh
    clock.advance(3600)
    _refresh_directory(emulator, engine, clock)
    emulator.fire(4)  # gone since that refresh: the directory still lists them active
    clock.advance(60)
    _poll(emulator, engine, clock, users)  # a list of ids: 3 and 4 are still asked for, and fail
    stale = {row[0]: row[3:] for row in _staleness(engine)}
    assert stale == {1: (False, None), 2: (False, None), 3: (True, "inactive"), 4: (True, "failed"),
                     5: (False, None)}  # fmt: skip
    with engine.connect() as connection:
        latest = connection.execute(
            select(views.latest_status).where(views.latest_status.c.user_id == 3)
        ).one()
    assert latest.status is not None and latest.user_name is not None  # the old row, still shown
    table = render("latest", storage.get_view_rows(engine, views.latest_status), "table", 80).splitlines()
    at = table[0].index(" stale ") + 1  # `report latest` shows the reason beside the status
    assert [line[at : at + 8].strip() for line in table[2:7]] == ["-", "-", "inactive", "failed", "-"]
    # A user whose answer cannot be read while the directory lists them: "failed".
    emulator.set_hostile(5, "nested")
    clock.advance(60)
    _poll(emulator, engine, clock, [5])
    assert {row[0]: row[3:] for row in _staleness(engine)}[5] == (True, "failed")
    # Answered again: current again.
    emulator.set_hostile(5)
    clock.advance(60)
    _poll(emulator, engine, clock, users)
    assert {row[0]: row[3:] for row in _staleness(engine)}[5] == (False, None)


def test_rows_of_a_portal_whose_polls_all_fail_are_stale_until_it_answers_again(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=3, clock=clock)
    users = [1, 2, 3]
    _poll(emulator, engine, clock, users)
    assert {row[0]: row[3:] for row in _staleness(engine)} == {u: (False, None) for u in users}
    entry = portal(emulator, users, requests_per_second=1000)
    entry["webhook_url"] = entry["webhook_url"].rstrip("/").rsplit("/", 1)[0] + "/wrongsecret/"
    clock.advance(60)
    bad = make_config(entry, http={"max_retries": 0})
    poll_once(make_clients(bad, engine, clock=clock), engine, clock=clock.now)
    with engine.connect() as connection:
        errors = connection.execute(text("SELECT user_id, code FROM poll_errors")).all()
    assert [tuple(row) for row in errors] == [(None, "NO_AUTH_FOUND")]  # one error, of no user
    assert {row[0]: row[3:] for row in _staleness(engine)} == {u: (True, "portal_failed") for u in users}
    clock.advance(60)
    _poll(emulator, engine, clock, users)
    assert {row[0]: row[3:] for row in _staleness(engine)} == {u: (False, None) for u in users}
