"""Every odd answer becomes an error row or a snapshot with nulls and a warning, never a crash."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import MakeEmulator, make_config, on_sqlite_only, portal
from sqlalchemy import Engine, select

from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator
from poller.models import PollError, PollRun, Snapshot
from poller.poll.cycle import PollReport, poll_once
from poller.status import parse_status

# [http] read_timeout_seconds: the whole answer, however it trickles (every 0.02 s). The hung
# and trickling answers wait it out, so it is short (a few of the trickle's bytes, never its
# 100 kB); the others get room (a 17 MB body takes its time on a busy machine) and end long
# before it.
DEADLINE = 0.1
ROOMY = 10.0


def poll(
    emulator: Emulator, engine: Engine, users: list[int], clock: ManualClock, deadline: float = ROOMY
) -> PollReport:
    config = make_config(
        portal(emulator, users, name="odd", requests_per_second=1000),
        http={"max_retries": 0, "read_timeout_seconds": deadline},
    )
    return poll_once(make_clients(config, engine, clock=clock), engine, clock=clock.now)


def errors(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(PollError.user_id, PollError.code, PollError.http_status).order_by(PollError.user_id)
        )
        return [tuple(r) for r in rows]


def messages(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(PollError.message)).scalars())


def snapshots(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(Snapshot.__table__)).mappings().all()
    return {row["user_id"]: dict(row) for row in rows}


def runs_finished(engine: Engine) -> bool:
    with engine.connect() as connection:
        return all(
            finished is not None for finished in connection.execute(select(PollRun.finished_at)).scalars()
        )


@on_sqlite_only  # storage is not the point here
@pytest.mark.parametrize(
    ("fault", "code", "status", "message"),
    [
        ("fault_html", "BAD_RESPONSE", 502, "answer is an HTML page"),
        ("fault_truncated", "BAD_RESPONSE", 200, "answer is not JSON"),
        ("fault_huge", "BAD_RESPONSE", 200, "body larger than"),
        ("fault_nested", "BAD_RESPONSE", 200, "nests too deeply"),
        ("fault_500", "INTERNAL_SERVER_ERROR", 500, "Internal server error"),
        ("fault_drop", "CONNECTION_ERROR", None, "connection"),
        ("fault_trickle", "TIMEOUT", None, f"{DEADLINE:g} s"),
        ("fault_hang", "TIMEOUT", None, f"{DEADLINE:g} s"),
    ],
)
def test_a_broken_answer_is_an_error_row_per_user(
    fault: str,
    code: str,
    status: int | None,
    message: str,
    engine: Engine,
    make_emulator: MakeEmulator,
    clock: ManualClock,
) -> None:
    emulator = make_emulator(users=5, rate=0, trickle_interval=0.02, clock=clock, **{fault: 1.0})
    report = poll(emulator, engine, [1, 2, 3], clock, DEADLINE if code == "TIMEOUT" else ROOMY)
    assert (report.users_ok, report.users_failed) == (0, 3)
    if status is None:  # no answer: the portal is unreachable, one row for the portal
        assert errors(engine) == [(None, code, status)]
    else:  # the portal answered: the next batch may work, a row per user
        assert errors(engine) == [(1, code, status), (2, code, status), (3, code, status)]
    assert all(message in m for m in messages(engine)), messages(engine)
    assert runs_finished(engine)


@on_sqlite_only  # storage is not the point here
def test_a_redirect_to_another_host_is_an_error_row(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=5, moved_to="https://elsewhere.example.com", clock=clock)
    report = poll(emulator, engine, [1, 2], clock)
    assert errors(engine) == [(None, "REDIRECT", 302)]  # a moved portal: one row for the portal
    assert report.users_failed == 2


def test_missing_fields_and_wrong_types_are_stored_as_nulls_with_warnings(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(clock=clock)
    emulator.override_result(5, {"STATUS": "OPENED"})
    emulator.override_result(6, {"STATUS": "CLOSED", "DURATION": None, "TZ_OFFSET": "abc", "TIME_LEAKS": 5})
    emulator.override_result(7, {"STATUS": "HOLIDAY", "TIME_START": "2026-11-25T09:00:00+03:00"})
    emulator.override_result(8, ["not", "an", "object"])
    with caplog.at_level(logging.WARNING):
        report = poll(emulator, engine, [4, 5, 6, 7, 8], clock)
    assert (report.users_ok, report.users_failed) == (5, 0)
    rows = snapshots(engine)
    bare = rows[5]
    assert (bare["status"], bare["time_start"], bare["duration_seconds"], bare["raw"]) == (
        "OPENED",
        None,
        None,
        {"STATUS": "OPENED"},
    )
    typed = rows[6]
    assert (typed["status"], typed["duration_seconds"], typed["tz_offset"], typed["time_leaks_seconds"]) == (
        "CLOSED",
        None,
        None,
        None,
    )
    assert typed["raw"]["TZ_OFFSET"] == "abc"
    assert rows[7]["status"] == "HOLIDAY" and rows[7]["time_start"] is not None
    assert rows[8]["status"] is None and rows[8]["raw"] == {"_unparsed": ["not", "an", "object"]}
    assert "user 6: TZ_OFFSET 'abc' is not an integer" in caplog.text
    assert "user 7: STATUS 'HOLIDAY' is not one of" in caplog.text
    assert "user 8: result is list" in caplog.text
    assert rows[4]["status"] in {"OPENED", "CLOSED", "PAUSED", "EXPIRED"}


HOSTILE = {4: "long_ip", 5: "nul", 6: "huge_duration", 7: "huge_offset", 8: "far_date", 9: "long_status"}


def test_hostile_values_stay_with_their_user_and_the_others_are_stored_whole(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(users=12, rate=0, clock=clock)
    for user, kind in HOSTILE.items():
        emulator.set_hostile(user, kind)
    with caplog.at_level(logging.WARNING):
        report = poll(emulator, engine, list(range(1, 13)), clock)
    assert (report.users_ok, report.users_failed) == (12, 0)
    assert errors(engine) == []
    rows = snapshots(engine)
    for user in set(range(1, 13)) - set(HOSTILE):  # healthy users: the world's answer, whole
        answer = emulator.world.status(user, clock.now())
        assert {k: rows[user][k] for k in parse_status(answer).values} == dict(parse_status(answer).values)
        assert rows[user]["raw"] == answer
    assert len(rows[4]["raw"]["IP_OPEN"]) == 100 and len(rows[4]["ip_open"]) < 100
    assert "\x00" not in (rows[5]["ip_open"] or "") + (rows[5]["ip_close"] or "")
    assert (rows[6]["raw"]["DURATION"], rows[6]["duration_seconds"]) == ("99999999:00:00", None)
    assert (rows[7]["raw"]["TZ_OFFSET"], rows[7]["tz_offset"]) == (99999999999999, None)
    assert (rows[8]["raw"]["TIME_START"], rows[8]["time_start"]) == ("9999-12-31T23:00:00-05:00", None)
    assert len(rows[9]["raw"]["STATUS"]) == 40 and len(rows[9]["status"]) < 40
    for user in HOSTILE:
        assert f"user {user}:" in caplog.text


@on_sqlite_only  # storage is not the point here
def test_a_nested_bracket_answer_fails_its_batch_only(
    engine: Engine, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=60, rate=0, clock=clock)
    emulator.set_hostile(55, "nested")  # the second batch: users 51..60
    report = poll(emulator, engine, list(range(1, 61)), clock)
    assert (report.users_ok, report.users_failed) == (50, 10)
    assert sorted(snapshots(engine)) == list(range(1, 51))
    assert errors(engine) == [(user, "BAD_RESPONSE", 200) for user in range(51, 61)]
    assert runs_finished(engine)
