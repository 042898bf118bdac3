"""One portal's cycle and `poll_once`, end to end: emulator over HTTP → client → storage.

On SQLite and PostgreSQL; the poller and the emulator share a ManualClock, so nothing sleeps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, func, select, text

from poller import logs, storage
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator
from poller.models import OAuthToken, PollError, PollRun, Snapshot
from poller.poll.cycle import Route, poll_once, poll_portal, route_for
from poller.spool.queue import Spool
from poller.status import parse_status


def snapshot_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(Snapshot.__table__).order_by(Snapshot.user_id)).mappings().all()
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def run_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(PollRun.__table__).order_by(PollRun.id)).mappings().all()
    return [dict(row) for row in rows]


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


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


class StopAfter(threading.Event):
    """A stop that turns set after `checks` looks (fetch_statuses looks once before each batch).

    `on_check` runs at each look, to observe what the cycle has stored by then.
    """

    def __init__(self, checks: int, on_check: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.checks = checks
        self.on_check = on_check

    def is_set(self) -> bool:
        self.on_check()
        self.checks -= 1
        if self.checks < 0:
            self.set()
        return super().is_set()


# -- one cycle, whole rows ----------------------------------------------------------------


def test_a_cycle_stores_the_worlds_answer_as_one_whole_row_per_user(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(portal(emulator, list(range(1, 31))), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine)
    assert (report.ok, report.users_ok, report.users_failed, report.requests) == (True, 30, 0, 1)
    now = clock.now()
    assert snapshot_rows(engine) == [expected_row(emulator, user, now) for user in range(1, 31)]
    assert run_rows(engine) == [
        {
            "id": report.portals[0].run_id,
            "started_at": now,
            "finished_at": now,
            "users_ok": 30,
            "users_failed": 0,
            "portal": "emu",
            "outcome": "finished",
            "replica": None,
        }
    ]


def test_each_portal_cycle_is_its_own_run_row_with_its_replica(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(
        portal(emulator, [1, 2, 3], name="a"), portal(emulator, [4, 999], name="b"), database_url=database_url
    )
    report = poll_once(make_clients(config, engine, clock=clock), engine, replica="host-1:42")
    runs = {row["portal"]: row for row in run_rows(engine)}
    assert {
        name: (r["users_ok"], r["users_failed"], r["outcome"], r["replica"]) for name, r in runs.items()
    } == {
        "a": (3, 0, "finished", "host-1:42"),
        "b": (1, 1, "finished", "host-1:42"),
    }
    assert sorted(p.run_id for p in report.portals) == sorted(r["id"] for r in runs.values())  # type: ignore[type-var]
    with engine.connect() as connection:
        error_run = connection.execute(select(PollError.run_id)).scalar_one()
    assert error_run == runs["b"]["id"]


def test_the_special_users_are_stored_as_the_reference_describes_them(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    config = make_config(portal(emulator, [2, 3]), database_url=database_url)
    poll_once(make_clients(config, engine, clock=clock), engine)
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
    poll_once(make_clients(config, engine, clock=clock), engine)
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
    report = poll_once(make_clients(config, engine, clock=clock), engine)
    assert (report.ok, report.users_ok, report.users_failed) == (False, 2, 1)
    assert [row["user_id"] for row in snapshot_rows(engine)] == [1, 4]
    with engine.connect() as connection:
        error = connection.execute(select(PollError.__table__)).mappings().one()
    # A batch answers HTTP 200 and carries the sub-call's error without a status.
    assert {
        k: v for k, v in error.items() if k in ("run_id", "portal", "user_id", "occurred_at", "code")
    } == {
        "run_id": report.portals[0].run_id,
        "portal": "emu",
        "user_id": 999,
        "occurred_at": clock.now(),
        "code": "USER_NOT_FOUND",
    }
    assert error["http_status"] is None and "User not found" in error["message"]


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
    assert {o.portal: o.portal_failed for o in report.portals} == {"good": False, "bad": True}


def test_users_all_polls_every_active_user_when_the_directory_is_empty(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=120, clock=clock)
    config = make_config(portal(emulator, "all"), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine)
    assert (report.users_ok, report.users_failed) == (119, 0)  # user 97 is inactive
    assert [row["user_id"] for row in snapshot_rows(engine)] == [u for u in range(1, 121) if u != 97]
    assert report.requests == 3 + 3  # user.get pages + batches


def test_users_all_takes_the_directory_and_costs_one_request_per_50_users(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=120, clock=clock)
    config = make_config(portal(emulator, "all"), database_url=database_url)
    (client,) = make_clients(config, engine, clock=clock)
    from poller.bitrix import fetch_users

    storage.save_users(engine, "emu", fetch_users(client), clock.now())
    outcome = poll_portal(client, engine)
    assert (outcome.users_ok, outcome.requests) == (119, 3)  # no user.get: the directory has them


# -- chunks, stops, portal-wide errors ----------------------------------------------------


def test_parts_are_stored_as_they_arrive_in_order(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=1234, rate=0, clock=clock)
    config = make_config(portal(emulator, list(range(1, 1235))), database_url=database_url)
    (client,) = make_clients(config, engine, clock=clock)
    seen: list[int] = []  # snapshots stored when each batch was about to be sent
    stop = StopAfter(10_000, lambda: seen.append(count(engine, Snapshot)))
    outcome = poll_portal(client, engine, stop=stop)
    assert (outcome.users_ok, outcome.interrupted) == (1234, False)
    # A part of ten batches is written before the eleventh batch is sent, and so on (the
    # last look is the cycle's own, after the last part).
    assert seen == [0] * 10 + [500] * 10 + [1000] * 5 + [1234]
    assert count(engine, Snapshot) == 1234


def test_a_stop_ends_the_cycle_after_the_batch_in_flight_and_stores_what_came(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=1200, rate=0, clock=clock)
    config = make_config(portal(emulator, list(range(1, 1201))), database_url=database_url)
    (client,) = make_clients(config, engine, clock=clock)
    outcome = poll_portal(client, engine, stop=StopAfter(13))
    assert (outcome.users_ok, outcome.users_failed, outcome.not_polled) == (650, 0, 550)
    assert (outcome.interrupted, outcome.requests) == (True, 13)
    assert count(engine, Snapshot) == 650
    assert sum(emulator.stats.statuses_answered.values()) == 650  # nothing fetched was dropped
    (run,) = run_rows(engine)
    assert (run["outcome"], run["users_ok"], run["finished_at"]) == ("interrupted", 650, clock.now())


def test_a_stopped_poll_once_is_reported_as_interrupted(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=200, rate=0, clock=clock)
    config = make_config(portal(emulator, list(range(1, 201))), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine, stop=StopAfter(2))
    assert (report.interrupted, report.ok, report.users_ok, report.not_polled) == (True, False, 100, 100)
    assert report.log_line().endswith("interrupted: 100 users not polled")


def test_a_portal_wide_error_is_one_row_and_the_other_users_count_as_failed(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=300, admin=False, clock=clock)
    config = make_config(portal(emulator, list(range(1, 301))), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine)
    (outcome,) = report.portals
    assert (outcome.users_ok, outcome.users_failed, outcome.portal_failed) == (1, 299, True)
    assert outcome.requests == 1  # not six batches that all fail the same way
    assert outcome.error_codes == (("NO_ACCESS_TO_USER", 1),)
    with engine.connect() as connection:
        errors = connection.execute(select(PollError.user_id, PollError.code, PollError.run_id)).all()
    assert errors == [(None, "NO_ACCESS_TO_USER", outcome.run_id)]
    (run,) = run_rows(engine)
    # The portal failed as a whole, though its own webhook user answered.
    assert (run["users_ok"], run["users_failed"], run["outcome"]) == (1, 299, "failed")


# -- where the rows go --------------------------------------------------------------------


def test_the_three_routes_of_a_part_have_names(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    assert route_for(None) is Route.DATABASE_OR_RAISE
    assert route_for(spool) is Route.DATABASE_OR_SPOOL
    assert route_for(spool, database_ready=False) is Route.BEHIND_SPOOL
    spool.add(storage_entry(), "test")
    assert route_for(spool) is Route.BEHIND_SPOOL


def storage_entry() -> Any:
    from poller.spool.queue import SpoolEntry

    return SpoolEntry(None, (), ())


def test_without_a_spool_a_database_error_reaches_the_caller(
    tmp_path: Path, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock)
    down = storage.make_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}")
    (client,) = make_clients(make_config(portal(emulator, [1, 2])), down, clock=clock)
    with pytest.raises(Exception, match="unable to open"):
        poll_portal(client, down)


def test_a_database_not_ready_sends_every_part_to_the_spool_without_a_run(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock, tmp_path: Path
) -> None:
    emulator = make_emulator(users=600, rate=0, clock=clock)
    config = make_config(portal(emulator, list(range(1, 601))), database_url=database_url)
    (client,) = make_clients(config, engine, clock=clock)
    spool = Spool(tmp_path / "spool.jsonl")
    outcome = poll_portal(client, engine, spool=spool, database_ready=False)
    assert (outcome.users_ok, outcome.kept, outcome.run_id) == (0, 600, None)
    assert (count(engine, Snapshot), count(engine, PollRun), spool.snapshots) == (0, 0, 600)
    assert spool.flush(engine, "all") == 600
    assert count(engine, Snapshot) == 600


# -- tokens and secrets -------------------------------------------------------------------


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
    assert poll_once(first, engine).ok
    with engine.connect() as connection:
        stored = connection.execute(select(OAuthToken.access_token, OAuthToken.refresh_token)).one()
    assert tuple(stored) == (first[0].access_token, first[0].refresh_token)
    assert stored.access_token != emulator.settings.access_token
    restarted = make_clients(config, engine, clock=clock)
    assert restarted[0].access_token == stored.access_token
    assert poll_once(restarted, engine).ok
    assert emulator.stats.token_refreshes == 1
