"""The client against the emulator over loopback HTTP."""

from __future__ import annotations

import socket

import pytest
import requests
from conftest import oauth_portal

from poller.client import PortalClient, get_timekeeping_status
from poller.config import HttpConfig, PortalConfig, parse_config, parse_webhook_url
from poller.emulator import Emulator, EmulatorSettings
from poller.errors import BitrixError, OperatingTimeLimit, TransportError

NO_RETRY = HttpConfig(connect_timeout_seconds=2, read_timeout_seconds=5, max_retries=0)


def webhook_portal(emulator: Emulator, **overrides: object) -> PortalConfig:
    base_url, path = parse_webhook_url(emulator.webhook_url, "test")
    fields: dict[str, object] = {"name": "emu", "base_url": base_url, "webhook_path": path, "users": (1,)}
    fields.update(overrides)
    return PortalConfig(**fields)  # type: ignore[arg-type]


def token_portal(emulator: Emulator, **overrides: object) -> PortalConfig:
    entry = oauth_portal(emulator, [1], name="emu", **overrides)
    return parse_config({"portals": [entry]}, {}).portals[0]


def client_for(portal: PortalConfig, http: HttpConfig = NO_RETRY, **kwargs: object) -> PortalClient:
    return PortalClient(portal, requests.Session(), http, sleep=lambda _s: None, **kwargs)  # type: ignore[arg-type]


def test_the_seed_function_reads_a_user_through_a_webhook(emulator: Emulator) -> None:
    answer = get_timekeeping_status(emulator.webhook_url, 5)
    assert answer["result"]["STATUS"] in {"OPENED", "CLOSED", "PAUSED", "EXPIRED"}
    assert answer["result"]["TZ_OFFSET"] == emulator.world.tz_offset(5)
    assert set(answer["result"]) >= {"STATUS", "TIME_START", "DURATION", "TIME_LEAKS", "TZ_OFFSET"}
    assert {"start", "finish", "operating", "operating_reset_at"} <= set(answer["time"])
    assert emulator.stats.statuses_answered[5] == 1


def test_the_seed_function_reads_the_caller_with_a_token_and_a_bare_address(emulator: Emulator) -> None:
    address = emulator.base_url  # http:// kept for the local emulator
    answer = get_timekeeping_status(address, None, emulator.settings.access_token)
    assert "STATUS" in answer["result"]
    assert emulator.stats.statuses_answered[emulator.settings.webhook_user] == 1


def test_a_wrong_webhook_secret_is_no_auth_found_without_the_secret(emulator: Emulator) -> None:
    url = emulator.webhook_url.replace(emulator.settings.webhook_secret, "wrongsecret123")
    with pytest.raises(BitrixError) as caught:
        get_timekeeping_status(url, 5)
    assert caught.value.code == "NO_AUTH_FOUND"
    assert caught.value.http_status == 401
    assert caught.value.retryable is False
    assert "wrongsecret123" not in str(caught.value)


def test_an_unknown_user_is_a_per_user_error(emulator: Emulator) -> None:
    with pytest.raises(BitrixError) as caught:
        get_timekeeping_status(emulator.webhook_url, 999)
    assert caught.value.per_user is True
    assert caught.value.http_status == 400
    assert "User not found" in str(caught.value)


def test_users_are_fetched_fifty_per_batch_request(emulator: Emulator) -> None:
    emulator.world.count = 120
    client = client_for(webhook_portal(emulator))
    before = emulator.stats.requests
    batch = client.fetch_statuses(list(range(1, 123)))
    assert emulator.stats.requests - before == 3
    assert sorted(batch.results) == list(range(1, 121))
    assert sorted(batch.errors) == [121, 122]
    assert all(e.per_user and "User not found" in e.message for e in batch.errors.values())
    assert set(batch.answered_at) == set(batch.results)
    assert batch.results[2] == {"STATUS": "CLOSED"}


def test_a_batch_where_every_user_fails_handles_the_empty_result_list(emulator: Emulator) -> None:
    batch = client_for(webhook_portal(emulator)).fetch_statuses([900, 901])
    assert batch.results == {}
    assert sorted(batch.errors) == [900, 901]


def test_a_token_portal_batches_with_auth_in_the_body(emulator: Emulator) -> None:
    batch = client_for(token_portal(emulator)).fetch_statuses([1, 2, 3])
    assert sorted(batch.results) == [1, 2, 3]
    assert batch.results[3]["STATUS"] == "EXPIRED"


def test_an_html_error_page_is_a_clear_retryable_error() -> None:
    emulator = Emulator(EmulatorSettings(users=5, fault_html=1.0)).start()
    try:
        with pytest.raises(TransportError) as caught:
            client_for(webhook_portal(emulator)).call("timeman.status", {"USER_ID": 1})
    finally:
        emulator.stop()
    assert caught.value.code == "BAD_RESPONSE"
    assert caught.value.http_status == 502
    assert caught.value.retryable is True
    assert "HTML page" in caught.value.message


def test_transient_faults_are_retried_until_an_answer_comes() -> None:
    emulator = Emulator(EmulatorSettings(users=5, fault_500=0.5, fault_drop=0.3, seed=3)).start()
    try:
        client = client_for(webhook_portal(emulator), HttpConfig(max_retries=30))
        batch = client.fetch_statuses([1, 2, 3, 4, 5])
    finally:
        emulator.stop()
    assert sorted(batch.results) == [1, 2, 3, 4, 5]
    assert emulator.stats.faults["500"] + emulator.stats.faults["drop"] >= 1


def test_a_redirect_is_not_followed_and_names_only_the_new_host() -> None:
    emulator = Emulator(EmulatorSettings(users=5, moved_to="https://new-home.bitrix24.com")).start()
    try:
        with pytest.raises(BitrixError) as caught:
            client_for(webhook_portal(emulator)).call("timeman.status", {})
    finally:
        emulator.stop()
    assert caught.value.code == "REDIRECT"
    assert caught.value.http_status == 302
    assert "new-home.bitrix24.com" in caught.value.message
    assert emulator.settings.webhook_secret not in caught.value.message


def test_a_refused_connection_names_the_host_not_the_webhook_path() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    portal = PortalConfig(
        name="dead", base_url=f"http://127.0.0.1:{port}", webhook_path="/rest/1/topsecret42/", users=(1,)
    )
    with pytest.raises(TransportError) as caught:
        client_for(portal).call("timeman.status", {})
    assert caught.value.code == "CONNECTION_ERROR"
    assert caught.value.retryable is True
    assert "127.0.0.1" in caught.value.message
    assert "topsecret42" not in caught.value.message


def test_a_query_limit_storm_is_waited_out(emulator: Emulator) -> None:
    emulator.force_query_limit(3)
    client = client_for(webhook_portal(emulator), HttpConfig(max_retries=5))
    batch = client.fetch_statuses([1, 2])
    assert sorted(batch.results) == [1, 2]
    assert client.rate_limited == 3


def test_an_operating_limit_blocks_the_method_until_reset(emulator: Emulator) -> None:
    client = client_for(webhook_portal(emulator))
    client.fetch_statuses([1, 2])
    emulator.force_operating_limit(120)
    with pytest.raises(OperatingTimeLimit) as caught:
        client.call("timeman.status", {"USER_ID": 1})
    assert caught.value.reset_at is not None
    sent = emulator.stats.requests
    batch = client.fetch_statuses([1, 2])
    assert emulator.stats.requests == sent  # not even tried
    assert {type(e) for e in batch.errors.values()} == {OperatingTimeLimit}


def test_an_expired_token_is_refreshed_once_and_the_new_pair_handed_over(emulator: Emulator) -> None:
    saved: list[tuple[str, str]] = []
    client = client_for(token_portal(emulator), on_tokens_refreshed=lambda a, r: saved.append((a, r)))
    emulator.expire_tokens()
    batch = client.fetch_statuses([1, 2])
    assert sorted(batch.results) == [1, 2]
    assert emulator.stats.token_refreshes == 1
    assert saved == [(client.access_token, client.refresh_token)]
    assert client.refresh_token != emulator.settings.refresh_token


def test_a_dead_refresh_token_says_a_person_must_reauthorize(emulator: Emulator) -> None:
    client = client_for(token_portal(emulator, refresh_token="revoked-refresh-token"))
    emulator.expire_tokens()
    with pytest.raises(BitrixError) as caught:
        client.call("timeman.status", {})
    assert caught.value.code == "invalid_grant"
    assert "re-authorize" in caught.value.message
    assert "revoked-refresh-token" not in caught.value.message


def test_active_users_are_listed_page_by_page(emulator: Emulator) -> None:
    emulator.world.count = 120
    client = client_for(webhook_portal(emulator))
    before = emulator.stats.requests
    users = client.fetch_active_user_ids()
    assert emulator.stats.requests - before == 3
    assert users == [u for u in range(1, 121) if u != 97]


def test_a_long_cycle_reports_its_progress(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    emulator.world.count = 1200
    client = client_for(webhook_portal(emulator, requests_per_second=1000))
    with caplog.at_level("INFO", logger="poller.client"):
        batch = client.fetch_statuses(list(range(1, 1201)))
    assert len(batch.results) == 1200
    progress = [r.getMessage() for r in caplog.records if "users fetched" in r.getMessage()]
    assert progress == [
        "portal emu: 500 of 1200 users fetched",
        "portal emu: 1000 of 1200 users fetched",
        "portal emu: 1200 of 1200 users fetched",
    ]
