"""Refreshing OAuth tokens: the new pair handed over first, a moved portal followed, refusals named."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest
import requests
from conftest import portal
from test_transport import Behaviour, RawServer, answer, raw_server  # noqa: F401 (fixture)

from poller.bitrix import PortalClient
from poller.bitrix.oauth import TokenPair, follow_client_endpoint, rest_base_url
from poller.clock import ManualClock
from poller.config import HttpConfig, PortalConfig, parse_config
from poller.emulator import Emulator, EmulatorSettings
from poller.errors import BitrixError


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    running = Emulator(EmulatorSettings(users=5), clock=clock).start()
    yield running
    running.stop()


def token_portal(emulator: Emulator, **overrides: object) -> PortalConfig:
    entry = portal(emulator, [1], oauth=True, name="emu", **overrides)
    return parse_config({"portals": [entry]}, {}).portals[0]


def client_for(portal: PortalConfig, clock: ManualClock, **kwargs: object) -> PortalClient:
    http = HttpConfig(connect_timeout_seconds=2, read_timeout_seconds=5, max_retries=4)
    return PortalClient(portal, requests.Session(), http, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_a_portal_that_moved_is_followed_to_its_client_endpoint(
    emu: Emulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    old_address = emu.base_url.replace("127.0.0.1", "localhost")
    client = client_for(token_portal(emu, domain=old_address), clock)
    emu.expire_tokens()
    with caplog.at_level(logging.INFO, logger="poller.bitrix.oauth"):
        client.call("timeman.status", {})
        emu.expire_tokens()
        client.call("timeman.status", {})
    assert client.portal.base_url == emu.base_url
    assert emu.stats.token_refreshes == 2
    moves = [r.getMessage() for r in caplog.records if "REST address" in r.getMessage()]
    assert moves == [
        "portal emu: the OAuth server says the portal's REST address is now 127.0.0.1 "
        "(was localhost); using it"
    ]


def test_the_same_client_endpoint_changes_nothing(emu: Emulator, clock: ManualClock) -> None:
    portal = token_portal(emu)
    client = client_for(portal, clock)
    emu.expire_tokens()
    client.call("timeman.status", {})
    assert client.portal == portal


def test_a_failed_handover_is_logged_without_tokens_and_the_new_pair_is_used(
    emu: Emulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_store(access: str, refresh: str) -> None:
        raise RuntimeError(f"database is locked [parameters: ('emu', '{access}', '{refresh}')]")

    client = client_for(token_portal(emu), clock, on_tokens_refreshed=broken_store)
    emu.expire_tokens()
    assert client.call("timeman.status", {})["result"]
    assert client.access_token != emu.settings.access_token
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "RuntimeError: database is locked" in failures[0]
    assert str(client.access_token) not in caplog.text
    assert str(client.refresh_token) not in caplog.text


def test_payment_required_is_named_and_not_retried(
    emu: Emulator,
    clock: ManualClock,
    raw_server: Callable[[Behaviour], RawServer],  # noqa: F811
) -> None:
    refusal = json.dumps({"error": "PAYMENT_REQUIRED", "error_description": "Payment required"}).encode()
    oauth = raw_server(answer(refusal, "402 Payment Required"))
    client = client_for(token_portal(emu, oauth_url=f"{oauth.url}/oauth/token/"), clock)
    emu.expire_tokens()
    with pytest.raises(BitrixError) as caught:
        client.call("timeman.status", {})
    error = caught.value
    assert (error.code, error.http_status, error.retryable, error.portal_wide) == (
        "PAYMENT_REQUIRED",
        402,
        False,
        True,
    )
    assert "subscription has lapsed" in error.message
    assert oauth.connections == 1


def test_an_oauth_answer_without_a_token_is_a_bad_response(
    emu: Emulator,
    clock: ManualClock,
    raw_server: Callable[[Behaviour], RawServer],  # noqa: F811
) -> None:
    oauth = raw_server(answer(b'{"expires_in": 3600}'))
    client = client_for(token_portal(emu, oauth_url=f"{oauth.url}/oauth/token/"), clock)
    emu.expire_tokens()
    with pytest.raises(BitrixError) as caught:
        client.refresh_tokens()
    assert caught.value.code == "BAD_RESPONSE"
    assert "answered without an access token" in caught.value.message


def test_without_refresh_credentials_an_expired_token_stops_the_portal(
    emu: Emulator, clock: ManualClock
) -> None:
    portal = PortalConfig(
        name="bare", base_url=emu.base_url, users=(1,), access_token=emu.settings.access_token
    )
    client = client_for(portal, clock)
    emu.expire_tokens()
    with pytest.raises(BitrixError) as caught:
        client.call("timeman.status", {})
    assert (caught.value.code, caught.value.portal_wide) == ("expired_token", True)
    assert "no refresh_token, client_id and client_secret" in caught.value.message


def test_a_token_pair_never_shows_its_tokens() -> None:
    pair = TokenPair("access-secret", "refresh-secret", "https://acme.bitrix24.com/rest/")
    assert "secret" not in repr(pair) and "secret" not in str(pair)


@pytest.mark.parametrize(
    ("endpoint", "base"),
    [
        ("https://Acme.Bitrix24.com/rest/", "https://acme.bitrix24.com"),
        ("http://127.0.0.1:8080/rest/", "http://127.0.0.1:8080"),
        ("ftp://acme.bitrix24.com/rest/", None),
        ("not a url", None),
    ],
)
def test_a_client_endpoint_gives_the_portal_address(endpoint: str, base: str | None) -> None:
    assert rest_base_url(endpoint) == base


def test_a_move_from_https_to_plain_http_is_refused() -> None:
    portal = PortalConfig(name="acme", base_url="https://acme.bitrix24.com", users=(1,))
    pair = TokenPair("a", "r", "http://acme.bitrix24.com/rest/")
    assert follow_client_endpoint(portal, pair) is portal
    assert follow_client_endpoint(portal, TokenPair("a", "r", None)) is portal
    moved = follow_client_endpoint(portal, TokenPair("a", "r", "https://acme.bitrix24.eu/rest/"))
    assert moved == PortalConfig(name="acme", base_url="https://acme.bitrix24.eu", users=(1,))
