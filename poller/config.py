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

from poller.config_values import (
    WEBHOOK_PATH,
    check_cron,
    check_http_url,
    check_timezone,
    integer_at,
    number_at,
    parse_domain,
    parse_webhook_url,
    reject_unknown,
    string_at,
    substitute,
    table_at,
)
from poller.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///timeman.sqlite3"
DEFAULT_SPOOL_PATH = "timeman-spool.jsonl"
DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"
CONFIG_ENV_VAR = "TIMEMAN_POLLER_CONFIG"


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
            match = WEBHOOK_PATH.match(self.webhook_path)
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
class RetentionConfig:
    """How long evidence is kept: `prune` deletes nothing younger than `keep_days` (0: no floor).

    ArbZG §16(2) asks German employers to keep working-time records for two years.
    """

    keep_days: int = 730


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
    retention: RetentionConfig = field(default_factory=RetentionConfig)
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
    document = substitute({k: v for k, v in document.items() if k != "portals"}, environ, "")
    if portals_document is not None:
        document["portals"] = substitute(portals_document, environ, "portals", lenient=not portal_secrets)
    top_keys = {
        "database",
        "storage",
        "schedule",
        "http",
        "metrics",
        "directory",
        "reconcile",
        "retention",
        "portals",
    }
    reject_unknown(document, top_keys, "")
    database = table_at(document, "database")
    reject_unknown(database, {"url"}, "database")
    database_url = string_at(database, "url", "database", DEFAULT_DATABASE_URL)
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
    storage = table_at(document, "storage")
    reject_unknown(storage, {"mode", "spool_path", "spool_max_rows"}, "storage")
    spool_path = string_at(storage, "spool_path", "storage", DEFAULT_SPOOL_PATH)
    mode = string_at(storage, "mode", "storage", "all")
    if mode not in ("all", "changes"):
        raise ConfigError(f'config key storage.mode: {mode!r} is not "all" or "changes"')
    return Config(
        database_url=database_url,
        storage_mode=mode,
        spool_path=Path(spool_path) if spool_path else None,
        spool_max_rows=integer_at(storage, "spool_max_rows", "storage", 200_000, minimum=1),
        metrics=_metrics(table_at(document, "metrics")),
        schedule=_schedule(table_at(document, "schedule")),
        http=_http(table_at(document, "http")),
        directory=_directory(table_at(document, "directory")),
        reconcile=_reconcile(table_at(document, "reconcile")),
        retention=_retention(table_at(document, "retention")),
        portals=portals,
    )


def _schedule(table: dict[str, Any]) -> ScheduleConfig:
    reject_unknown(table, {"interval_seconds", "cron", "jitter_seconds", "timezone"}, "schedule")
    jitter = integer_at(table, "jitter_seconds", "schedule", 0, minimum=0)
    zone = string_at(table, "timezone", "schedule", "UTC")
    check_timezone(zone, "schedule.timezone")
    cron = string_at(table, "cron", "schedule", None)
    if cron is not None:
        if "interval_seconds" in table:
            raise ConfigError("config key schedule: set either interval_seconds or cron, not both")
        check_cron(cron, "schedule.cron")
        return ScheduleConfig(interval_seconds=None, cron=cron, jitter_seconds=jitter, timezone=zone)
    interval = integer_at(table, "interval_seconds", "schedule", 60, minimum=1)
    return ScheduleConfig(interval_seconds=interval, cron=None, jitter_seconds=jitter, timezone=zone)


def _directory(table: dict[str, Any]) -> DirectoryConfig:
    reject_unknown(table, {"refresh_hours"}, "directory")
    hours = table.get("refresh_hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
        raise ConfigError(f"config key directory.refresh_hours: expected hours >= 0 (0 = off), got {hours!r}")
    return DirectoryConfig(refresh_hours=float(hours))


def _reconcile(table: dict[str, Any]) -> ReconcileConfig:
    reject_unknown(table, {"days", "at"}, "reconcile")
    days = integer_at(table, "days", "reconcile", 2, minimum=0)
    at = string_at(table, "at", "reconcile", "03:30")
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", at)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ConfigError(f"config key reconcile.at: {at!r} is not a time of day; expected HH:MM (03:30)")
    return ReconcileConfig(days=days, at=at)


def _retention(table: dict[str, Any]) -> RetentionConfig:
    reject_unknown(table, {"keep_days"}, "retention")
    days = table.get("keep_days", 730)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ConfigError(
            f"config key retention.keep_days: expected whole days >= 0 (730 = two years, "
            f"0 = no floor), got {days!r}"
        )
    return RetentionConfig(keep_days=days)


def _metrics(table: dict[str, Any]) -> MetricsConfig:
    reject_unknown(table, {"port", "host", "healthz_max_age_seconds"}, "metrics")
    port = table.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise ConfigError(f"config key metrics.port: expected a TCP port (1-65535), got {port!r}")
    max_age = table.get("healthz_max_age_seconds")
    if max_age is not None:
        max_age = integer_at(table, "healthz_max_age_seconds", "metrics", 0, minimum=1)
    return MetricsConfig(
        port=port, host=string_at(table, "host", "metrics", "127.0.0.1"), healthz_max_age_seconds=max_age
    )


def _http(table: dict[str, Any]) -> HttpConfig:
    keys = {"connect_timeout_seconds", "read_timeout_seconds", "max_retries", "ca_bundle"}
    reject_unknown(table, keys, "http")
    ca_bundle = string_at(table, "ca_bundle", "http", None)
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise ConfigError(f"config key http.ca_bundle: {ca_bundle!r} is not a readable file")
    return HttpConfig(
        ca_bundle=ca_bundle,
        connect_timeout_seconds=number_at(table, "connect_timeout_seconds", "http", 5.0),
        read_timeout_seconds=number_at(table, "read_timeout_seconds", "http", 30.0),
        max_retries=integer_at(table, "max_retries", "http", 4, minimum=0),
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
    name = string_at(item, "name", where, None)
    if not name:
        raise ConfigError(f"config key {where}.name: missing; every portal needs a unique name")
    where = f"portals[{name!r}]"
    reject_unknown(item, _PORTAL_KEYS, where)
    webhook_url = string_at(item, "webhook_url", where, None)
    domain = string_at(item, "domain", where, None)
    access_token = string_at(item, "access_token", where, None)
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
    oauth_url = string_at(item, "oauth_url", where, DEFAULT_OAUTH_URL)
    check_http_url(oauth_url, f"{where}.oauth_url")
    return PortalConfig(
        name=name,
        base_url=base_url,
        webhook_path=webhook_path,
        access_token=access_token,
        refresh_token=string_at(item, "refresh_token", where, None),
        client_id=string_at(item, "client_id", where, None),
        client_secret=string_at(item, "client_secret", where, None),
        oauth_url=oauth_url,
        users=_users(item, where),
        requests_per_second=number_at(item, "requests_per_second", where, 2.0),
        burst=integer_at(item, "burst", where, 50, minimum=1),
        **_portal_schedule(item, where),
    )


def _portal_schedule(item: dict[str, Any], where: str) -> dict[str, Any]:
    """A portal's own interval_seconds or cron, overriding [schedule] for that portal only."""
    cron = string_at(item, "cron", where, None)
    if cron is not None and "interval_seconds" in item:
        raise ConfigError(f"config key {where}: set either interval_seconds or cron, not both")
    if cron is not None:
        check_cron(cron, f"{where}.cron")
        return {"cron": cron}
    if "interval_seconds" in item:
        return {"interval_seconds": integer_at(item, "interval_seconds", where, 60, minimum=1)}
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
