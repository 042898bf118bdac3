"""Full speed within the portal's limits, and nothing lost or doubled when limits and faults hit.

The poller and the emulator share one ManualClock: the client's waits move the emulator's
bucket and operating window too, so nothing here sleeps for real.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import pytest
from conftest import MakeEmulator, make_config, on_sqlite_only, portal
from sqlalchemy import Engine, func, select

from poller.clients import make_clients
from poller.clock import ManualClock
from poller.daemon.metrics import Metrics
from poller.models import PollError, Snapshot
from poller.poll.cycle import poll_once


def stored_per_user(engine: Engine) -> Counter[int]:
    with engine.connect() as connection:
        rows = connection.execute(select(Snapshot.user_id, func.count()).group_by(Snapshot.user_id)).all()
    return Counter({user: count for user, count in rows})


def error_codes(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(select(PollError.code, func.count()).group_by(PollError.code)).all())  # type: ignore[arg-type]


@on_sqlite_only  # storage is not the point here
def test_a_cycle_of_n_users_sends_ceil_n_over_50_batches(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=1234, rate=0, clock=clock)
    config = make_config(portal(emulator, list(range(1, 1235))), database_url=database_url)
    report = poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
    assert (report.users_ok, report.users_failed) == (1234, 0)
    assert emulator.stats.requests == math.ceil(1234 / 50) == report.requests
    assert emulator.stats.statuses_answered == Counter(dict.fromkeys(range(1, 1235), 1))


@on_sqlite_only  # storage is not the point here
def test_the_standard_bucket_is_used_to_its_ceiling_and_never_overflows(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=3000, rate=2, burst=50, clock=clock)
    config = make_config(portal(emulator, "all", requests_per_second=2, burst=50), database_url=database_url)
    metrics = Metrics(["emu"])
    started = clock.now()
    report = poll_once(make_clients(config, engine, clock=clock, metrics=metrics), engine, clock=clock.now)
    waited = (clock.now() - started).total_seconds()
    assert emulator.stats.query_limit_exceeded == 0
    counted = metrics.registry.get_sample_value(
        "timeman_poller_rate_limit_wait_seconds_total", {"portal": "emu"}
    )
    assert counted == pytest.approx(waited, abs=1.0)  # the bucket's waits are what moved the clock
    assert report.users_ok == 3000 - 3000 // 97  # users 97, 194, ... are inactive
    assert emulator.stats.requests == 60 + 60  # user.get pages + batches
    # After the burst the 2/s drain paces it: no faster (no 503), and not much slower.
    assert (120 - 50) / 2 <= waited <= (120 - 45 + 5) / 2


def test_faults_lose_no_answered_user_and_store_no_duplicate(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(
        users=1000, rate=0, fault_500=0.1, fault_html=0.05, fault_drop=0.05, seed=11, clock=clock
    )
    # Enough retries that 20% faults cannot exhaust them by chance (0.2^9 per batch).
    config = make_config(
        portal(emulator, list(range(1, 1001)), requests_per_second=1000),
        database_url=database_url,
        http={"max_retries": 8},
    )
    clients = make_clients(config, engine, clock=clock)
    emulator.force_query_limit(6)  # another app's storm
    first = poll_once(clients, engine, clock=clock.now)
    emulator.force_operating_limit(300)  # the method's time budget is spent...
    second = poll_once(clients, engine, clock=clock.now)
    clock.advance(timedelta(minutes=11).total_seconds())  # ...until its window has passed
    third = poll_once(clients, engine, clock=clock.now)
    assert emulator.stats.query_limit_exceeded >= 6
    assert sum(emulator.stats.faults.values()) > 0
    assert emulator.stats.operating_limit_exceeded > 0
    answered = emulator.stats.statuses_answered
    assert stored_per_user(engine) == Counter(dict(answered))  # every answer stored exactly once
    assert answered == Counter(dict.fromkeys(range(1, 1001), 2))
    assert (first.users_ok, first.users_failed) == (1000, 0)  # the storm and the faults were waited out
    assert (second.users_ok, second.users_failed) == (0, 1000)
    assert (third.users_ok, third.users_failed) == (1000, 0)
    assert error_codes(engine) == {"OPERATION_TIME_LIMIT": 1}  # one portal row: the method is blocked


SLOW_SECONDS = 0.2  # each of the slow portal's answers: a real wait, kept short


@on_sqlite_only  # storage is not the point here
def test_a_slow_portal_does_not_hold_up_the_others(
    engine: Engine, database_url: str, make_emulator: MakeEmulator
) -> None:
    # Real time on purpose: only a socket shows whether portals are polled side by side.
    slow = make_emulator(users=5, rate=0, fault_slow=1.0, slow_seconds=SLOW_SECONDS)
    fast = make_emulator(users=5, rate=0)
    config = make_config(
        portal(slow, [1, 2, 3], name="slow"), portal(fast, [1, 2, 3], name="fast"), database_url=database_url
    )
    report = poll_once(make_clients(config, engine), engine)
    assert (report.users_ok, report.users_failed) == (6, 0)
    with engine.connect() as connection:
        times = dict(
            connection.execute(
                select(Snapshot.portal, func.max(Snapshot.polled_at)).group_by(Snapshot.portal)
            ).all()
        )
    assert (times["slow"] - times["fast"]).total_seconds() >= SLOW_SECONDS - 0.1  # the fast one did not wait


@on_sqlite_only  # storage is not the point here
def test_a_dead_refresh_token_is_an_error_row_and_other_portals_go_on(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=5, clock=clock)
    config = make_config(
        portal(emulator, [1, 2], oauth=True, refresh_token="dead-refresh-token"),
        portal(emulator, [1, 2], name="hook"),
        database_url=database_url,
    )
    emulator.expire_tokens()
    report = poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)
    assert (report.users_ok, report.users_failed) == (2, 2)
    with engine.connect() as connection:
        errors = connection.execute(select(PollError.portal, PollError.code, PollError.message)).all()
    assert {(portal, code) for portal, code, _ in errors} == {("oauth", "invalid_grant")}
    assert all("re-authorize" in message and "dead-refresh-token" not in message for _, _, message in errors)


@on_sqlite_only  # storage is not the point here
def test_an_access_token_expires_on_the_shared_clock_and_is_refreshed_once(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=5, token_lifetime=3600, clock=clock)
    config = make_config(portal(emulator, [1, 2], oauth=True), database_url=database_url)
    clients = make_clients(config, engine, clock=clock)
    assert poll_once(clients, engine, clock=clock.now).ok
    assert emulator.stats.token_refreshes == 0
    clock.advance(3601)
    assert poll_once(clients, engine, clock=clock.now).ok
    assert poll_once(clients, engine, clock=clock.now).ok
    assert emulator.stats.token_refreshes == 1
