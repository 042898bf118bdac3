"""Every odd answer becomes an error row or a snapshot with nulls and a warning, never a crash."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import Engine, select

from poller.config import parse_config
from poller.daemon import make_clients, poll_once
from poller.emulator import Emulator, EmulatorSettings
from poller.models import PollError, Snapshot


def poll(emulator: Emulator, engine: Engine, users: list[int]):  # type: ignore[no-untyped-def]
    config = parse_config(
        {
            "http": {"max_retries": 1},
            "portals": [
                {
                    "name": "odd",
                    "webhook_url": emulator.webhook_url,
                    "users": users,
                    "requests_per_second": 1000,
                }
            ],
        },
        {},
    )
    return poll_once(make_clients(config, engine, sleep=lambda s: time.sleep(s / 50)), engine)


def errors(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(select(PollError.user_id, PollError.code, PollError.http_status))
        ]


def snapshot(engine: Engine, user_id: int) -> Snapshot:
    with engine.connect() as connection:
        return connection.execute(select(Snapshot).where(Snapshot.user_id == user_id)).one()  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("fault", "code", "status", "message"),
    [
        ("fault_html", "BAD_RESPONSE", 502, "answer is an HTML page"),
        ("fault_truncated", "BAD_RESPONSE", 200, "answer is not JSON"),
        ("fault_huge", "BAD_RESPONSE", 200, "body larger than"),
        ("fault_500", "INTERNAL_SERVER_ERROR", 500, "Internal server error"),
        ("fault_drop", "CONNECTION_ERROR", None, "RemoteDisconnected"),
    ],
)
def test_a_broken_answer_is_an_error_row_per_user(
    fault: str, code: str, status: int | None, message: str, engine: Engine
) -> None:
    emulator = Emulator(EmulatorSettings(users=5, rate=0, **{fault: 1.0})).start()  # type: ignore[arg-type]
    try:
        report = poll(emulator, engine, [1, 2, 3])
    finally:
        emulator.stop()
    assert (report.users_ok, report.users_failed) == (0, 3)
    assert errors(engine) == [(1, code, status), (2, code, status), (3, code, status)]
    with engine.connect() as connection:
        messages = connection.execute(select(PollError.message)).scalars().all()
    assert all(message in m for m in messages)


def test_a_redirect_to_another_host_is_an_error_row(engine: Engine) -> None:
    emulator = Emulator(EmulatorSettings(users=5, moved_to="https://elsewhere.example.com")).start()
    try:
        poll(emulator, engine, [1, 2])
    finally:
        emulator.stop()
    assert errors(engine) == [(1, "REDIRECT", 302), (2, "REDIRECT", 302)]


def test_missing_fields_and_wrong_types_are_stored_as_nulls_with_warnings(
    emulator: Emulator, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.override_result(5, {"STATUS": "OPENED"})
    emulator.override_result(6, {"STATUS": "CLOSED", "DURATION": None, "TZ_OFFSET": "abc", "TIME_LEAKS": 5})
    emulator.override_result(7, {"STATUS": "HOLIDAY", "TIME_START": "2026-11-25T09:00:00+03:00"})
    emulator.override_result(8, ["not", "an", "object"])
    with caplog.at_level(logging.WARNING):
        report = poll(emulator, engine, [4, 5, 6, 7, 8])
    assert (report.users_ok, report.users_failed) == (5, 0)
    bare = snapshot(engine, 5)
    assert (bare.status, bare.time_start, bare.duration_seconds, bare.raw) == (
        "OPENED",
        None,
        None,
        {"STATUS": "OPENED"},
    )
    typed = snapshot(engine, 6)
    assert (typed.status, typed.duration_seconds, typed.tz_offset, typed.time_leaks_seconds) == (
        "CLOSED",
        None,
        None,
        None,
    )
    assert typed.raw["TZ_OFFSET"] == "abc"
    odd = snapshot(engine, 7)
    assert odd.status == "HOLIDAY" and odd.time_start is not None
    shapeless = snapshot(engine, 8)
    assert shapeless.status is None and shapeless.raw == {"_unparsed": ["not", "an", "object"]}
    assert "user 6: TZ_OFFSET 'abc' is not an integer" in caplog.text
    assert "user 7: STATUS 'HOLIDAY' is not one of" in caplog.text
    assert "user 8: result is list" in caplog.text
    assert snapshot(engine, 4).status in {"OPENED", "CLOSED", "PAUSED", "EXPIRED"}
