"""Check one value of the config and name its key when it is wrong; expand `${NAME}` references.

Shared by the kinds of config values (poller.config.kinds) and by command-line options
(`--url`), which is why the key is a parameter of every helper.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from poller.errors import ConfigError

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
WEBHOOK_PATH = re.compile(r"^/rest/(\d+)/([^/]+)/?$")


def check_timezone(name: str, key: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"config key {key}: {name!r} is not a time zone; expected an IANA name such as "
            "'Europe/Berlin' or 'UTC'"
        ) from None


def check_cron(expression: str, key: str) -> None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ConfigError(
            f"config key {key}: {expression!r} is not a crontab expression "
            f"(expected 5 fields, e.g. '*/5 * * * *'): {exc}"
        ) from None


def parse_webhook_url(url: str, where: str) -> tuple[str, str]:
    """Split `https://portal/rest/1/secret/` into its base URL and `/rest/1/secret/` path."""
    parts = urlsplit(url)
    match = WEBHOOK_PATH.match(parts.path)
    if parts.scheme not in {"http", "https"} or not parts.hostname or not match:
        raise ConfigError(
            f"{name_key(where)}: not an incoming-webhook URL; expected https://PORTAL/rest/USER_ID/SECRET/"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{name_key(where)}: a webhook URL has no query or fragment")
    return f"{parts.scheme}://{parts.netloc}", f"/rest/{match.group(1)}/{match.group(2)}/"


def parse_domain(domain: str, where: str) -> str:
    """Turn `acme.bitrix24.com` or `http://127.0.0.1:8765` into a base URL."""
    text = domain.strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path not in {"", "/"}:
        raise ConfigError(
            f"{name_key(where)}: {domain!r} is not a portal address; expected a host such as "
            "acme.bitrix24.com, optionally with https://"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{name_key(where)}: {domain!r} has a bad port") from None
    return f"{parts.scheme}://{parts.netloc}"


def name_key(where: str) -> str:
    """Name a value in an error: a config key, or a command-line option (`--url`) as it is."""
    return where if where.startswith("-") else f"config key {where}"


def check_http_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"config key {where}: {url!r} is not an http(s) URL")


def substitute(value: Any, environ: Mapping[str, str], where: str, *, lenient: bool = False) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, fallback = match.group(1), match.group(2)
            if name not in environ and fallback is not None:
                return fallback
            if name not in environ and lenient:
                return match.group(0)
            if name not in environ:
                raise ConfigError(
                    f"config key {where or '(top level)'}: environment variable {name} is not set"
                )
            return environ[name]

        return _ENV_REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {
            key: substitute(item, environ, f"{where}.{key}" if where else key, lenient=lenient)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [substitute(item, environ, f"{where}[{i}]", lenient=lenient) for i, item in enumerate(value)]
    return value


def table_at(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config key {key}: expected a [{key}] table")
    return value
