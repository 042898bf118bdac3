"""A byte that is not UTF-8 costs only the value it is in (issue #14, row 6d).

The emulator's `bad_byte` puts the byte 0xFF into one user's IP_OPEN inside an otherwise
well-formed answer, a batch of 50 users included. Every user is stored; that user's value
holds U+FFFD, and a BAD_ENCODING row names the user and the key.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import MakeEmulator, make_config, on_sqlite_only, portal
from sqlalchemy import Engine, select

from poller import views
from poller.bitrix.lenient_text import ReplacedText, mark_replacements
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator
from poller.emulator.faults import json_bytes
from poller.models import PollError, Snapshot
from poller.poll.cycle import poll_once
from poller.poll.undecodable import flag_row, undecodable_keys

BAD_USER = 17


def poll(emulator: Emulator, engine: Engine, users: list[int], clock: ManualClock) -> Any:
    config = make_config(portal(emulator, users, requests_per_second=1000), http={"max_retries": 0})
    return poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)


def test_the_emulator_sends_the_one_bad_byte_inside_valid_json() -> None:
    body = json_bytes({"result": {"u17": {"IP_OPEN": "10.0.0.\udcff"}, "u18": {"IP_OPEN": "ü"}}})
    assert body.count(b"\xff") == 1
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert b'"10.0.0.\xff"' in body and b'"\\u00fc"' in body


def test_a_bad_byte_in_one_users_value_costs_that_value_only(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(users=60, clock=clock)
    emulator.set_hostile(BAD_USER, "bad_byte")
    users = list(range(1, 61))  # two batches: the first, of 50, holds the bad byte
    with caplog.at_level(logging.WARNING):
        report = poll(emulator, engine, users, clock)
    assert (report.users_ok, report.users_failed) == (60, 0)
    with engine.connect() as connection:
        stored = {row.user_id: row for row in connection.execute(select(Snapshot.__table__))}
        flags = [tuple(row) for row in connection.execute(
            select(PollError.user_id, PollError.code, PollError.http_status, PollError.message)
        )]  # fmt: skip
        latest = connection.execute(
            select(views.latest_status.c.stale, views.latest_status.c.stale_reason).where(
                views.latest_status.c.user_id == BAD_USER
            )
        ).one()
    assert sorted(stored) == users
    bad = stored[BAD_USER]
    world = emulator.world.status(BAD_USER, clock.now())
    assert bad.ip_open == "10.0.0.\ufffd" and bad.raw["IP_OPEN"] == "10.0.0.\ufffd"
    assert (bad.status, bad.tz_offset) == (world["STATUS"], world["TZ_OFFSET"])  # the rest as it came
    assert bad.time_start is not None or world["TIME_START"] is None
    assert all("\ufffd" not in str(row.raw) for user_id, row in stored.items() if user_id != BAD_USER)
    assert flags == [
        (
            BAD_USER,
            "BAD_ENCODING",
            None,
            f"portal emu user {BAD_USER}: IP_OPEN held bytes that are not UTF-8; "
            "stored with U+FFFD in their place, the rest of the answer as it came",
        )
    ]
    assert tuple(latest) == (False, None)  # stored: the flag does not make the row stale
    assert "answer holds bytes that are not UTF-8 (the first at byte" in caplog.text
    # The next cycle flags it again and stores everyone again.
    clock.advance(60)
    assert poll(emulator, engine, users, clock).users_failed == 0


@on_sqlite_only  # the decoding is the point; storing U+FFFD is tested on both above
def test_a_single_users_answer_with_a_bad_byte_is_stored_and_flagged(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=20, clock=clock)
    emulator.set_hostile(BAD_USER, "bad_byte")
    assert poll(emulator, engine, [BAD_USER], clock).users_ok == 1
    with engine.connect() as connection:
        ip_open = connection.execute(select(Snapshot.ip_open)).scalar_one()
        codes = list(connection.execute(select(PollError.code)).scalars())
    assert (ip_open, codes) == ("10.0.0.\ufffd", ["BAD_ENCODING"])


@on_sqlite_only  # the decoding is the point; storing U+FFFD is tested on both above
def test_a_ufffd_a_user_typed_is_not_flagged_and_a_bad_byte_beside_it_is(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=20, clock=clock)
    typed = BAD_USER + 1
    emulator.set_hostile(typed, "typed_fffd")
    assert "\ufffd".encode() in json_bytes({"IP_CLOSE": "10.0.0.\ufffd"})  # EF BF BD, valid UTF-8
    assert poll(emulator, engine, [typed], clock).users_ok == 1  # an answer that is all UTF-8
    emulator.set_hostile(BAD_USER, "bad_byte", "typed_fffd")
    clock.advance(60)
    assert poll(emulator, engine, [BAD_USER, typed], clock).users_ok == 2  # one batch holds both
    with engine.connect() as connection:
        flags = [tuple(row) for row in connection.execute(select(PollError.user_id, PollError.message))]
        stored = connection.execute(
            select(Snapshot.user_id, Snapshot.ip_open, Snapshot.ip_close).order_by(Snapshot.id)
        ).all()
    assert [tuple(row) for row in stored if row.user_id == BAD_USER] == [
        (BAD_USER, "10.0.0.\ufffd", "10.0.0.\ufffd")
    ]
    assert {row.ip_close for row in stored if row.user_id == typed} == {"10.0.0.\ufffd"}
    assert flags == [
        (
            BAD_USER,
            f"portal emu user {BAD_USER}: IP_OPEN held bytes that are not UTF-8; "
            "stored with U+FFFD in their place, the rest of the answer as it came",
        )
    ]


def test_undecodable_keys_are_named_inside_objects_and_lists() -> None:
    lost = ReplacedText("x\ufffd")
    result = {"STATUS": "OPENED", "A": {"B": ["ok", lost]}, ReplacedText("K\ufffd"): 1, "IP_OPEN": lost,
              "IP_CLOSE": "typed \ufffd"}  # fmt: skip
    assert list(undecodable_keys(result)) == ["A.B[1]", "K\ufffd", "IP_OPEN"]
    assert flag_row("acme", 1, clock_now(), {"STATUS": "OPENED", "IP_OPEN": "\ufffd"}) is None
    many = {f"F{n}": lost for n in range(7)}
    row = flag_row("acme", 1, clock_now(), many)
    assert row is not None and "F0, F1, F2, F3, F4 and 2 more held bytes" in row.message


def clock_now() -> Any:
    return ManualClock().now()


def test_marking_replacements_reaches_keys_and_deep_lists_without_recursion() -> None:
    deep: list[object] = ["a\udcff"]
    for _ in range(5000):
        deep = [deep]
    tree = mark_replacements({"k\udcfe": deep, "typed": "\ufffd"})
    (key,) = [k for k in tree if k != "typed"]
    assert isinstance(key, ReplacedText) and key == "k\ufffd"
    assert not isinstance(tree["typed"], ReplacedText)
    inner = tree[key]
    while isinstance(inner, list) and not isinstance(inner[0], str):
        inner = inner[0]
    assert isinstance(inner[0], ReplacedText) and inner[0] == "a\ufffd"
