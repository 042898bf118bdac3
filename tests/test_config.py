from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from conftest import portal

from poller.config import Config, load_config, parse_config
from poller.errors import ConfigError

WEBHOOK = "https://acme.bitrix24.com/rest/1/s3cr3tvalue/"


acme = partial(portal, WEBHOOK, users=[1, 5], name="acme")
"""A valid [[portals]] table; keyword arguments replace keys, None removes one."""


def parse(document: dict[str, object], **environ: str) -> Config:
    return parse_config(document, environ)


def error_of(document: dict[str, object], **environ: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(document, **environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_minimal_webhook_config_gets_the_defaults() -> None:
    config = parse({"portals": [acme()]})
    assert config.database_url == "sqlite:///timeman.sqlite3"
    assert config.schedule.interval_seconds == 60
    assert config.schedule.cron is None
    assert config.schedule.jitter_seconds == 0
    (only,) = config.portals
    assert only.base_url == "https://acme.bitrix24.com"
    assert only.webhook_path == "/rest/1/s3cr3tvalue/"
    assert only.users == (1, 5)
    assert only.requests_per_second == 2.0 and only.burst == 50
    assert only.secrets() == ("s3cr3tvalue",)


def test_a_token_portal_takes_a_bare_host_as_https() -> None:
    config = parse({"portals": [acme(webhook_url=None, domain="b24-x.bitrix24.by", access_token="tok")]})
    assert config.portals[0].base_url == "https://b24-x.bitrix24.by"
    assert config.portals[0].access_token == "tok"
    assert config.portals[0].oauth_url == "https://oauth.bitrix.info/oauth/token/"


def test_a_token_portal_keeps_an_explicit_http_scheme_and_port() -> None:
    config = parse({"portals": [acme(webhook_url=None, domain="http://127.0.0.1:8765", access_token="t")]})
    assert config.portals[0].base_url == "http://127.0.0.1:8765"


def test_environment_variables_are_substituted() -> None:
    config = parse(
        {"portals": [acme(webhook_url="https://acme.bitrix24.com/rest/1/${HOOK}/")]}, HOOK="fromenv"
    )
    assert config.portals[0].webhook_path == "/rest/1/fromenv/"


def test_an_environment_fallback_is_used_when_the_variable_is_unset() -> None:
    config = parse({"database": {"url": "${DB:-sqlite:///x.sqlite3}"}, "portals": [acme()]})
    assert config.database_url == "sqlite:///x.sqlite3"


def test_users_all_is_accepted() -> None:
    assert parse({"portals": [acme(users="all")]}).portals[0].users == "all"


def test_cron_replaces_the_interval() -> None:
    config = parse({"schedule": {"cron": "*/5 * * * *", "jitter_seconds": 10}, "portals": [acme()]})
    assert config.schedule.cron == "*/5 * * * *"
    assert config.schedule.interval_seconds is None
    assert config.schedule.jitter_seconds == 10


@pytest.mark.parametrize(
    ("document", "environ", "expected"),
    [
        ({"portals": [acme()], "databse": {}}, {}, "config key databse: unknown key"),
        ({"portals": [acme(colour="red")]}, {}, "config key portals['acme'].colour: unknown key"),
        ({"portals": [acme(users=[])]}, {}, "portals['acme'].users: empty"),
        ({"portals": [acme(users=[1, "x"])]}, {}, "portals['acme'].users: 'x' is not a user id"),
        ({"portals": [acme(users=None)]}, {}, "portals['acme'].users: missing"),
        ({"portals": [acme(name=None)]}, {}, "portals[0].name: missing"),
        ({"portals": [acme(), acme()]}, {}, "duplicate portal name 'acme'"),
        ({"portals": [acme(domain="acme.bitrix24.com", access_token="t")]}, {}, "not both"),
        ({"portals": [acme(webhook_url=None)]}, {}, "missing auth"),
        ({"portals": [acme(webhook_url=None, domain="acme.bitrix24.com")]}, {}, "access_token: missing"),
        ({"portals": [acme(webhook_url="https://acme.bitrix24.com/")]}, {}, "not an incoming-webhook URL"),
        ({"portals": [acme(webhook_url="ftp://x/rest/1/s/")]}, {}, "webhook_url: not an incoming-webhook"),
        (
            {"portals": [acme(webhook_url=None, domain="a b/c", access_token="t")]},
            {},
            "not a portal address",
        ),
        ({"portals": [acme(webhook_url="https://a.b/rest/1/${NOPE}/")]}, {}, "environment variable NOPE"),
        ({"schedule": {"cron": "every day"}, "portals": [acme()]}, {}, "schedule.cron: 'every day'"),
        ({"schedule": {"cron": "* * * * *", "interval_seconds": 5}, "portals": [acme()]}, {}, "not both"),
        ({"schedule": {"interval_seconds": 0}, "portals": [acme()]}, {}, "schedule.interval_seconds"),
        ({"schedule": {"interval_seconds": "60"}, "portals": [acme()]}, {}, "expected an integer"),
        ({"database": {"url": 5}, "portals": [acme()]}, {}, "database.url: expected a string"),
        ({"portals": [acme(burst=0)]}, {}, "portals['acme'].burst"),
        ({"portals": [acme(requests_per_second=-1)]}, {}, "requests_per_second"),
        ({}, {}, "config key portals: missing"),
    ],
)
def test_bad_values_name_their_key(
    document: dict[str, object], environ: dict[str, str], expected: str
) -> None:
    assert expected in error_of(document, **environ)


def test_errors_never_repeat_the_webhook_secret() -> None:
    message = error_of({"portals": [acme(webhook_url="https://acme/rest/x/s3cr3tvalue/")]})
    assert "s3cr3tvalue" not in message


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[portals\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config.example.toml"
    config = load_config(
        example,
        {
            "ACME_WEBHOOK_SECRET": "x",
            "GLOBEX_ACCESS_TOKEN": "a",
            "GLOBEX_REFRESH_TOKEN": "r",
            "GLOBEX_CLIENT_SECRET": "y",
        },
    )
    assert [p.name for p in config.portals] == ["acme", "globex"]


def test_a_ca_bundle_must_exist_and_replaces_the_trusted_cas(tmp_path: Path) -> None:
    import requests

    from poller.bitrix import PortalClient

    assert "http.ca_bundle: '/nonexistent.pem' is not a readable file" in error_of(
        {"http": {"ca_bundle": "/nonexistent.pem"}, "portals": [acme()]}
    )
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    config = parse({"http": {"ca_bundle": str(bundle)}, "portals": [acme()]})
    session = requests.Session()
    PortalClient(config.portals[0], session, config.http)
    assert session.verify == str(bundle)
    default = requests.Session()
    PortalClient(parse({"portals": [acme()]}).portals[0], default)
    assert default.verify is True


def test_a_jitter_of_half_a_portals_interval_or_more_is_refused_naming_the_key_and_portal() -> None:
    document = {"schedule": {"jitter_seconds": 30}, "portals": [acme(interval_seconds=60)]}
    refused = r"schedule\.jitter_seconds: 30 s is not below half of portal 'acme'"
    with pytest.raises(ConfigError, match=refused):
        parse(document)
    assert parse({"schedule": {"jitter_seconds": 29}, "portals": [acme(interval_seconds=60)]})
