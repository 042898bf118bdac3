"""A poll cycle end to end: emulator over HTTP → client → storage, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from conftest import oauth_portal
from sqlalchemy import Engine, func, select, text

from poller import storage
from poller.config import parse_config
from poller.daemon import make_clients, poll_once
from poller.emulator import Emulator
from poller.models import OAuthToken, PollError, PollRun, Snapshot
from poller.status import parse_status


def config_for(emulator: Emulator, database_url: str, users: object, **portal: object) -> object:
    entry: dict[str, object] = {"name": "emu", "webhook_url": emulator.webhook_url, "users": users}
    entry.update(portal)
    return parse_config({"database": {"url": database_url}, "portals": [entry]}, {})


def test_a_cycle_stores_one_parsed_row_per_user(
    emulator: Emulator, engine: Engine, database_url: str
) -> None:
    config = config_for(emulator, database_url, list(range(1, 31)))
    before = datetime.now(UTC)
    report = poll_once(make_clients(config, engine), engine)  # type: ignore[arg-type]
    assert report.ok and report.users_ok == 30 and report.users_failed == 0
    assert report.requests == 1
    rows = storage.get_latest_snapshots(engine)
    assert [r.user_id for r in rows] == list(range(1, 31))
    for row in rows:
        expected = parse_status(row.raw)
        assert row.portal == "emu"
        assert row.polled_at.tzinfo is not None and before <= row.polled_at <= datetime.now(UTC)
        assert row.status == expected.status
        assert row.time_start == expected.time_start
        assert row.time_finish == expected.time_finish
        assert row.time_finish_default == expected.time_finish_default
        assert row.work_date == expected.work_date
        assert row.duration_seconds == expected.duration_seconds
        assert row.time_leaks_seconds == expected.time_leaks_seconds
        assert row.active == expected.active and row.tz_offset == expected.tz_offset
        assert (row.ip_open, row.lat_open, row.lon_close) == (
            expected.ip_open,
            expected.lat_open,
            expected.lon_close,
        )
    expired = next(r for r in rows if r.user_id == 3)
    assert expired.status == "EXPIRED"
    assert expired.time_start is not None and expired.time_start.utcoffset() == timedelta(0)
    assert expired.work_date == (expired.time_start + timedelta(seconds=expired.tz_offset or 0)).date()
    assert expired.time_leaks_seconds == 17 * 60 + 53
    empty = next(r for r in rows if r.user_id == 2)
    assert (empty.status, empty.time_start, empty.duration_seconds, empty.raw) == (
        "CLOSED",
        None,
        None,
        {"STATUS": "CLOSED"},
    )
    with engine.connect() as connection:
        run = connection.execute(select(PollRun)).one()
    assert (run.users_ok, run.users_failed) == (30, 0)
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_timestamps_are_utc_instants_in_the_database(
    emulator: Emulator, engine: Engine, database_url: str
) -> None:
    config = config_for(emulator, database_url, [3])
    poll_once(make_clients(config, engine), engine)  # type: ignore[arg-type]
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            kind = connection.execute(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'snapshots' AND column_name = 'time_start'"
                )
            ).scalar_one()
            assert kind == "timestamp with time zone"
            connection.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        stored = connection.execute(select(Snapshot.time_start)).scalar_one()
    expected = parse_status(emulator.world.status(3)).time_start
    assert stored == expected


def test_an_unknown_user_is_an_error_row_while_the_others_are_stored(
    emulator: Emulator, engine: Engine, database_url: str
) -> None:
    config = config_for(emulator, database_url, [1, 4, 999])
    report = poll_once(make_clients(config, engine), engine)  # type: ignore[arg-type]
    assert not report.ok
    assert (report.users_ok, report.users_failed) == (2, 1)
    with engine.connect() as connection:
        users = connection.execute(select(Snapshot.user_id).order_by(Snapshot.user_id)).scalars().all()
        error = connection.execute(select(PollError)).one()
    assert users == [1, 4]
    # A batch answers HTTP 200 and carries the sub-call's error without a status.
    assert (error.portal, error.user_id, error.code, error.http_status) == (
        "emu",
        999,
        "USER_NOT_FOUND",
        None,
    )
    assert error.run_id == report.run_id
    assert "User not found" in error.message


def test_a_dead_portal_is_one_error_row_and_other_portals_still_store(
    emulator: Emulator, engine: Engine, database_url: str
) -> None:
    bad_hook = emulator.webhook_url.replace(emulator.settings.webhook_secret, "badsecret987")
    config = parse_config(
        {
            "database": {"url": database_url},
            "portals": [
                {"name": "good", "webhook_url": emulator.webhook_url, "users": [1, 2]},
                {"name": "bad", "webhook_url": bad_hook, "users": "all"},
            ],
        },
        {},
    )
    report = poll_once(make_clients(config, engine), engine)
    assert not report.ok
    with engine.connect() as connection:
        stored = connection.execute(select(Snapshot.portal, func.count()).group_by(Snapshot.portal)).all()
        errors = connection.execute(select(PollError.portal, PollError.user_id, PollError.code)).all()
    assert stored == [("good", 2)]
    assert errors == [("bad", None, "NO_AUTH_FOUND")]


def test_users_all_polls_every_active_user(emulator: Emulator, engine: Engine, database_url: str) -> None:
    emulator.world.count = 120
    config = config_for(emulator, database_url, "all")
    report = poll_once(make_clients(config, engine), engine)  # type: ignore[arg-type]
    assert report.users_ok == 119
    assert report.requests == 3 + 3  # user.get pages + batches


def test_no_secret_reaches_logs_or_error_rows(
    emulator: Emulator, engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s = emulator.settings
    config = parse_config(
        {
            "database": {"url": database_url},
            "portals": [
                {"name": "hook", "webhook_url": emulator.webhook_url, "users": [1, 999]},
                {
                    "name": "wrong",
                    "webhook_url": emulator.webhook_url.replace(s.webhook_secret, "zzwrongzz"),
                    "users": [1],
                },
                oauth_portal(emulator, [1, 998]),
            ],
        },
        {},
    )
    emulator.expire_tokens()
    clients = make_clients(config, engine)
    poll_once(clients, engine)
    secrets = [s.webhook_secret, "zzwrongzz", s.access_token, s.refresh_token, s.client_secret]
    secrets += [clients[2].access_token or "", clients[2].refresh_token or ""]
    with engine.connect() as connection:
        rows = [str(tuple(r)) for r in connection.execute(select(PollError)).all()]
        rows += [str(tuple(r)) for r in connection.execute(select(Snapshot)).all()]
        rows += [str(tuple(r)) for r in connection.execute(select(PollRun)).all()]
    assert len(rows) > 3
    for secret in secrets:
        assert secret and secret not in caplog.text
        assert not any(secret in row for row in rows)


def test_refreshed_tokens_are_stored_and_win_after_a_restart(
    emulator: Emulator, engine: Engine, database_url: str
) -> None:
    s = emulator.settings
    config = parse_config(
        {
            "database": {"url": database_url},
            "portals": [oauth_portal(emulator, [1, 2])],
        },
        {},
    )
    emulator.expire_tokens()
    first = make_clients(config, engine)
    assert poll_once(first, engine).ok
    with engine.connect() as connection:
        stored = connection.execute(select(OAuthToken)).one()
    assert (stored.access_token, stored.refresh_token) == (first[0].access_token, first[0].refresh_token)
    assert stored.access_token != s.access_token
    restarted = make_clients(config, engine)
    assert restarted[0].access_token == stored.access_token
    assert poll_once(restarted, engine).ok
    assert emulator.stats.token_refreshes == 1
