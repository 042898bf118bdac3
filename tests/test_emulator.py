"""The emulator serves what the reference describes, and its rules run on the clock it is given.

Plain HTTP with `requests`: these tests check the portal, not the poller's client.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from conftest import MakeEmulator, wait_until

from poller.clock import ManualClock
from poller.emulator import Emulator, EmulatorSettings, SimClock, Workday, World
from poller.emulator.record import render_hms
from poller.emulator.world import EXPIRING_USER, shows_pause_moment, shows_record_id


def call(emulator: Emulator, method: str, body: Any = None, *, v3: bool = False) -> requests.Response:
    s = emulator.settings
    api = "api/" if v3 else ""
    url = f"{emulator.base_url}/rest/{api}{s.webhook_user}/{s.webhook_secret}/{method}"
    return requests.post(url, json=body if body is not None else {}, timeout=10)


def status_of(emulator: Emulator, user_id: int) -> dict[str, Any]:
    answer = call(emulator, "timeman.status", {"USER_ID": user_id})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]  # type: ignore[no-any-return]


def next_pause(emulator: Emulator, user_id: int, after: datetime) -> Workday:
    """The user's first workday whose pause starts after `after`."""
    for ahead in range(14):
        day = emulator.world.workday(user_id, after.date() + timedelta(days=ahead))
        if day is not None and day.pause_start is not None and day.pause_start > after:
            return day
    raise AssertionError(f"user {user_id} has no pause after {after}")


# -- timeman.status shapes ---------------------------------------------------------------


def test_a_paused_user_gets_null_time_finish_or_the_pause_moment_as_builds_differ(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=12, clock=clock)
    null_user, moment_user = 5, 8
    assert not shows_pause_moment(null_user) and shows_pause_moment(moment_user)
    for user in sorted(
        (null_user, moment_user), key=lambda u: next_pause(emulator, u, clock.now()).pause_start
    ):
        day = next_pause(emulator, user, clock.now())
        clock.set(day.pause_start + timedelta(minutes=1))  # type: ignore[operator]
        result = status_of(emulator, user)
        assert result["STATUS"] == "PAUSED"
        assert result["TIME_LEAKS"] == "00:00:00"  # the running pause is not in it
        if user == moment_user:
            assert datetime.fromisoformat(result["TIME_FINISH"]) == day.pause_start
        else:
            assert result["TIME_FINISH"] is None


def test_the_record_id_is_stable_for_a_day_and_shown_by_newest_builds_only(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=12, clock=clock)
    first = {user: status_of(emulator, user) for user in (1, 5, 6)}
    clock.advance(3 * 3600)
    later = {user: status_of(emulator, user) for user in (1, 5, 6)}
    for user in (1, 5):
        assert shows_record_id(user)
        day = emulator.world.last_workday(user, clock.now())
        assert day is not None and first[user]["ID"] == later[user]["ID"] == day.record_id
    assert "ID" not in first[6] and "ID" not in later[6]


# -- batch -------------------------------------------------------------------------------


def test_a_batch_of_more_than_50_runs_50_and_fails_the_rest_with_http_200(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=60, clock=clock)
    commands = {f"u{user}": f"timeman.status?USER_ID={user}" for user in range(1, 61)}
    answer = call(emulator, "batch", {"halt": 0, "cmd": commands})
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert list(result["result"]) == [f"u{user}" for user in range(1, 51)]
    assert result["result_error"] == {
        f"u{user}": {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
        for user in range(51, 61)
    }
    assert sum(emulator.stats.statuses_answered.values()) == 50


def test_halt_stops_a_batch_at_the_first_failing_sub_call(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=5, clock=clock)
    commands = {
        "a": "timeman.status?USER_ID=1",
        "b": "timeman.status?USER_ID=999",
        "c": "timeman.status?USER_ID=2",
    }
    halted = call(emulator, "batch", {"halt": 1, "cmd": commands}).json()["result"]
    assert (list(halted["result"]), list(halted["result_error"])) == (["a"], ["b"])
    went_on = call(emulator, "batch", {"halt": 0, "cmd": commands}).json()["result"]
    assert (list(went_on["result"]), list(went_on["result_error"])) == (["a", "c"], ["b"])
    assert went_on["result_error"]["b"] == {"error": "", "error_description": "User not found"}


def test_an_empty_section_of_a_batch_is_an_empty_list(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=5, clock=clock)
    result = call(emulator, "batch", {"cmd": {"x": "timeman.status?USER_ID=900"}}).json()["result"]
    assert (result["result"], result["result_time"], result["result_total"]) == ([], [], [])


# -- rules on the injected clock ---------------------------------------------------------


def test_the_leaky_bucket_drains_on_the_given_clock(make_emulator: MakeEmulator, clock: ManualClock) -> None:
    emulator = make_emulator(users=3, rate=2, burst=5, clock=clock)
    codes = [call(emulator, "timeman.status").status_code for _ in range(6)]
    assert codes == [200] * 5 + [503]
    assert call(emulator, "timeman.status").json() == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }
    clock.advance(0.5)  # one request drains at 2/s
    assert [call(emulator, "timeman.status").status_code for _ in range(2)] == [200, 503]


def test_the_operating_limit_is_kept_per_method_on_the_given_clock(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=3, rate=0, operating_limit=0.05, operating_cost=0.01, clock=clock)
    answers = [call(emulator, "timeman.status") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[-1].json()["error"] == "OPERATION_TIME_LIMIT" and "time" not in answers[-1].json()
    last_ok = answers[4].json()["time"]
    assert last_ok["operating"] == pytest.approx(0.05)
    assert last_ok["operating_reset_at"] == (int(clock.time()) // 60 + 10) * 60
    assert call(emulator, "user.get").status_code == 200  # another method's budget is its own
    clock.set(datetime.fromtimestamp(last_ok["operating_reset_at"], UTC))
    assert call(emulator, "timeman.status").status_code == 200


def test_a_forced_operating_limit_blocks_one_method_until_the_clock_passes_it(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=3, rate=0, clock=clock)
    emulator.force_operating_limit(120)
    assert call(emulator, "timeman.status").status_code == 429
    assert call(emulator, "user.get").status_code == 200
    clock.advance(121)
    assert call(emulator, "timeman.status").status_code == 200
    assert emulator.stats.operating_limit_exceeded == 1


def test_an_access_token_expires_when_the_clock_passes_its_lifetime(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=3, token_lifetime=60, clock=clock)
    url = f"{emulator.base_url}/rest/timeman.status"
    body = {"auth": emulator.settings.access_token}
    assert requests.post(url, json=body, timeout=10).status_code == 200
    clock.advance(61)
    expired = requests.post(url, json=body, timeout=10)
    assert (expired.status_code, expired.json()["error"]) == (401, "expired_token")


def test_the_world_runs_speed_times_faster_than_the_clock_of_the_rules(clock: ManualClock) -> None:
    emulator = Emulator(EmulatorSettings(users=3, speed=60), clock=clock)
    before = emulator.world.clock.now()
    clock.advance(10)
    assert emulator.world.clock.now() - before == timedelta(minutes=10)
    assert emulator.world.clock.start == clock.now() - timedelta(seconds=10)


# -- directory ---------------------------------------------------------------------------


def test_user_get_pages_rich_rows_from_the_world(make_emulator: MakeEmulator, clock: ManualClock) -> None:
    emulator = make_emulator(users=120, clock=clock)
    first = call(emulator, "user.get", {"FILTER": {"ACTIVE": True}, "start": 0}).json()
    assert (len(first["result"]), first["total"], first["next"]) == (50, 119, 50)
    last = call(emulator, "user.get", {"FILTER": {"ACTIVE": True}, "start": 100}).json()
    assert (len(last["result"]), "next" in last) == (19, False)
    assert (
        first["result"][0]
        == emulator.world.user(1)
        == {
            "ID": "1",
            "ACTIVE": True,
            "NAME": "Boris",
            "LAST_NAME": "Ivanova",
            "EMAIL": "boris.ivanova1@example.com",
            "WORK_POSITION": "Accountant",
            "UF_DEPARTMENT": [2],
            "TIME_ZONE": "Africa/Johannesburg",
            "USER_TYPE": "employee",
        }
    )
    extranet = emulator.world.user(13)
    assert (extranet["USER_TYPE"], extranet["UF_DEPARTMENT"]) == ("extranet", [])
    assert call(emulator, "user.get", {"FILTER": {">ID": 118}, "start": -1}).json()["result"] == [
        emulator.world.user(119),
        emulator.world.user(120),
    ]


def test_department_get_pages_the_tree_or_refuses_without_the_scope(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=480)
    first = call(emulator, "department.get").json()
    assert (len(first["result"]), first["total"], first["next"]) == (50, 61, 50)
    rest = call(emulator, "department.get", {"start": 50}).json()
    rows = first["result"] + rest["result"]
    assert rows == emulator.world.departments()
    assert rows[0] == {"ID": "1", "NAME": "Emulated Ltd", "SORT": 500, "UF_HEAD": "1"}
    assert rows[1] == {"ID": "2", "NAME": "Sales", "SORT": 500, "PARENT": "1", "UF_HEAD": "1"}
    ids = {row["ID"] for row in rows}
    assert all(row.get("PARENT", "1") in ids for row in rows)
    refusing = make_emulator(users=5, department_scope=False)
    denied = call(refusing, "department.get")
    assert (denied.status_code, denied.json()["error"]) == (403, "insufficient_scope")


# -- REST 3.0: timeman.record.list -------------------------------------------------------


def record_query(user: Any, *conditions: list[Any], **rest: Any) -> dict[str, Any]:
    return {"filter": [["userId", user], *conditions], **rest}


def test_record_list_serves_the_worlds_records_in_pages_without_a_total(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    month = ["2026-10-01T00:00:00+00:00", "2026-10-31T23:59:59+00:00"]
    answer = call(emulator, "timeman.record.list", record_query(6, ["startTime", "between", month]), v3=True)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"result", "time"} and set(body["result"]) == {"items"}
    truth = [
        r.item()
        for r in emulator.world.records(6, date(2026, 9, 30), date(2026, 11, 1))
        if "2026-10-01" <= r.start_time.isoformat() < "2026-11-01"
    ]
    assert body["result"]["items"] == truth and len(truth) == 21  # 22 working days, 1 sick
    item = truth[0]
    assert set(item) == {
        "id",
        "userId",
        "startTime",
        "endTime",
        "duration",
        "breakLength",
        "state",
        "isApproved",
    }
    assert item["state"] == {"status": "CLOSED"} and item["userId"] == 6
    # User 6's records do not add up, like the reference's own (42 s apart, duration 28 s).
    spans = [
        (datetime.fromisoformat(i["endTime"]) - datetime.fromisoformat(i["startTime"])).total_seconds()
        for i in truth
    ]
    assert all(0 < s - i["breakLength"] - i["duration"] <= 900 for s, i in zip(spans, truth, strict=True))
    june = datetime(2026, 6, 1, tzinfo=UTC)
    pages: list[list[dict[str, Any]]] = []
    while not pages or len(pages[-1]) == 50:
        query = record_query(6, ["startTime", ">=", june.isoformat()], pagination={"page": len(pages) + 1})
        pages.append(call(emulator, "timeman.record.list", query, v3=True).json()["result"]["items"])
    assert len(pages) == 3 and len(pages[-1]) < 50  # a short page ends it: there is no total to read
    assert [i for p in pages for i in p] == [r.item() for r in emulator.world.records_started(6, june, None)]


def test_record_list_filters_orders_selects_and_caps_a_page_at_50(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    since = ["startTime", ">", "2026-11-02T00:00:00+00:00"]
    newest_first = call(
        emulator,
        "timeman.record.list",
        record_query(6, since, order={"startTime": "DESC"}, select=["id", "duration"]),
        v3=True,
    ).json()["result"]["items"]
    truth = [
        r for r in emulator.world.records(6, date(2026, 11, 1), date(2026, 11, 16)) if r.start_time.day >= 2
    ]
    assert newest_first == [{"id": r.id, "duration": r.duration} for r in reversed(truth)]
    big = call(emulator, "timeman.record.list", record_query(6, pagination={"limit": 200}), v3=True)
    assert len(big.json()["result"]["items"]) == 50
    offset = call(
        emulator, "timeman.record.list", record_query(6, pagination={"limit": 5, "offset": 2}), v3=True
    )
    all_records = emulator.world.records_started(6, None, None)
    assert [i["id"] for i in offset.json()["result"]["items"]] == [r.id for r in all_records[2:7]]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"filter": [["userId", [1, 2]]]}, "INVALIDFILTEREXCEPTION"),
        ({"filter": [["userId", 1], ["userId", 2]]}, "INVALIDFILTEREXCEPTION"),
        ({"filter": [["startTime", ">", "2026-01-01T00:00:00+00:00"]]}, "INVALIDFILTEREXCEPTION"),
        ({"filter": {"userId": 1}}, "INVALIDFILTEREXCEPTION"),
        ({"filter": [["userId", 1], ["duration", ">", 5]]}, "INVALIDFILTEREXCEPTION"),
        ({"filter": [["userId", 1]], "select": ["id", "colour"]}, "INVALIDSELECTEXCEPTION"),
        ({"filter": [["userId", 1]], "order": {"breakLength": "ASC"}}, "INVALIDORDEREXCEPTION"),
        ({}, "INVALIDFILTEREXCEPTION"),
    ],
)
def test_record_list_refuses_what_rest_3_refuses_in_its_own_envelope(
    query: dict[str, Any], code: str, emulator: Emulator
) -> None:
    answer = call(emulator, "timeman.record.list", query, v3=True)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == f"BITRIX_REST_V3_EXCEPTION_{code}" and error["message"]


def test_record_list_lives_only_under_rest_api_and_takes_oauth_in_the_body(emulator: Emulator) -> None:
    old_style = call(emulator, "timeman.record.list", record_query(1))
    assert (old_style.status_code, old_style.json()["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    url = f"{emulator.base_url}/rest/api/timeman.record.list"
    token = requests.post(url, json={"auth": emulator.settings.access_token, **record_query(1)}, timeout=10)
    assert token.status_code == 200 and token.json()["result"]["items"]
    no_token = requests.post(url, json=record_query(1), timeout=10)
    assert (no_token.status_code, no_token.json()["error"]) == (401, "invalid_token")
    in_query = requests.post(
        url, params={"auth": emulator.settings.access_token}, json=record_query(1), timeout=10
    )
    assert (in_query.status_code, in_query.json()["error"]) == (401, "invalid_token")
    assert emulator.stats.auth_placements == {"body": 1, "none": 1, "ignored query": 1}


def test_the_rest_3_batch_takes_its_token_from_a_bearer_header_not_the_query_string(
    emulator: Emulator,
) -> None:
    url = f"{emulator.base_url}/rest/api/batch"
    body = [{"method": "timeman.record.list", "query": record_query(1)}]
    token = emulator.settings.access_token
    bearer = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bearer.status_code == 200 and bearer.json()["result"][0]["items"]
    in_query = requests.post(url, params={"auth": token}, json=body, timeout=10)
    assert (in_query.status_code, in_query.json()["error"]) == (401, "invalid_token")
    assert emulator.stats.auth_placements == {"header": 1, "ignored query": 1}


def test_a_portal_without_rest_3_or_without_the_right_says_so(make_emulator: MakeEmulator) -> None:
    old = make_emulator(users=3, rest_v3=False)
    answer = call(old, "timeman.record.list", record_query(1), v3=True)
    assert (answer.status_code, answer.json()) == (
        404,
        {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
    )
    denied = call(
        make_emulator(users=3, records_access=False), "timeman.record.list", record_query(1), v3=True
    )
    assert (denied.status_code, denied.json()["error"]["code"]) == (
        403,
        "BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION",
    )


def test_the_rest_3_batch_answers_in_order_and_can_be_refused(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=60, clock=clock)
    month = ["startTime", "between", ["2026-11-01T00:00:00+00:00", "2026-11-15T23:59:59+00:00"]]
    calls = [{"method": "timeman.record.list", "query": record_query(user, month)} for user in range(1, 56)]
    answer = call(emulator, "batch", calls, v3=True)
    assert answer.status_code == 200
    results = answer.json()["result"]
    assert len(results) == 55
    for user, result in zip(range(1, 51), results, strict=False):
        truth = emulator.world.records_started(
            user, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 15, 23, 59, 59, tzinfo=UTC)
        )
        assert result == {"items": [r.item() for r in truth]}
    assert all(r["error"]["code"] == "ERROR_BATCH_LENGTH_EXCEEDED" for r in results[50:])
    assert emulator.stats.requests == 1 and sum(emulator.stats.records_answered.values()) == 50
    old_form = call(emulator, "batch", {"cmd": {"a": "timeman.record.list"}}, v3=True)
    assert old_form.json()["error"]["code"] == "BITRIX_REST_V3_EXCEPTION_INVALIDSELECTEXCEPTION"
    refusing = make_emulator(users=3, rest_v3_batch=False)
    refused = call(refusing, "batch", calls[:2], v3=True)
    assert refused.status_code == 404 and refused.json()["error"]["code"].startswith(
        "BITRIX_REST_V3_EXCEPTION_"
    )


# -- faults and hostile values -----------------------------------------------------------


def raw_exchange(emulator: Emulator, timeout: float) -> socket.socket:
    """Send one webhook request over a bare socket; return the socket to read the answer from."""
    s = emulator.settings
    host, port = emulator.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    body = b'{"USER_ID": 1}'
    sock.sendall(
        f"POST /rest/{s.webhook_user}/{s.webhook_secret}/timeman.status HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def test_a_trickling_answer_announces_a_large_body_then_sends_a_byte_at_a_time(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(users=3, fault_trickle=1.0, trickle_interval=0.02, trickle_length=100_000)
    sock = raw_exchange(emulator, timeout=2)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 100000" in head
    started = time.monotonic()
    while len(body) < 5:
        body += sock.recv(100)
    assert time.monotonic() - started >= 4 * 0.02 * 0.9  # one byte per interval, not the whole answer
    assert b'{"result": {"STATUS"'.startswith(body[:5])
    sock.close()


def test_a_hung_connection_is_accepted_never_answered_and_released_at_stop(
    make_emulator: MakeEmulator,
) -> None:
    emulator = make_emulator(users=3, fault_hang=1.0)
    with raw_exchange(emulator, timeout=0.05) as sock:
        wait_until(lambda: emulator.stats.faults["hang"] == 1, timeout=5, what="the request hung")
        with pytest.raises(TimeoutError):  # accepted, counted, and no answer comes
            sock.recv(1)
        sock.settimeout(5)
        closed = threading.Event()
        reader = threading.Thread(target=lambda: (sock.recv(1), closed.set()), daemon=True)
        reader.start()
        emulator.stop()
        wait_until(closed.is_set, timeout=5, what="the hung connection closed at stop")
    assert emulator.stats.faults["hang"] == 1


def test_hostile_values_are_served_on_request(make_emulator: MakeEmulator, clock: ManualClock) -> None:
    emulator = make_emulator(users=10, clock=clock)
    emulator.set_hostile(3, "long_ip")
    emulator.set_hostile(4, "huge_duration", "huge_offset", "far_date", "long_status")
    emulator.set_hostile(6, "nul")
    three, four, six = status_of(emulator, 3), status_of(emulator, 4), status_of(emulator, 6)
    assert len(three["IP_OPEN"]) == 100
    assert (six["IP_OPEN"], six["IP_CLOSE"]) == ("10.0.\x00.1", "\x00\x00")
    assert (four["DURATION"], four["TZ_OFFSET"], four["TIME_START"]) == (
        "99999999:00:00",
        99999999999999,
        "9999-12-31T23:00:00-05:00",
    )
    assert len(four["STATUS"]) == 40
    emulator.set_hostile(5, "nested")
    nested = call(
        emulator, "batch", {"cmd": {"a": "timeman.status?USER_ID=1", "b": "timeman.status?USER_ID=5"}}
    )
    assert nested.status_code == 200 and len(nested.content) > 400_000
    assert nested.content.startswith(b'{"result":[[[[') and nested.content.endswith(b"]]]]}")
    with pytest.raises(ValueError, match="unknown hostile kind 'loud'"):
        emulator.set_hostile(6, "loud")


# -- serving -----------------------------------------------------------------------------


def test_bind_fails_on_a_busy_port_before_anything_is_served() -> None:
    first = Emulator(EmulatorSettings(users=1)).bind("127.0.0.1", 0)
    port = int(first.base_url.rsplit(":", 1)[1])
    try:
        with pytest.raises(OSError):
            Emulator(EmulatorSettings(users=1)).bind("127.0.0.1", port)
        serving = threading.Thread(target=first.serve_forever, daemon=True)
        serving.start()
        stats = f"{first.base_url}/_emulator/stats"
        wait_until(lambda: requests.get(stats, timeout=1).ok, what="the bound emulator answers")
    finally:
        first.stop()
    assert not serving.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(stats, timeout=1)


def test_the_gate_holds_chosen_methods_after_some_pass_until_released(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=5, rate=0)
    emulator.hold("user.get", "api/timeman.record.list", after=1)
    assert call(emulator, "user.get").status_code == 200  # the one let through
    answers: list[int] = []
    held = threading.Thread(target=lambda: answers.append(call(emulator, "user.get").status_code))
    held.start()
    assert emulator.wait_held(1, timeout=10)
    assert call(emulator, "timeman.status", {"USER_ID": 2}).status_code == 200  # not held
    assert call(emulator, "department.get").status_code == 200
    assert (emulator.gate.held, answers, emulator.stats.calls["user.get"]) == (1, [], 1)
    emulator.release()
    held.join(timeout=10)
    assert answers == [200] and emulator.gate.held == 0
    assert call(emulator, "user.get").status_code == 200  # released: nothing is held any more


def test_a_held_request_is_let_go_when_the_emulator_stops(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(users=5, rate=0)
    emulator.hold("batch")
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            call(emulator, "batch", {"cmd": {"a": "timeman.status?USER_ID=1"}})
        except requests.RequestException as exc:  # the server closed under it
            errors.append(exc)

    held = threading.Thread(target=ask)
    held.start()
    assert emulator.wait_held(1, timeout=10)
    emulator.stop()
    held.join(timeout=10)
    assert not held.is_alive() and emulator.gate.held == 0


def test_named_portal_errors_come_in_the_portal_s_shapes_and_for_as_long_as_asked(
    emulator: Emulator,
) -> None:
    emulator.fail_requests("OVERLOAD_LIMIT", times=1)
    blocked = call(emulator, "timeman.status", {"USER_ID": 5})
    assert (blocked.status_code, blocked.json()) == (
        503,
        {"error": "OVERLOAD_LIMIT", "error_description": "REST API is blocked due to overload"},
    )
    assert call(emulator, "timeman.status", {"USER_ID": 5}).status_code == 200
    emulator.fail_requests("GATEWAY_TIMEOUT", times=1)
    page = call(emulator, "timeman.status", {"USER_ID": 5})
    assert page.status_code == 504 and page.headers["Content-Type"] == "text/html"
    assert "504 Gateway Time-out" in page.text
    emulator.fail_calls("ACCESS_DENIED", "timeman.status")
    cmd = {"u1": "timeman.status?USER_ID=1", "u5": "timeman.status?USER_ID=5"}
    answer = call(emulator, "batch", {"halt": 0, "cmd": cmd})
    assert answer.status_code == 200
    assert list(answer.json()["result"]["result"]) == ["u1"]  # the caller's own day still answers
    assert answer.json()["result"]["result_error"] == {
        "u5": {"error": "ACCESS_DENIED", "error_description": "Access denied"}
    }
    emulator.stop_failing()
    assert call(emulator, "timeman.status", {"USER_ID": 5}).status_code == 200
    with pytest.raises(ValueError, match="unknown portal error 'OVERLOAD'"):
        emulator.fail_requests("OVERLOAD")


def test_closed_records_of_most_users_add_up_and_every_sixth_user_s_do_not(clock: ManualClock) -> None:
    world = World(30, SimClock(clock.now(), 1.0, clock))
    october = [r for u in range(1, 31) for r in world.records(u, date(2026, 10, 1), date(2026, 10, 31))]
    closed = [r for r in october if r.end_time is not None]
    short = {
        r.user_id
        for r in closed
        if (r.end_time - r.start_time).total_seconds() - r.break_length != r.duration
    }
    assert short == {6, 12, 18, 24, 30}
    assert all(r.duration > 0 for r in closed)


def test_a_day_with_several_pauses_answers_paused_with_the_finished_breaks_in_time_leaks(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    day = next_pause(emulator, 7, clock.now())
    assert len(day.pauses) == 3
    (first_start, first_end), (lunch_start, _), _ = day.pauses
    clock.set(first_start + timedelta(seconds=1))
    assert (status_of(emulator, 7)["STATUS"], status_of(emulator, 7)["TIME_LEAKS"]) == ("PAUSED", "00:00:00")
    clock.set(lunch_start + timedelta(seconds=1))
    paused = status_of(emulator, 7)
    first = int((first_end - first_start).total_seconds())
    assert paused["STATUS"] == "PAUSED" and paused["TIME_LEAKS"] == f"00:{first // 60:02d}:{first % 60:02d}"
    clock.set(day.closed)  # type: ignore[arg-type]
    closed = status_of(emulator, 7)
    assert closed["STATUS"] == "CLOSED" and closed["TIME_LEAKS"] == render_hms(day.leaks_seconds)


def test_a_day_left_open_turns_expired_at_the_user_s_local_midnight(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=12, clock=clock)
    day = emulator.world.last_workday(EXPIRING_USER, clock.now() + timedelta(days=1))
    assert day is not None and day.closed is None
    clock.set(day.opened + timedelta(minutes=1))
    assert status_of(emulator, EXPIRING_USER)["STATUS"] == "OPENED"
    offset = timedelta(seconds=emulator.world.tz_offset(EXPIRING_USER))
    midnight = datetime.combine(day.work_date + timedelta(days=1), datetime.min.time(), UTC) - offset
    clock.set(midnight - timedelta(seconds=1))
    assert status_of(emulator, EXPIRING_USER)["STATUS"] == "OPENED"
    clock.set(midnight)
    expired = status_of(emulator, EXPIRING_USER)
    assert expired["STATUS"] == "EXPIRED" and expired["TIME_LEAKS"] == render_hms(day.leaks_seconds)
    clock.set(midnight + timedelta(days=3))  # no new day opens before that one is closed
    assert emulator.world.last_workday(EXPIRING_USER, clock.now()) == day
