"""Read config.toml into frozen, typed objects, naming the key of every problem.

Each key is declared once, on the field that holds it (`setting(default, kind, doc)`, see
poller.config.keys; the sections' objects are in poller.config.sections): the parser below,
the unknown-key check, the defaults and docs/config-reference.md all come from those
declarations. What a declaration cannot say, the rules between keys (interval or cron, a
webhook or a token), is checked here.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from poller.config.calendar_kinds import check_holidays_country
from poller.config.keys import Section, read_keys, reject_unknown, section, sections_of, setting
from poller.config.kinds import Choice, Integer, Number
from poller.config.paths import DatabaseUrl, SpoolPath
from poller.config.sections import (
    DEFAULT_OAUTH_URL,
    PORTAL_ADDRESS,
    AbsencesConfig,
    DirectoryConfig,
    HttpConfig,
    MetricsConfig,
    PortalConfig,
    ReconcileConfig,
    RetentionConfig,
    ScheduleConfig,
)
from poller.config.values import parse_domain, parse_webhook_url, substitute, table_at
from poller.errors import ConfigError

__all__ = [  # with the sections' objects and the address parsers, where callers find them
    "CONFIG_ENV_VAR",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_OAUTH_URL",
    "DEFAULT_SPOOL_PATH",
    "AbsencesConfig",
    "Config",
    "DirectoryConfig",
    "HttpConfig",
    "MetricsConfig",
    "PortalConfig",
    "ReconcileConfig",
    "RetentionConfig",
    "ScheduleConfig",
    "config_path",
    "load_config",
    "parse_config",
    "parse_domain",
    "parse_webhook_url",
    "sections",
]

DEFAULT_DATABASE_URL = "sqlite:///timeman.sqlite3"
DEFAULT_SPOOL_PATH = "timeman-spool.jsonl"
CONFIG_ENV_VAR = "TIMEMAN_POLLER_CONFIG"
_DEFAULT_SPOOL = Path(DEFAULT_SPOOL_PATH)


@dataclass(frozen=True)
class Config:
    """The whole configuration of one poller.

    `storage_mode` "all" keeps a row per poll; "changes" extends a user's newest row while
    the answer stays the same.
    """

    database_url: str = setting(
        DEFAULT_DATABASE_URL,
        DatabaseUrl(),
        "SQLite (needs nothing else), or `postgresql+psycopg://USER:PASSWORD@HOST/DBNAME`; a "
        "`postgres://` or `postgresql://` URL is read as that, with an INFO line. A SQLite file's "
        "directory must exist.",
        key="url",
        table="database",
    )
    lock_wait_seconds: float = setting(
        5.0,
        Number(),
        "Under `run` and `poll`, how long a write waits for a SQLite file another program has "
        "locked before its rows go to the spool, to be written once the lock is gone.",
        table="database",
    )
    storage_mode: Literal["all", "changes"] = setting(
        "all",
        Choice(("all", "changes")),
        '"all" adds a row to snapshots at every poll; "changes" only when a user\'s answer '
        "changed, else it moves that row's last_seen_at and seen_count on.",
        key="mode",
        table="storage",
    )
    spool_path: Path | None = setting(  # noqa: RUF009 (setting() is a dataclasses.field)
        _DEFAULT_SPOOL,
        SpoolPath(),
        "While the database is down or locked, fetched rows wait in memory and in this file, "
        "and are written in order once it is back.",
        table="storage",
    )
    spool_max_rows: int = setting(
        200_000, Integer(1), "The most rows the spool keeps; the oldest go first.", table="storage"
    )
    metrics: MetricsConfig = field(
        default_factory=MetricsConfig,
        metadata=section("Prometheus metrics and a health check; off unless port is set.", MetricsConfig),
    )
    schedule: ScheduleConfig = field(
        default_factory=ScheduleConfig, metadata=section(ScheduleConfig.__doc__ or "", ScheduleConfig)
    )
    http: HttpConfig = field(
        default_factory=HttpConfig, metadata=section(HttpConfig.__doc__ or "", HttpConfig)
    )
    directory: DirectoryConfig = field(
        default_factory=DirectoryConfig,
        metadata=section(
            'The user and department directory; `users = "all"` takes its ids from it.', DirectoryConfig
        ),
    )
    reconcile: ReconcileConfig = field(
        default_factory=ReconcileConfig,
        metadata=section("A daily re-read of recent work-day records (REST 3.0).", ReconcileConfig),
    )
    retention: RetentionConfig = field(
        default_factory=RetentionConfig,
        metadata=section("How long evidence is kept.", RetentionConfig),
    )
    absences: AbsencesConfig = field(
        default_factory=AbsencesConfig,
        metadata=section(
            "Absences (calendar events marked absent) read with each directory refresh.", AbsencesConfig
        ),
    )
    portals: tuple[PortalConfig, ...] = field(
        default=(),
        metadata=section(
            "One table per Bitrix24 portal: `webhook_url`, or `domain` and `access_token`.",
            PortalConfig,
            many=True,
            inputs=PORTAL_ADDRESS,
        ),
    )

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


TABLE_DOCS = {
    "database": "Where the history is kept.",
    "storage": "How rows are kept, and where they wait while the database is away.",
}


@cache
def sections() -> tuple[Section, ...]:
    """Every section of the config and its keys, in the order of config.example.toml."""
    return tuple(sections_of(Config, TABLE_DOCS))


def config_path(cli_value: str | None) -> Path:
    """Pick the config file: `-c`, else $TIMEMAN_POLLER_CONFIG, else ./config.toml."""
    return Path(cli_value or os.environ.get(CONFIG_ENV_VAR) or "config.toml")


def load_config(
    path: Path, environ: Mapping[str, str] | None = None, *, portal_secrets: bool = True
) -> Config:
    """Read and validate the TOML file at `path`; relative paths in it are relative to its directory.

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
    environ = os.environ if environ is None else environ
    return parse_config(document, environ, portal_secrets=portal_secrets, base=path.absolute().parent)


def parse_config(
    document: dict[str, Any],
    environ: Mapping[str, str],
    *,
    portal_secrets: bool = True,
    base: Path | None = None,
) -> Config:
    """Validate a parsed TOML document; `${NAME}` in strings is read from `environ`.

    Relative paths are taken relative to `base` (the config file's directory); without it,
    relative to the working directory.
    """
    portals_document = document.get("portals")
    document = substitute({k: v for k, v in document.items() if k != "portals"}, environ, "")
    if portals_document is not None:
        document["portals"] = substitute(portals_document, environ, "portals", lenient=not portal_secrets)
    reject_unknown(document, {part.name for part in sections()}, "")
    values: dict[str, Any] = {}
    for part in sections():
        if part.many:
            values[part.name] = _portals(document.get(part.name), part, base)
            continue
        table = table_at(document, part.name)
        reject_unknown(table, part.names(), part.name)
        read = read_keys(table, part.keys, part.name, base)
        if part.attr is None:
            values.update(read)  # [database] and [storage] are fields of Config itself
        elif part.cls is ScheduleConfig:
            values[part.attr] = _schedule(read, table, part.name)
        else:
            assert part.cls is not None
            values[part.attr] = part.cls(**read)
    config = Config(**values)
    _check_jitter(config)
    return config


def _check_jitter(config: Config) -> None:
    """Jitter under half of every interval: more would let a jittered fire skip its grid instant."""
    jitter = config.schedule.jitter_seconds
    for portal in config.portals:
        interval = config.schedule_of(portal).interval_seconds
        if jitter and interval and 2 * jitter >= interval:
            raise ConfigError(
                f"config key schedule.jitter_seconds: {jitter} s is not below half of portal "
                f"{portal.name!r}'s interval of {interval} s; lower it or lengthen the interval"
            )


def _schedule(values: dict[str, Any], table: dict[str, Any], where: str) -> ScheduleConfig:
    if values["cron"] is not None:
        if "interval_seconds" in table:
            raise ConfigError(f"config key {where}: set either interval_seconds or cron, not both")
        values["interval_seconds"] = None
    return ScheduleConfig(**values)


def _portals(value: Any, part: Section, base: Path | None) -> tuple[PortalConfig, ...]:
    if value is None:
        raise ConfigError("config key portals: missing; add at least one [[portals]] table")
    if not isinstance(value, list) or not value:
        raise ConfigError("config key portals: expected one or more [[portals]] tables")
    portals = tuple(_portal(item, f"portals[{i}]", part, base) for i, item in enumerate(value))
    seen: set[str] = set()
    for portal in portals:
        if portal.name in seen:
            raise ConfigError(
                f"config key portals.name: duplicate portal name {portal.name!r}; names must be unique"
            )
        seen.add(portal.name)
    return portals


def _portal(item: Any, where: str, part: Section, base: Path | None) -> PortalConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"config key {where}: expected a [[portals]] table")
    (name,) = (key for key in part.keys if key.name == "name")
    if not item.get("name"):  # before anything else: the other errors name the portal by it
        raise ConfigError(f"config key {where}.name: missing; {name.missing}")
    where = f"portals[{name.kind.read(item['name'], f'{where}.name', base)!r}]"
    reject_unknown(item, part.names(), where)
    values = read_keys(item, part.keys, where, base)
    webhook, domain = values.pop("webhook_url"), values.pop("domain")
    if webhook and (domain or values["access_token"]):
        raise ConfigError(f"config key {where}: give either webhook_url or domain + access_token, not both")
    if webhook:
        base_url, webhook_path = webhook
    elif domain and values["access_token"]:
        base_url, webhook_path = domain, None
    elif domain:
        raise ConfigError(f"config key {where}.access_token: missing; domain needs an access_token")
    else:
        raise ConfigError(f"config key {where}: missing auth; give webhook_url, or domain + access_token")
    if values["cron"] is not None and "interval_seconds" in item:
        raise ConfigError(f"config key {where}: set either interval_seconds or cron, not both")
    check_holidays_country(values["holidays_country"], values["holidays_subdivision"], where)
    return PortalConfig(base_url=base_url, webhook_path=webhook_path, **values)
