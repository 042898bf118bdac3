"""The Bitrix24 client and its methods against the emulator over loopback HTTP.

The client and the emulator share one ManualClock where time matters: a backoff or a
bucket wait moves both, so nothing sleeps for real.
"""

from __future__ import annotations

import pytest
import requests
from conftest import MakeEmulator, make_config, portal

from poller.bitrix import (
    PortalClient,
    StatusBatch,
    fetch_active_user_ids,
    fetch_departments,
    fetch_statuses,
    fetch_users,
    get_timekeeping_status,
)
from poller.clock import ManualClock
from poller.config import HttpConfig, PortalConfig
from poller.emulator import Emulator
from poller.errors import BitrixError, OperatingTimeLimit, TransportError

NO_RETRY = HttpConfig(connect_timeout_seconds=2, read_timeout_seconds=5, max_retries=0)


@pytest.fixture
def emu(make_emulator: MakeEmulator, clock: ManualClock) -> Emulator:
    return make_emulator(clock=clock)


def webhook_portal(emulator: Emulator, **overrides: object) -> PortalConfig:
    return make_config(portal(emulator, [1], **overrides)).portals[0]


def token_portal(emulator: Emulator, **overrides: object) -> PortalConfig:
    return make_config(portal(emulator, [1], oauth=True, name="emu", **overrides)).portals[0]


def client_for(
    portal: PortalConfig, clock: ManualClock, http: HttpConfig = NO_RETRY, **kwargs: object
) -> PortalClient:
    return PortalClient(portal, requests.Session(), http, clock=clock, **kwargs)  # type: ignore[arg-type]


# -- the seed function --------------------------------------------------------------------


def test_the_seed_function_reads_a_user_through_a_webhook(emulator: Emulator) -> None:
    answer = get_timekeeping_status(emulator.webhook_url, 5)
    assert answer["result"]["STATUS"] in {"OPENED", "CLOSED", "PAUSED", "EXPIRED"}
    assert answer["result"]["TZ_OFFSET"] == emulator.world.tz_offset(5)
    assert set(answer["result"]) >= {"STATUS", "TIME_START", "DURATION", "TIME_LEAKS", "TZ_OFFSET"}
    assert {"start", "finish", "operating", "operating_reset_at"} <= set(answer["time"])
    assert emulator.stats.statuses_answered[5] == 1


def test_the_seed_function_reads_the_caller_with_a_token_and_a_bare_address(emulator: Emulator) -> None:
    answer = get_timekeeping_status(emulator.base_url, None, emulator.settings.access_token)
    assert "STATUS" in answer["result"]
    assert emulator.stats.statuses_answered[emulator.settings.webhook_user] == 1


def test_a_wrong_webhook_secret_is_a_portal_wide_error_without_the_secret(emulator: Emulator) -> None:
    url = emulator.webhook_url.replace(emulator.settings.webhook_secret, "wrongsecret123")
    with pytest.raises(BitrixError) as caught:
        get_timekeeping_status(url, 5)
    assert (caught.value.code, caught.value.http_status) == ("NO_AUTH_FOUND", 401)
    assert (caught.value.retryable, caught.value.portal_wide) == (False, True)
    assert "wrongsecret123" not in str(caught.value)


def test_an_unknown_user_is_a_per_user_error(emulator: Emulator) -> None:
    with pytest.raises(BitrixError) as caught:
        get_timekeeping_status(emulator.webhook_url, 999)
    assert caught.value.per_user is True
    assert caught.value.http_status == 400
    assert "User not found" in str(caught.value)


# -- fetch_statuses -----------------------------------------------------------------------


def test_users_are_fetched_fifty_per_batch_request(make_emulator: MakeEmulator, clock: ManualClock) -> None:
    emulator = make_emulator(clock=clock, users=120)
    client = client_for(webhook_portal(emulator), clock)
    batch = fetch_statuses(client, list(range(1, 123)))
    assert emulator.stats.requests == 3
    assert sorted(batch.results) == list(range(1, 121))
    assert sorted(batch.errors) == [121, 122]
    assert all(e.per_user and "User not found" in e.message for e in batch.errors.values())
    assert batch.portal_error is None
    assert batch.answered_at == dict.fromkeys(range(1, 121), clock.now())
    assert batch.results[2] == {"STATUS": "CLOSED"}


def test_a_batch_where_every_user_fails_handles_the_empty_result_list(
    emu: Emulator, clock: ManualClock
) -> None:
    batch = fetch_statuses(client_for(webhook_portal(emu), clock), [900, 901])
    assert batch.results == {}
    assert sorted(batch.errors) == [900, 901]
    assert batch.portal_error is None


def test_a_token_portal_batches_with_auth_in_the_body(emu: Emulator, clock: ManualClock) -> None:
    batch = fetch_statuses(client_for(token_portal(emu), clock), [1, 2, 3])
    assert sorted(batch.results) == [1, 2, 3]
    assert batch.results[3]["STATUS"] == "EXPIRED"
    assert emu.stats.auth_placements == {"body": 1}  # not the query string, not a header


def test_a_token_portal_sends_rest_3_auth_in_the_body_and_a_batch_s_as_a_bearer_header(
    emu: Emulator, clock: ManualClock
) -> None:
    client = client_for(token_portal(emu), clock)
    query = {"filter": [["userId", 5]], "select": ["id"]}
    assert client.call_v3("timeman.record.list", query)["result"]["items"]
    assert emu.stats.auth_placements == {"body": 1}
    results = client.call_v3("batch", [{"method": "timeman.record.list", "query": query}])["result"]
    assert results[0]["items"]
    assert emu.stats.auth_placements == {"body": 1, "header": 1}  # the array has no room for auth


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://acme.example.com/rest/1/s3cretw3bhook/", True),
        ("https://acme.example.com/rest/1/s3cretw3bhook/", False),
        ("http://127.0.0.1:8080/rest/1/s3cretw3bhook/", False),
        ("http://localhost:8080/rest/1/s3cretw3bhook/", False),
    ],
)
def test_plain_http_to_a_portal_off_this_machine_is_warned_about_without_the_secret(
    url: str, warned: bool, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="poller.bitrix.client"):
        client_for(make_config(portal(url, [1])).portals[0], clock)
    lines = [r.getMessage() for r in caplog.records if r.name == "poller.bitrix.client"]
    if warned:
        assert lines == ["portal emu: plain http:// to acme.example.com; use https:// outside local tests"]
    else:
        assert lines == []
    assert "s3cretw3bhook" not in caplog.text


def test_no_right_to_read_other_users_stops_after_the_first_batch(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=500, admin=False)
    client = client_for(webhook_portal(emulator), clock)
    batch = fetch_statuses(client, list(range(1, 501)))
    assert emulator.stats.requests == 1  # not ten batches that all fail the same way
    assert list(batch.results) == [emulator.settings.webhook_user]  # the caller can read itself
    assert batch.portal_error is not None
    assert (batch.portal_error.code, batch.portal_error.portal_wide) == ("NO_ACCESS_TO_USER", True)
    assert sorted(batch.errors) == list(range(2, 501))
    assert {e.code for e in batch.errors.values()} == {"NO_ACCESS_TO_USER"}


def test_a_refused_webhook_marks_every_user_failed_after_one_request(
    emu: Emulator, clock: ManualClock
) -> None:
    wrong = emu.webhook_url.replace(emu.settings.webhook_secret, "wrongsecret123")
    batch = fetch_statuses(client_for(webhook_portal(emu, webhook_url=wrong), clock), list(range(1, 201)))
    assert emu.stats.requests == 1
    assert batch.portal_error is not None and batch.portal_error.code == "NO_AUTH_FOUND"
    assert set(batch.errors) == set(range(1, 201))
    assert all(error is batch.portal_error for error in batch.errors.values())


def test_parts_go_to_on_chunk_in_order_and_are_not_kept(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=1200, rate=0)
    parts: list[StatusBatch] = []
    returned = fetch_statuses(
        client_for(webhook_portal(emulator), clock), list(range(1, 1211)), parts.append, batches_per_chunk=10
    )
    assert [len(part) for part in parts] == [500, 500, 210]
    assert [min(part.results) for part in parts] == [1, 501, 1001]
    assert sorted(parts[2].errors) == list(range(1201, 1211))
    assert sum(len(part.results) for part in parts) == 1200
    assert (returned.results, returned.errors, returned.portal_error) == ({}, {}, None)


def test_the_last_part_carries_the_portal_error_of_an_early_stop(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=120, admin=False)
    parts: list[StatusBatch] = []
    returned = fetch_statuses(client_for(webhook_portal(emulator), clock), list(range(1, 121)), parts.append)
    assert len(parts) == 1
    assert len(parts[0]) == 120
    assert parts[0].portal_error is returned.portal_error is not None


def test_an_html_error_page_is_a_clear_retryable_error(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=5, fault_html=1.0)
    with pytest.raises(TransportError) as caught:
        client_for(webhook_portal(emulator), clock).call("timeman.status", {"USER_ID": 1})
    assert caught.value.code == "BAD_RESPONSE"
    assert caught.value.http_status == 502
    assert caught.value.retryable is True
    assert "HTML page" in caught.value.message


def test_transient_faults_are_retried_until_an_answer_comes(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=5, fault_500=0.5, fault_drop=0.3, seed=3)
    client = client_for(webhook_portal(emulator), clock, HttpConfig(max_retries=30))
    batch = fetch_statuses(client, [1, 2, 3, 4, 5])
    assert sorted(batch.results) == [1, 2, 3, 4, 5]
    assert emulator.stats.faults["500"] + emulator.stats.faults["drop"] >= 1


def test_a_redirect_is_not_followed_and_names_only_the_new_host(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=5, moved_to="https://new-home.bitrix24.com")
    with pytest.raises(BitrixError) as caught:
        client_for(webhook_portal(emulator), clock).call("timeman.status", {})
    assert caught.value.code == "REDIRECT"
    assert caught.value.http_status == 302
    assert "new-home.bitrix24.com" in caught.value.message
    assert emulator.settings.webhook_secret not in caught.value.message


def test_a_query_limit_storm_is_waited_out_on_its_own_budget(emu: Emulator, clock: ManualClock) -> None:
    emu.force_query_limit(3)
    client = client_for(webhook_portal(emu), clock, HttpConfig(max_retries=0))
    batch = fetch_statuses(client, [1, 2])
    assert sorted(batch.results) == [1, 2]
    assert client.rate_limited == 3


# -- the operating limit, per method -----------------------------------------------------


def test_an_operating_limit_blocks_the_method_until_its_own_reset(emu: Emulator, clock: ManualClock) -> None:
    client = client_for(webhook_portal(emu), clock)
    seen = client.call("timeman.status", {"USER_ID": 1})["time"]["operating_reset_at"]
    assert seen - clock.time() > 60  # the oldest minute of the window drops out in 9-10 minutes
    emu.force_operating_limit(60)
    with pytest.raises(OperatingTimeLimit) as caught:
        client.call("timeman.status", {"USER_ID": 1})
    assert caught.value.reset_at == seen
    sent = emu.stats.requests
    batch = fetch_statuses(client, [1, 2])
    assert emu.stats.requests == sent  # not even tried
    assert isinstance(batch.portal_error, OperatingTimeLimit)
    assert set(batch.errors) == {1, 2}
    assert fetch_active_user_ids(client)  # another method: its own budget
    clock.advance(seen - clock.time())
    assert client.call("timeman.status", {"USER_ID": 2})["result"]  # the reset passed: asked again


def test_a_sub_call_operating_limit_blocks_the_method_until_its_reset(
    emu: Emulator, clock: ManualClock
) -> None:
    client = client_for(webhook_portal(emu), clock)
    first = fetch_statuses(client, list(range(1, 11)))
    assert len(first.results) == 10
    emu.force_operating_limit(1200)
    blocked = fetch_statuses(client, list(range(1, 201)))
    assert emu.stats.requests == 2  # the batch answered 200 with every sub-call refused; no more batches
    assert isinstance(blocked.portal_error, OperatingTimeLimit)
    reset_at = blocked.portal_error.reset_at
    assert reset_at is not None and clock.time() < reset_at <= clock.time() + 600
    assert client.limits.blocked_until("timeman.status") == reset_at
    assert client.limits.blocked_until("batch") is None
    assert set(blocked.errors) == set(range(1, 201))


# -- OAuth --------------------------------------------------------------------------------


def test_an_expired_token_is_refreshed_once_and_the_new_pair_handed_over_first(
    emu: Emulator, clock: ManualClock
) -> None:
    handed: list[tuple[str, str, str | None]] = []
    client: PortalClient | None = None

    def save(access: str, refresh: str) -> None:
        assert client is not None
        handed.append((access, refresh, client.access_token))

    client = client_for(token_portal(emu), clock, on_tokens_refreshed=save)
    emu.expire_tokens()
    batch = fetch_statuses(client, [1, 2])
    assert sorted(batch.results) == [1, 2]
    assert emu.stats.token_refreshes == 1
    assert handed == [(client.access_token, client.refresh_token, emu.settings.access_token)]
    assert client.refresh_token != emu.settings.refresh_token


def test_a_dead_refresh_token_says_a_person_must_reauthorize(emu: Emulator, clock: ManualClock) -> None:
    client = client_for(token_portal(emu, refresh_token="revoked-refresh-token"), clock)
    emu.expire_tokens()
    with pytest.raises(BitrixError) as caught:
        client.call("timeman.status", {})
    assert caught.value.code == "invalid_grant"
    assert caught.value.portal_wide is True
    assert "re-authorize" in caught.value.message
    assert "revoked-refresh-token" not in caught.value.message


def test_an_expired_token_after_a_failed_refresh_stops_the_portal(emu: Emulator, clock: ManualClock) -> None:
    client = client_for(token_portal(emu, refresh_token="revoked-refresh-token"), clock)
    emu.expire_tokens()
    batch = fetch_statuses(client, list(range(1, 101)))
    assert batch.portal_error is not None and batch.portal_error.code == "invalid_grant"
    assert set(batch.errors) == set(range(1, 101))
    assert emu.stats.requests == 2  # one batch, one refresh


# -- lists and REST 3.0 -------------------------------------------------------------------


def test_active_users_are_listed_page_by_page(make_emulator: MakeEmulator, clock: ManualClock) -> None:
    emulator = make_emulator(clock=clock, users=120)
    client = client_for(webhook_portal(emulator), clock)
    every = fetch_users(client)
    active = fetch_active_user_ids(client)
    assert emulator.stats.requests == 6
    assert list(every) == [emulator.world.user(user_id) for user_id in range(1, 121)]  # as sent, in order
    assert [int(u["ID"]) for u in every] == list(range(1, 121))
    assert active == [int(u["ID"]) for u in every if u["ACTIVE"]]
    assert len(active) < 120


def test_users_keep_every_field_the_portal_sent(emu: Emulator, clock: ManualClock) -> None:
    (first, *_) = fetch_users(client_for(webhook_portal(emu), clock))
    assert first == emu.world.user(1)
    expected = {"ID", "NAME", "LAST_NAME", "EMAIL", "WORK_POSITION", "UF_DEPARTMENT", "ACTIVE"}
    assert expected | {"TIME_ZONE", "USER_TYPE"} <= set(first)


def test_departments_are_listed(emu: Emulator, clock: ManualClock) -> None:
    departments = fetch_departments(client_for(webhook_portal(emu), clock))
    assert list(departments) == emu.world.departments()


def test_a_missing_department_scope_is_a_portal_wide_error(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=5, department_scope=False)
    with pytest.raises(BitrixError) as caught:
        fetch_departments(client_for(webhook_portal(emulator), clock))
    assert (caught.value.code, caught.value.http_status, caught.value.portal_wide) == (
        "insufficient_scope",
        403,
        True,
    )


@pytest.mark.parametrize("portal_kind", ["webhook", "token"])
def test_a_rest_3_call_goes_under_rest_api_with_a_json_body(
    emu: Emulator, clock: ManualClock, portal_kind: str
) -> None:
    portal = webhook_portal(emu) if portal_kind == "webhook" else token_portal(emu)
    query = {"filter": [["userId", 5]], "select": ["id", "userId"], "pagination": {"limit": 50}}
    body = client_for(portal, clock).call_v3("timeman.record.list", query)
    items = body["result"]["items"]
    assert items and {item["userId"] for item in items} == {5}


def test_a_rest_3_error_object_is_raised_with_its_code(
    make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(clock=clock, users=5, records_access=False)
    with pytest.raises(BitrixError) as caught:
        client_for(webhook_portal(emulator), clock).call_v3(
            "timeman.record.list", {"filter": [["userId", 5]]}
        )
    assert caught.value.code == "BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION"
    assert caught.value.http_status == 403


def test_a_long_cycle_reports_its_progress(
    make_emulator: MakeEmulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(clock=clock, users=1200, rate=0)
    client = client_for(webhook_portal(emulator, requests_per_second=1000), clock)
    with caplog.at_level("INFO", logger="poller.bitrix.methods"):
        batch = fetch_statuses(client, list(range(1, 1201)))
    assert len(batch.results) == 1200
    progress = [r.getMessage() for r in caplog.records if "users fetched" in r.getMessage()]
    assert progress == [
        "portal emu: 500 of 1200 users fetched",
        "portal emu: 1000 of 1200 users fetched",
        "portal emu: 1200 of 1200 users fetched",
    ]


def test_a_stop_during_a_retry_backoff_ends_the_wait_and_sends_no_retry(make_emulator: MakeEmulator) -> None:
    import threading
    import time

    emulator = make_emulator(fault_500=1.0)  # every request fails: the client backs off and retries
    stop = threading.Event()
    http = HttpConfig(connect_timeout_seconds=2, read_timeout_seconds=5, max_retries=8)
    client = PortalClient(webhook_portal(emulator), requests.Session(), http, stop=stop)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.call("timeman.status", {"USER_ID": 1})
        except BitrixError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 10
    while emulator.stats.requests < 3 and time.monotonic() < deadline:  # in its third backoff (2-6 s)
        time.sleep(0.01)
    sent = emulator.stats.requests
    stop.set()
    stopped_at = time.monotonic()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert time.monotonic() - stopped_at < 1.0  # not the rest of a backoff of up to 45 s
    assert emulator.stats.requests == sent  # the retry was not sent
    assert [exc.code for exc in outcome] == ["INTERNAL_SERVER_ERROR"]
