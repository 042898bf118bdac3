"""Per-portal schedules, the cron time zone, directory and reconcile settings, configs without secrets."""

from __future__ import annotations

import pytest

from poller.config import ScheduleConfig, parse_config
from poller.errors import ConfigError


def document(**extra: object) -> dict[str, object]:
    portals = [
        {"name": "fast", "webhook_url": "https://a.example/rest/1/s/", "users": [1], "interval_seconds": 15},
        {"name": "nightly", "webhook_url": "https://b.example/rest/1/s/", "users": [1], "cron": "0 3 * * *"},
        {"name": "default", "webhook_url": "https://c.example/rest/1/s/", "users": [1]},
    ]
    return {"portals": portals, **extra}


def test_a_portal_overrides_the_schedule_and_the_others_keep_it() -> None:
    config = parse_config(document(schedule={"interval_seconds": 120, "timezone": "Europe/Berlin"}), {})
    fast, nightly, default = config.portals
    assert config.schedule_of(fast) == ScheduleConfig(15, None, 0, "Europe/Berlin")
    assert config.schedule_of(nightly) == ScheduleConfig(None, "0 3 * * *", 0, "Europe/Berlin")
    assert config.schedule_of(default) == ScheduleConfig(120, None, 0, "Europe/Berlin")


def test_directory_and_reconcile_have_defaults_and_can_be_set() -> None:
    defaults = parse_config(document(), {})
    assert (defaults.directory.refresh_hours, defaults.reconcile.days, defaults.reconcile.at) == (
        24.0,
        2,
        "03:30",
    )
    custom = parse_config(document(directory={"refresh_hours": 6}, reconcile={"days": 0, "at": "22:05"}), {})
    assert (custom.directory.refresh_hours, custom.reconcile.days, custom.reconcile.at) == (6.0, 0, "22:05")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"schedule": {"timezone": "Mars/Olympus"}},
            "config key schedule.timezone: 'Mars/Olympus' is not",
        ),
        ({"reconcile": {"at": "25:00"}}, "config key reconcile.at: '25:00' is not a time of day"),
        ({"reconcile": {"days": -1}}, "config key reconcile.days: expected an integer >= 0"),
        (
            {"directory": {"refresh_hours": "daily"}},
            "config key directory.refresh_hours: expected",
        ),
        ({"directory": {"every": 1}}, "config key directory.every: unknown key"),
    ],
)
def test_bad_schedule_values_name_their_key(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(**extra), {})
    assert str(caught.value).startswith(message)


def test_a_portal_with_both_interval_and_cron_is_refused() -> None:
    entry = {"name": "x", "webhook_url": "https://a.example/rest/1/s/", "users": [1], "interval_seconds": 5}
    entry["cron"] = "* * * * *"
    with pytest.raises(ConfigError, match=r"config key portals\['x'\]: set either interval_seconds or cron"):
        parse_config({"portals": [entry]}, {})


def test_a_portal_cron_is_checked() -> None:
    entry = {"name": "x", "webhook_url": "https://a.example/rest/1/s/", "users": [1], "cron": "every day"}
    with pytest.raises(ConfigError, match=r"config key portals\['x'\].cron: 'every day' is not a crontab"):
        parse_config({"portals": [entry]}, {})


def test_reading_commands_do_not_need_the_portal_secrets() -> None:
    doc = {
        "database": {"url": "${DB_URL}"},
        "portals": [{"name": "acme", "webhook_url": "https://a.example/rest/1/${SECRET}/", "users": [1]}],
    }
    with pytest.raises(ConfigError, match="environment variable SECRET is not set"):
        parse_config(doc, {"DB_URL": "sqlite:///x.sqlite3"})
    config = parse_config(doc, {"DB_URL": "sqlite:///x.sqlite3"}, portal_secrets=False)
    assert config.database_url == "sqlite:///x.sqlite3"
    assert config.portals[0].name == "acme"
    with pytest.raises(ConfigError, match="environment variable DB_URL is not set"):
        parse_config(doc, {}, portal_secrets=False)
