"""Full speed within the portal's limits, and nothing lost or doubled when limits and faults hit."""

from __future__ import annotations

import math
import time
from collections import Counter

from conftest import oauth_portal
from sqlalchemy import Engine, func, select

from poller.config import parse_config
from poller.daemon import make_clients, poll_once
from poller.emulator import Emulator, EmulatorSettings
from poller.models import PollError, Snapshot


def quick_sleep(seconds: float) -> None:
    """Backoffs shortened 20 times: the test checks what is retried, not how long it waits."""
    time.sleep(seconds / 20)


def one_portal(emulator: Emulator, database_url: str, users: object, **portal: object) -> object:
    entry: dict[str, object] = {"name": "emu", "webhook_url": emulator.webhook_url, "users": users}
    entry.update(portal)
    # Enough retries that 20% faults cannot exhaust them by chance (0.2^9 per batch).
    return parse_config(
        {"database": {"url": database_url}, "http": {"max_retries": 8}, "portals": [entry]}, {}
    )


def stored_per_user(engine: Engine) -> Counter[int]:
    with engine.connect() as connection:
        rows = connection.execute(select(Snapshot.user_id, func.count()).group_by(Snapshot.user_id)).all()
    return Counter({user: count for user, count in rows})


def test_a_cycle_of_n_users_sends_ceil_n_over_50_batches(engine: Engine, database_url: str) -> None:
    emulator = Emulator(EmulatorSettings(users=1234, rate=0)).start()
    try:
        config = one_portal(emulator, database_url, list(range(1, 1235)))
        report = poll_once(make_clients(config, engine), engine)  # type: ignore[arg-type]
    finally:
        emulator.stop()
    assert report.users_ok == 1234
    assert emulator.stats.requests == math.ceil(1234 / 50) == report.requests
    assert sum(emulator.stats.statuses_answered.values()) == 1234


def test_a_strict_bucket_never_answers_query_limit_exceeded(engine: Engine, database_url: str) -> None:
    # The standard 2/s after 50, ten times faster so the test stays short.
    emulator = Emulator(EmulatorSettings(users=3000, rate=20, burst=50)).start()
    try:
        config = one_portal(emulator, database_url, "all", requests_per_second=20, burst=50)
        started = time.monotonic()
        report = poll_once(make_clients(config, engine), engine)  # type: ignore[arg-type]
        seconds = time.monotonic() - started
    finally:
        emulator.stop()
    assert emulator.stats.query_limit_exceeded == 0
    assert report.users_ok == 3000 - 3000 // 97  # users 97, 194, ... are inactive
    assert emulator.stats.requests == 60 + 60  # user.get pages + batches
    assert seconds >= (120 - 45) / 20 * 0.9  # it did wait for the drain after the burst


def test_faults_lose_no_answered_user_and_store_no_duplicate(engine: Engine, database_url: str) -> None:
    emulator = Emulator(
        EmulatorSettings(users=1000, rate=0, fault_500=0.1, fault_html=0.05, fault_drop=0.05, seed=11)
    ).start()
    offset = [0.0]
    try:
        config = one_portal(emulator, database_url, list(range(1, 1001)), requests_per_second=1000)
        clients = make_clients(
            config,
            engine,  # type: ignore[arg-type]
            sleep=quick_sleep,
            wall_clock=lambda: time.time() + offset[0],
        )
        emulator.force_query_limit(6)  # another app's storm
        first = poll_once(clients, engine)
        emulator.force_operating_limit(0.3)  # the method's time budget is spent...
        second = poll_once(clients, engine)
        time.sleep(0.4)
        offset[0] = 700.0  # ...and the client's clock passes operating_reset_at
        third = poll_once(clients, engine)
    finally:
        emulator.stop()
    assert emulator.stats.query_limit_exceeded >= 6
    assert sum(emulator.stats.faults.values()) > 0
    assert emulator.stats.operating_limit_exceeded > 0
    stored = stored_per_user(engine)
    answered = emulator.stats.statuses_answered
    assert stored == Counter(dict(answered))  # every answer stored exactly once
    assert first.users_ok + second.users_ok + third.users_ok == sum(answered.values())
    assert first.users_ok == 1000  # the storm and the faults were waited out
    assert second.users_failed == 1000 and second.users_ok == 0
    assert third.users_ok == 1000
    with engine.connect() as connection:
        codes = dict(connection.execute(select(PollError.code, func.count()).group_by(PollError.code)).all())
    assert codes.get("OPERATION_TIME_LIMIT") == 1000


def test_a_slow_portal_does_not_hold_up_the_others(engine: Engine, database_url: str) -> None:
    slow = Emulator(EmulatorSettings(users=5, rate=0, fault_slow=1.0, slow_seconds=1.5)).start()
    fast = Emulator(EmulatorSettings(users=5, rate=0)).start()
    try:
        config = parse_config(
            {
                "database": {"url": database_url},
                "portals": [
                    {"name": "slow", "webhook_url": slow.webhook_url, "users": [1, 2, 3]},
                    {"name": "fast", "webhook_url": fast.webhook_url, "users": [1, 2, 3]},
                ],
            },
            {},
        )
        report = poll_once(make_clients(config, engine), engine)
    finally:
        slow.stop()
        fast.stop()
    assert report.users_ok == 6
    with engine.connect() as connection:
        times = dict(
            connection.execute(
                select(Snapshot.portal, func.max(Snapshot.polled_at)).group_by(Snapshot.portal)
            ).all()
        )
    assert (times["slow"] - times["fast"]).total_seconds() > 1.0


def test_a_dead_refresh_token_is_an_error_row_and_other_portals_go_on(
    engine: Engine, database_url: str
) -> None:
    emulator = Emulator(EmulatorSettings(users=5)).start()
    try:
        config = parse_config(
            {
                "database": {"url": database_url},
                "portals": [
                    oauth_portal(emulator, [1, 2], refresh_token="dead-refresh-token"),
                    {"name": "hook", "webhook_url": emulator.webhook_url, "users": [1, 2]},
                ],
            },
            {},
        )
        emulator.expire_tokens()
        report = poll_once(make_clients(config, engine), engine)
    finally:
        emulator.stop()
    assert (report.users_ok, report.users_failed) == (2, 2)
    with engine.connect() as connection:
        errors = connection.execute(select(PollError.portal, PollError.code, PollError.message)).all()
    assert {(portal, code) for portal, code, _ in errors} == {("oauth", "invalid_grant")}
    assert all("re-authorize" in message and "dead-refresh-token" not in message for _, _, message in errors)
