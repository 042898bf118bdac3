"""Read config.toml into frozen, typed objects, naming the key of every problem."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from poller.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///timeman.sqlite3"
DEFAULT_SPOOL_PATH = "timeman-spool.jsonl"
DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"
CONFIG_ENV_VAR = "TIMEMAN_POLLER_CONFIG"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_WEBHOOK_PATH = re.compile(r"^/rest/(\d+)/([^/]+)/?$")


@dataclass(frozen=True)
class ScheduleConfig:
    """When the daemon polls: every `interval_seconds`, or on a crontab `cron`."""

    interval_seconds: int | None = 60
    cron: str | None = None
    jitter_seconds: int = 0
    timezone: str = "UTC"


@dataclass(frozen=True)
class HttpConfig:
    """Timeouts and retries of every request to Bitrix24."""

    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_retries: int = 4
    ca_bundle: str | None = None


@dataclass(frozen=True)
class PortalConfig:
    """One Bitrix24 portal and the users to poll there.

    `base_url` is the scheme and host (`https://acme.bitrix24.com`); with a webhook,
    `webhook_path` is `/rest/{uid}/{secret}/`, otherwise `access_token` authenticates.
    """

    name: str
    base_url: str
    users: tuple[int, ...] | Literal["all"]
    webhook_path: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    oauth_url: str = DEFAULT_OAUTH_URL
    requests_per_second: float = 2.0
    burst: int = 50
    # This portal's own schedule; None keeps the [schedule] table's.
    interval_seconds: int | None = None
    cron: str | None = None

    @property
    def host(self) -> str:
        """The portal's host name: the only part of its address that may be logged."""
        return urlsplit(self.base_url).hostname or self.base_url

    @property
    def uses_webhook(self) -> bool:
        return self.webhook_path is not None

    def secrets(self) -> tuple[str, ...]:
        """Every secret of this portal, for redaction."""
        found = [self.access_token, self.refresh_token, self.client_secret]
        if self.webhook_path:
            match = _WEBHOOK_PATH.match(self.webhook_path)
            if match:
                found.append(match.group(2))
        return tuple(s for s in found if s)


@dataclass(frozen=True)
class MetricsConfig:
    """Where /metrics and /healthz are served; `port` None turns them off."""

    port: int | None = None
    host: str = "127.0.0.1"
    healthz_max_age_seconds: int | None = None


@dataclass(frozen=True)
class DirectoryConfig:
    """How often the user and department directory is read again (0 turns refreshing off)."""

    refresh_hours: float = 24.0


@dataclass(frozen=True)
class ReconcileConfig:
    """Once a day at `at` (local time of [schedule] timezone), re-read the last `days` days of records.

    `days` 0 turns it off.
    """

    days: int = 2
    at: str = "03:30"


@dataclass(frozen=True)
class Config:
    """The whole configuration of one poller.

    `storage_mode` "all" keeps a row per poll; "changes" extends a user's newest row while
    the answer stays the same.
    """

    database_url: str = DEFAULT_DATABASE_URL
    storage_mode: Literal["all", "changes"] = "all"
    spool_path: Path | None = Path(DEFAULT_SPOOL_PATH)
    spool_max_rows: int = 200_000
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    portals: tuple[PortalConfig, ...] = ()

    def schedule_of(self, portal: PortalConfig) -> ScheduleConfig:
        """The schedule `portal` runs on: its own interval or cron, else the [schedule] table's."""
        if portal.cron is not None:
            return ScheduleConfig(None, portal.cron, self.schedule.jitter_seconds, self.schedule.timezone)
        if portal.interval_seconds is not None:
            return ScheduleConfig(
                portal.interval_seconds, None, self.schedule.jitter_seconds, self.schedule.timezone
            )
        return self.schedule

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for portal in self.portals for s in portal.secrets())


def config_path(cli_value: str | None) -> Path:
    """Pick the config file: `-c`, else $TIMEMAN_POLLER_CONFIG, else ./config.toml."""
    return Path(cli_value or os.environ.get(CONFIG_ENV_VAR) or "config.toml")


def load_config(
    path: Path, environ: Mapping[str, str] | None = None, *, portal_secrets: bool = True
) -> Config:
    """Read and validate the TOML file at `path`.

    With `portal_secrets` False, `${NAME}` references inside [[portals]] that are not set
    stay as they are: commands that only read the database (report, status, prune) must not
    need every portal's secrets in their environment.
    """
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (give -c PATH or set {CONFIG_ENV_VAR})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    return parse_config(document, os.environ if environ is None else environ, portal_secrets=portal_secrets)


def parse_config(
    document: dict[str, Any], environ: Mapping[str, str], *, portal_secrets: bool = True
) -> Config:
    """Validate a parsed TOML document; `${NAME}` in strings is read from `environ`."""
    portals_document = document.get("portals")
    document = _substitute({k: v for k, v in document.items() if k != "portals"}, environ, "")
    if portals_document is not None:
        document["portals"] = _substitute(portals_document, environ, "portals", lenient=not portal_secrets)
    top_keys = {"database", "storage", "schedule", "http", "metrics", "directory", "reconcile", "portals"}
    _reject_unknown(document, top_keys, "")
    database = _table(document, "database")
    _reject_unknown(database, {"url"}, "database")
    database_url = _string(database, "url", "database", DEFAULT_DATABASE_URL)
    portals_value = document.get("portals")
    if portals_value is None:
        raise ConfigError("config key portals: missing; add at least one [[portals]] table")
    if not isinstance(portals_value, list) or not portals_value:
        raise ConfigError("config key portals: expected one or more [[portals]] tables")
    portals = tuple(_portal(item, f"portals[{i}]") for i, item in enumerate(portals_value))
    seen: set[str] = set()
    for portal in portals:
        if portal.name in seen:
            raise ConfigError(
                f"config key portals.name: duplicate portal name {portal.name!r}; names must be unique"
            )
        seen.add(portal.name)
    storage = _table(document, "storage")
    _reject_unknown(storage, {"mode", "spool_path", "spool_max_rows"}, "storage")
    spool_path = _string(storage, "spool_path", "storage", DEFAULT_SPOOL_PATH)
    mode = _string(storage, "mode", "storage", "all")
    if mode not in ("all", "changes"):
        raise ConfigError(f'config key storage.mode: {mode!r} is not "all" or "changes"')
    return Config(
        database_url=database_url,
        storage_mode=mode,
        spool_path=Path(spool_path) if spool_path else None,
        spool_max_rows=_integer(storage, "spool_max_rows", "storage", 200_000, minimum=1),
        metrics=_metrics(_table(document, "metrics")),
        schedule=_schedule(_table(document, "schedule")),
        http=_http(_table(document, "http")),
        directory=_directory(_table(document, "directory")),
        reconcile=_reconcile(_table(document, "reconcile")),
        portals=portals,
    )


def _schedule(table: dict[str, Any]) -> ScheduleConfig:
    _reject_unknown(table, {"interval_seconds", "cron", "jitter_seconds", "timezone"}, "schedule")
    jitter = _integer(table, "jitter_seconds", "schedule", 0, minimum=0)
    zone = _string(table, "timezone", "schedule", "UTC")
    _check_timezone(zone, "schedule.timezone")
    cron = _string(table, "cron", "schedule", None)
    if cron is not None:
        if "interval_seconds" in table:
            raise ConfigError("config key schedule: set either interval_seconds or cron, not both")
        _check_cron(cron, "schedule.cron")
        return ScheduleConfig(interval_seconds=None, cron=cron, jitter_seconds=jitter, timezone=zone)
    interval = _integer(table, "interval_seconds", "schedule", 60, minimum=1)
    return ScheduleConfig(interval_seconds=interval, cron=None, jitter_seconds=jitter, timezone=zone)


def _check_timezone(name: str, key: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"config key {key}: {name!r} is not a time zone; expected an IANA name such as "
            "'Europe/Berlin' or 'UTC'"
        ) from None


def _check_cron(expression: str, key: str) -> None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ConfigError(
            f"config key {key}: {expression!r} is not a crontab expression "
            f"(expected 5 fields, e.g. '*/5 * * * *'): {exc}"
        ) from None


def _directory(table: dict[str, Any]) -> DirectoryConfig:
    _reject_unknown(table, {"refresh_hours"}, "directory")
    hours = table.get("refresh_hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
        raise ConfigError(f"config key directory.refresh_hours: expected hours >= 0 (0 = off), got {hours!r}")
    return DirectoryConfig(refresh_hours=float(hours))


def _reconcile(table: dict[str, Any]) -> ReconcileConfig:
    _reject_unknown(table, {"days", "at"}, "reconcile")
    days = _integer(table, "days", "reconcile", 2, minimum=0)
    at = _string(table, "at", "reconcile", "03:30")
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", at)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ConfigError(f"config key reconcile.at: {at!r} is not a time of day; expected HH:MM (03:30)")
    return ReconcileConfig(days=days, at=at)


def _metrics(table: dict[str, Any]) -> MetricsConfig:
    _reject_unknown(table, {"port", "host", "healthz_max_age_seconds"}, "metrics")
    port = table.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise ConfigError(f"config key metrics.port: expected a TCP port (1-65535), got {port!r}")
    max_age = table.get("healthz_max_age_seconds")
    if max_age is not None:
        max_age = _integer(table, "healthz_max_age_seconds", "metrics", 0, minimum=1)
    return MetricsConfig(
        port=port, host=_string(table, "host", "metrics", "127.0.0.1"), healthz_max_age_seconds=max_age
    )


def _http(table: dict[str, Any]) -> HttpConfig:
    keys = {"connect_timeout_seconds", "read_timeout_seconds", "max_retries", "ca_bundle"}
    _reject_unknown(table, keys, "http")
    ca_bundle = _string(table, "ca_bundle", "http", None)
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise ConfigError(f"config key http.ca_bundle: {ca_bundle!r} is not a readable file")
    return HttpConfig(
        ca_bundle=ca_bundle,
        connect_timeout_seconds=_number(table, "connect_timeout_seconds", "http", 5.0),
        read_timeout_seconds=_number(table, "read_timeout_seconds", "http", 30.0),
        max_retries=_integer(table, "max_retries", "http", 4, minimum=0),
    )


_PORTAL_KEYS = {
    "name",
    "webhook_url",
    "domain",
    "access_token",
    "refresh_token",
    "client_id",
    "client_secret",
    "oauth_url",
    "users",
    "requests_per_second",
    "burst",
    "interval_seconds",
    "cron",
}


def _portal(item: Any, where: str) -> PortalConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"config key {where}: expected a [[portals]] table")
    name = _string(item, "name", where, None)
    if not name:
        raise ConfigError(f"config key {where}.name: missing; every portal needs a unique name")
    where = f"portals[{name!r}]"
    _reject_unknown(item, _PORTAL_KEYS, where)
    webhook_url = _string(item, "webhook_url", where, None)
    domain = _string(item, "domain", where, None)
    access_token = _string(item, "access_token", where, None)
    if webhook_url and (domain or access_token):
        raise ConfigError(f"config key {where}: give either webhook_url or domain + access_token, not both")
    if webhook_url:
        base_url, webhook_path = parse_webhook_url(webhook_url, f"{where}.webhook_url")
    elif domain and access_token:
        base_url, webhook_path = parse_domain(domain, f"{where}.domain"), None
    elif domain:
        raise ConfigError(f"config key {where}.access_token: missing; domain needs an access_token")
    else:
        raise ConfigError(f"config key {where}: missing auth; give webhook_url, or domain + access_token")
    oauth_url = _string(item, "oauth_url", where, DEFAULT_OAUTH_URL)
    _check_http_url(oauth_url, f"{where}.oauth_url")
    return PortalConfig(
        name=name,
        base_url=base_url,
        webhook_path=webhook_path,
        access_token=access_token,
        refresh_token=_string(item, "refresh_token", where, None),
        client_id=_string(item, "client_id", where, None),
        client_secret=_string(item, "client_secret", where, None),
        oauth_url=oauth_url,
        users=_users(item, where),
        requests_per_second=_number(item, "requests_per_second", where, 2.0),
        burst=_integer(item, "burst", where, 50, minimum=1),
        **_portal_schedule(item, where),
    )


def _portal_schedule(item: dict[str, Any], where: str) -> dict[str, Any]:
    """A portal's own interval_seconds or cron, overriding [schedule] for that portal only."""
    cron = _string(item, "cron", where, None)
    if cron is not None and "interval_seconds" in item:
        raise ConfigError(f"config key {where}: set either interval_seconds or cron, not both")
    if cron is not None:
        _check_cron(cron, f"{where}.cron")
        return {"cron": cron}
    if "interval_seconds" in item:
        return {"interval_seconds": _integer(item, "interval_seconds", where, 60, minimum=1)}
    return {}


def _users(item: dict[str, Any], where: str) -> tuple[int, ...] | Literal["all"]:
    value = item.get("users")
    if value is None:
        raise ConfigError(f'config key {where}.users: missing; give a list of user ids or "all"')
    if value == "all":
        return "all"
    if not isinstance(value, list):
        raise ConfigError(f'config key {where}.users: expected a list of user ids or "all", got {value!r}')
    if not value:
        raise ConfigError(f'config key {where}.users: empty; list at least one user id or use "all"')
    users: list[int] = []
    for entry in value:
        if isinstance(entry, bool) or not isinstance(entry, int) or entry < 1:
            raise ConfigError(f"config key {where}.users: {entry!r} is not a user id (a positive integer)")
        if entry not in users:
            users.append(entry)
    return tuple(users)


def parse_webhook_url(url: str, where: str) -> tuple[str, str]:
    """Split `https://portal/rest/1/secret/` into its base URL and `/rest/1/secret/` path."""
    parts = urlsplit(url)
    match = _WEBHOOK_PATH.match(parts.path)
    if parts.scheme not in {"http", "https"} or not parts.hostname or not match:
        raise ConfigError(
            f"{_key(where)}: not an incoming-webhook URL; expected https://PORTAL/rest/USER_ID/SECRET/"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{_key(where)}: a webhook URL has no query or fragment")
    return f"{parts.scheme}://{parts.netloc}", f"/rest/{match.group(1)}/{match.group(2)}/"


def parse_domain(domain: str, where: str) -> str:
    """Turn `acme.bitrix24.com` or `http://127.0.0.1:8765` into a base URL."""
    text = domain.strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path not in {"", "/"}:
        raise ConfigError(
            f"{_key(where)}: {domain!r} is not a portal address; expected a host such as "
            "acme.bitrix24.com, optionally with https://"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{_key(where)}: {domain!r} has a bad port") from None
    return f"{parts.scheme}://{parts.netloc}"


def _key(where: str) -> str:
    """Name a value in an error: a config key, or a command-line option (`--url`) as it is."""
    return where if where.startswith("-") else f"config key {where}"


def _check_http_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"config key {where}: {url!r} is not an http(s) URL")


def _substitute(value: Any, environ: Mapping[str, str], where: str, *, lenient: bool = False) -> Any:
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
            key: _substitute(item, environ, f"{where}.{key}" if where else key, lenient=lenient)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_substitute(item, environ, f"{where}[{i}]", lenient=lenient) for i, item in enumerate(value)]
    return value


def _reject_unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            place = f"{where}.{key}" if where else key
            raise ConfigError(
                f"config key {place}: unknown key; expected one of {', '.join(sorted(allowed))}"
            )


def _table(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config key {key}: expected a [{key}] table")
    return value


def _string(table: dict[str, Any], key: str, where: str, default: str | None) -> Any:
    value = table.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"config key {where}.{key}: expected a string, got {value!r}")
    return value


def _integer(table: dict[str, Any], key: str, where: str, default: int, *, minimum: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"config key {where}.{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _number(table: dict[str, Any], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"config key {where}.{key}: expected a number > 0, got {value!r}")
    return float(value)
