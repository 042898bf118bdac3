"""The portal's own errors, asked of the emulator by name, through real HTTP into the database.

A block, a deleted portal, a plan without REST, a missing scope, an older build's 403 or an
auth error inside a batch's `result_error` stop the portal after its first request, with one
error row; a server fault or a proxy's 504 page is retried, and when it lasts it costs the
batch it hit, not the portal. Statuses differ between builds: the code decides.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import MakeEmulator, make_config, on_sqlite_only, portal
from sqlalchemy import Engine, select

from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator
from poller.emulator.portal_errors import REQUEST_ERRORS
from poller.models import PollError, Snapshot
from poller.poll.cycle import PollReport, poll_once

# The portal's errors and the retries are the point, not storage: once, on SQLite.
pytestmark = on_sqlite_only


def poll(emulator: Emulator, engine: Engine, users: int, clock: ManualClock, retries: int = 0) -> PollReport:
    config = make_config(
        portal(emulator, list(range(1, users + 1)), requests_per_second=1000),
        http={"max_retries": retries},
    )
    return poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)


def error_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(PollError.user_id, PollError.code, PollError.http_status).order_by(PollError.user_id)
        )
        return [tuple(row) for row in rows]


def stored_users(engine: Engine) -> int:
    with engine.connect() as connection:
        return len(connection.execute(select(Snapshot.user_id)).all())


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("OVERLOAD_LIMIT", None, "OVERLOAD_LIMIT"),  # 503, as older builds answer
        ("OVERLOAD_LIMIT", 401, "OVERLOAD_LIMIT"),  # 401, as the current table says
        ("PORTAL_DELETED", None, "PORTAL_DELETED"),
        ("PORTAL_DELETED", 410, "PORTAL_DELETED"),
        ("REST_NOT_IN_PLAN", None, "ACCESS_DENIED"),
    ],
)
def test_a_portal_wide_answer_to_the_whole_request_stops_the_portal_after_one_request(
    kind: str,
    status: int | None,
    code: str,
    make_emulator: MakeEmulator,
    clock: ManualClock,
    engine: Engine,
) -> None:
    emulator = make_emulator(users=120, rate=0, clock=clock)
    emulator.fail_requests(kind, status=status)

    (outcome,) = poll(emulator, engine, 120, clock, retries=2).portals

    assert (outcome.requests, outcome.portal_failed, outcome.users_ok, outcome.users_failed) == (
        1,
        True,
        0,
        120,
    )
    assert error_rows(engine) == [(None, code, status or REQUEST_ERRORS[kind][0])]
    assert stored_users(engine) == 0


@pytest.mark.parametrize(
    ("kind", "status", "users_ok"),
    [
        ("insufficient_scope", None, 0),  # 401, the current table
        ("insufficient_scope", 403, 0),  # 403, older builds
        ("ACCESS_DENIED", None, 1),  # older builds refusing other users: the caller still answers
        ("NO_AUTH_FOUND", None, 0),
        ("expired_token", None, 0),
    ],
)
def test_a_portal_wide_error_inside_a_batch_s_result_error_stops_the_portal(
    kind: str,
    status: int | None,
    users_ok: int,
    make_emulator: MakeEmulator,
    clock: ManualClock,
    engine: Engine,
) -> None:
    emulator = make_emulator(users=120, rate=0, clock=clock)
    emulator.fail_calls(kind, "timeman.status", status=status)

    (outcome,) = poll(emulator, engine, 120, clock, retries=2).portals

    assert emulator.stats.by_status == {200: 1}  # the batch itself answered HTTP 200
    assert (outcome.requests, outcome.portal_failed) == (1, True)
    assert (outcome.users_ok, outcome.users_failed) == (users_ok, 120 - users_ok)
    assert error_rows(engine) == [(None, kind, None)]  # a sub-call's error has no HTTP status
    assert stored_users(engine) == users_ok


@pytest.mark.parametrize(("kind", "code", "status"), [
    ("ERROR_UNEXPECTED_ANSWER", "ERROR_UNEXPECTED_ANSWER", 500),
    ("GATEWAY_TIMEOUT", "BAD_RESPONSE", 504),
])  # fmt: skip
def test_a_server_fault_or_a_504_page_is_retried_and_then_answered(
    kind: str, code: str, status: int, make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator = make_emulator(users=30, rate=0, clock=clock)
    emulator.fail_requests(kind, times=2)

    report = poll(emulator, engine, 30, clock, retries=2)

    (outcome,) = report.portals
    assert emulator.stats.by_status == {status: 2, 200: 1}
    assert (outcome.requests, outcome.users_ok, outcome.portal_failed) == (3, 30, False)
    assert error_rows(engine) == [] and stored_users(engine) == 30


@pytest.mark.parametrize(("kind", "code", "status"), [
    ("ERROR_UNEXPECTED_ANSWER", "ERROR_UNEXPECTED_ANSWER", 500),
    ("GATEWAY_TIMEOUT", "BAD_RESPONSE", 504),
])  # fmt: skip
def test_a_lasting_server_fault_costs_each_batch_its_users_not_the_portal(
    kind: str, code: str, status: int, make_emulator: MakeEmulator, clock: ManualClock, engine: Engine
) -> None:
    emulator = make_emulator(users=120, rate=0, clock=clock)
    emulator.fail_requests(kind)

    (outcome,) = poll(emulator, engine, 120, clock, retries=1).portals

    assert outcome.requests == 3 * 2  # every batch tried, each once more: the portal not stopped
    assert (outcome.users_ok, outcome.users_failed) == (0, 120)
    assert set(error_rows(engine)) == {(user, code, status) for user in range(1, 121)}
