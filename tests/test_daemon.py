"""A poll cycle end to end: emulator over HTTP → client → storage, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, func, select, text

from poller import logs
from poller.clock import ManualClock
from poller.daemon import make_clients, poll_once
from poller.emulator import Emulator
from poller.models import OAuthToken, PollError, PollRun, Snapshot
from poller.status import parse_status


def snapshot_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(Snapshot.__table__).order_by(Snapshot.user_id)).mappings().all()
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def expected_row(emulator: Emulator, user_id: int, at: datetime) -> dict[str, Any]:
    """The snapshot a poll at `at` must store: the world's answer, parsed, and bookkeeping."""
    answer = emulator.world.status(user_id, at)
    parsed = parse_status(answer)
    return {
        "portal": "emu",
        "user_id": user_id,
        "polled_at": at,
        **parsed.values,
        "raw": answer,
        "last_seen_at": at,
        "seen_count": 1,
    }


def test_a_cycle_stores_the_worlds_answer_as_one_whole_row_per_user(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(portal(emulator, list(range(1, 31))), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
    assert (report.ok, report.users_ok, report.users_failed, report.requests) == (True, 30, 0, 1)
    now = clock.now()
    assert snapshot_rows(engine) == [expected_row(emulator, user, now) for user in range(1, 31)]
    with engine.connect() as connection:
        run = connection.execute(select(PollRun.__table__)).mappings().one()
    assert dict(run) == {"id": report.run_id, "started_at": now, "finished_at": now, "users_ok": 30, "users_failed": 0}


def test_the_special_users_are_stored_as_the_reference_describes_them(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(portal(emulator, [2, 3]), database_url=database_url)
    poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
    empty, expired = snapshot_rows(engine)
    assert (empty["status"], empty["time_start"], empty["duration_seconds"], empty["raw"]) == (
        "CLOSED",
        None,
        None,
        {"STATUS": "CLOSED"},
    )
    assert expired["status"] == "EXPIRED"
    assert expired["time_start"] == datetime(2026, 11, 15, 13, 0, tzinfo=UTC)  # 08:00 at UTC-5
    assert (expired["work_date"], expired["time_leaks_seconds"]) == (date(2026, 11, 15), 17 * 60 + 53)


def test_timestamps_are_utc_instants_in_the_database(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(portal(emulator, [3]), database_url=database_url)
    poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
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
    assert stored == emulator.world.workday(3, date(2026, 11, 15)).opened  # type: ignore[union-attr]
    assert stored.utcoffset() == timedelta(0)


def test_an_unknown_user_is_an_error_row_while_the_others_are_stored(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(portal(emulator, [1, 4, 999]), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
    assert (report.ok, report.users_ok, report.users_failed) == (False, 2, 1)
    assert [row["user_id"] for row in snapshot_rows(engine)] == [1, 4]
    with engine.connect() as connection:
        error = connection.execute(select(PollError.__table__)).mappings().one()
    # A batch answers HTTP 200 and carries the sub-call's error without a status.
    assert {k: v for k, v in error.items() if k not in ("id", "message")} == {
        "run_id": report.run_id,
        "portal": "emu",
        "user_id": 999,
        "occurred_at": clock.now(),
        "code": "USER_NOT_FOUND",
        "http_status": None,
    }
    assert "User not found" in error["message"]


def test_a_dead_portal_is_one_error_row_and_other_portals_still_store(
    engine: Engine, database_url: str, emulator: Emulator
) -> None:
    bad_hook = emulator.webhook_url.replace(emulator.settings.webhook_secret, "badsecret987")
    config = make_config(
        portal(emulator, [1, 2], name="good"),
        portal(emulator, "all", name="bad", webhook_url=bad_hook),
        database_url=database_url,
    )
    report = poll_once(make_clients(config, engine), engine)
    assert not report.ok
    with engine.connect() as connection:
        stored = connection.execute(select(Snapshot.portal, func.count()).group_by(Snapshot.portal)).all()
        errors = connection.execute(select(PollError.portal, PollError.user_id, PollError.code)).all()
    assert stored == [("good", 2)]
    assert errors == [("bad", None, "NO_AUTH_FOUND")]


def test_users_all_polls_every_active_user(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=120, clock=clock)
    config = make_config(portal(emulator, "all"), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
    assert (report.users_ok, report.users_failed) == (119, 0)  # user 97 is inactive
    assert [row["user_id"] for row in snapshot_rows(engine)] == [u for u in range(1, 121) if u != 97]
    assert report.requests == 3 + 3  # user.get pages + batches


def test_no_secret_reaches_logs_or_error_rows(
    engine: Engine,
    database_url: str,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = emulator.settings
    wrong_hook = emulator.webhook_url.replace(s.webhook_secret, "zzwrongzz")
    config = make_config(
        portal(emulator, [1, 999], name="hook"),
        portal(emulator, [1], name="wrong", webhook_url=wrong_hook),
        portal(emulator, [1, 998], oauth=True),
        database_url=database_url,
    )
    emulator.expire_tokens()
    caplog.set_level(logging.DEBUG)
    with logs.installed("DEBUG") as redactor:  # as the CLI runs the daemon
        redactor.add(config.secrets())
        clients = make_clients(config, engine)
        poll_once(clients, engine)
    written = capsys.readouterr().err
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("poller"))
    secrets = [s.webhook_secret, "zzwrongzz", s.access_token, s.refresh_token, s.client_secret]
    secrets += [clients[2].access_token or "", clients[2].refresh_token or ""]
    with engine.connect() as connection:
        rows = [str(tuple(r)) for r in connection.execute(select(PollError)).all()]
        rows += [str(tuple(r)) for r in connection.execute(select(Snapshot)).all()]
        rows += [str(tuple(r)) for r in connection.execute(select(PollRun)).all()]
    assert len(rows) > 3 and "POST /rest/1/***/batch" in written and "User not found" in ours
    for secret in secrets:
        assert secret
        assert secret not in written and secret not in ours
        assert not any(secret in row for row in rows)


def test_refreshed_tokens_are_stored_and_win_after_a_restart(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(portal(emulator, [1, 2], oauth=True), database_url=database_url)
    emulator.expire_tokens()
    first = make_clients(config, engine, clock=clock)
    assert poll_once(first, engine, clock=clock.now).ok
    with engine.connect() as connection:
        stored = connection.execute(select(OAuthToken.access_token, OAuthToken.refresh_token)).one()
    assert tuple(stored) == (first[0].access_token, first[0].refresh_token)
    assert stored.access_token != emulator.settings.access_token
    restarted = make_clients(config, engine, clock=clock)
    assert restarted[0].access_token == stored.access_token
    assert poll_once(restarted, engine, clock=clock.now).ok
    assert emulator.stats.token_refreshes == 1
