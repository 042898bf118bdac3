"""The sections of config.toml, one frozen object each, with each key declared on its field.

`setting(default, kind, doc)` (poller.config.keys) gives a key's default, how it is read and
checked, and its line in docs/config-reference.md. The top-level Config and the reading of
the file are in poller.config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal
from urllib.parse import urlsplit

from poller.config.calendar_kinds import (
    COUNTRY,
    SUBDIVISION,
    Dates,
    IdList,
    ScheduleMap,
    ScheduleMapKind,
)
from poller.config.keys import Key, required, setting
from poller.config.kinds import (
    CRON,
    HTTP_URL,
    TIME_ZONE,
    Domain,
    Integer,
    Number,
    Port,
    Text,
    TimeOfDay,
    Users,
    WebhookUrl,
)
from poller.config.paths import ReadableFile
from poller.config.values import WEBHOOK_PATH

DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"


@dataclass(frozen=True)
class ScheduleConfig:
    """When the daemon polls: every `interval_seconds`, or on a crontab `cron`."""

    interval_seconds: int | None = setting(60, Integer(1), "Poll every this many seconds (not with cron).")
    cron: str | None = setting(
        None, CRON, 'Poll on this crontab expression instead, e.g. `"*/5 7-20 * * 1-5"`.'
    )
    jitter_seconds: int = setting(
        0, Integer(0), "Delay each cycle by up to this many random seconds, so pollers do not meet."
    )
    timezone: str = setting("UTC", TIME_ZONE, "The time zone of cron expressions and of [reconcile] at.")


@dataclass(frozen=True)
class HttpConfig:
    """Timeouts and retries of every request to Bitrix24."""

    connect_timeout_seconds: float = setting(5.0, Number(), "Seconds to wait for a connection.")
    read_timeout_seconds: float = setting(
        30.0, Number(), "Seconds to wait for an answer (Bitrix24 cuts requests at 60 s)."
    )
    max_retries: int = setting(
        4,
        Integer(0),
        "How often a failed request (timeout, 5xx, HTML error page, QUERY_LIMIT_EXCEEDED) is "
        "retried within one cycle, with growing jittered delays, before it is recorded as an error.",
    )
    ca_bundle: str | None = setting(
        None,
        ReadableFile(),
        "A CA bundle (PEM) to trust instead of the system's, for a portal behind a proxy with its "
        "own CA. Certificates are always verified.",
    )


PORTAL_ADDRESS = (
    Key(
        "webhook_url",
        "webhook_url",
        WebhookUrl(),
        "An incoming webhook, `https://PORTAL/rest/USER_ID/SECRET/` (scopes timeman and user); "
        "not with `domain`.",
        None,
    ),
    Key("domain", "domain", Domain(), "The portal's address for OAuth (https:// is assumed).", None),
)
"""Keys read into a portal's `base_url` and `webhook_path` rather than into fields of their own."""


@dataclass(frozen=True)
class PortalConfig:
    """One Bitrix24 portal and the users to poll there.

    `base_url` is the scheme and host (`https://acme.bitrix24.com`); with a webhook,
    `webhook_path` is `/rest/{uid}/{secret}/`, otherwise `access_token` authenticates.
    """

    name: str = field(
        metadata=required(
            Text(), "A unique name: the `portal` column of every table.", "every portal needs a unique name"
        )
    )
    base_url: str
    users: tuple[int, ...] | Literal["all"] = field(
        metadata=required(
            Users(),
            'The users to poll: user ids, or "all" for every active user of the stored directory '
            "(see [directory]). Reading other users needs work-time admin rights.",
            'give a list of user ids or "all"',
        )
    )
    webhook_path: str | None = None
    access_token: str | None = setting(None, Text(), "With domain: the OAuth access token.")
    refresh_token: str | None = setting(
        None,
        Text(),
        "With client_id and client_secret, the poller renews an expired access token itself and "
        "keeps the new pair in the oauth_tokens table, which wins over the config from then on.",
    )
    client_id: str | None = setting(None, Text(), "The OAuth application's id, to renew tokens.")
    client_secret: str | None = setting(None, Text(), "The OAuth application's secret, to renew tokens.")
    oauth_url: str = setting(DEFAULT_OAUTH_URL, HTTP_URL, "The OAuth server that renews tokens.")
    requests_per_second: float = setting(
        2.0,
        Number(),
        "The portal's leaky bucket drains this many requests per second (standard plans 2, "
        "Enterprise 5); the poller never sends faster.",
    )
    burst: int = setting(50, Integer(1), "The leaky bucket's size (standard plans 50, Enterprise 250).")
    interval_seconds: int | None = setting(
        None, Integer(1), "This portal's own interval instead of [schedule]'s (not with cron)."
    )
    cron: str | None = setting(None, CRON, "This portal's own crontab expression instead of [schedule]'s.")
    schedule_ids: tuple[int, ...] = setting(
        (),
        IdList(),
        "Work schedules (timeman.schedule.get) read and kept as versions in the schedules table "
        "with the directory refresh, beside those `schedules` names.",
    )
    schedules: ScheduleMap = setting(  # noqa: RUF009 (setting() is a dataclasses.field)
        ScheduleMap(),
        ScheduleMapKind(),
        "Who works on which schedule (Bitrix24 has no REST read of it): "
        '`{ users = { "12" = 4 }, departments = { "3" = 1 } }`, kept in schedule_assignments.',
    )
    extra_holidays: tuple[date, ...] = setting(
        (),
        Dates(),
        "Days off added to the portal's calendar (or to the holidays package's), e.g. `[\"2026-12-24\"]`.",
    )
    holidays_country: str | None = setting(
        None,
        COUNTRY,
        "The holidays package's country, used when the portal's calendar has no holidays or "
        "cannot be read (no `calendar` scope).",
    )
    holidays_subdivision: str | None = setting(
        None, SUBDIVISION, "With holidays_country: its state or province (`BY` for Bavaria)."
    )

    def schedules_to_read(self) -> tuple[int, ...]:
        """`schedule_ids`, then the schedules only the map names."""
        return tuple(dict.fromkeys((*self.schedule_ids, *self.schedules.schedule_ids())))

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

    port: int | None = setting(None, Port(), "Serve `/metrics` and `/healthz` on this port; unset: off.")
    host: str = setting("127.0.0.1", Text(), "The address they listen on.")
    healthz_max_age_seconds: int | None = setting(
        None,
        Integer(1),
        "`/healthz` answers 503 when a portal has had no successful cycle for this long; unset: "
        "three intervals, or an hour with a cron schedule.",
    )


@dataclass(frozen=True)
class DirectoryConfig:
    """How often the user and department directory is read again (0 turns refreshing off)."""

    refresh_hours: float = setting(
        24.0,
        Number(or_zero=True, expected="hours >= 0 (0 = off)"),
        "Hours between reads of each portal's users and departments (user.get, department.get) "
        "into the users and departments tables, by `run` and `poll`; 0 = never.",
    )


@dataclass(frozen=True)
class ReconcileConfig:
    """Once a day at `at` (local time of [schedule] timezone), re-read the last `days` days of records.

    `days` 0 turns it off.
    """

    days: int = setting(
        2,
        Integer(0),
        "Days of the portal's own work-day records (timeman.record.list) re-read into "
        "workday_records once a day; 0 = off.",
    )
    at: str = setting("03:30", TimeOfDay(), "When, in the local time of [schedule] timezone.")


@dataclass(frozen=True)
class RetentionConfig:
    """How long evidence is kept: `prune` deletes nothing younger than `keep_days` (0: no floor).

    ArbZG §16(2) asks German employers to keep working-time records for two years.
    """

    keep_days: int = setting(
        730,
        Integer(0, "whole days >= 0 (730 = two years, 0 = no floor)"),
        "`prune` deletes no evidence younger than this many days (730: ArbZG §16(2) asks German "
        "employers to keep working-time records for two years); 0 = no floor.",
    )


@dataclass(frozen=True)
class AbsencesConfig:
    """Which days of absences (calendar.accessibility.get) each directory refresh reads again."""

    past_days: int = setting(
        14,
        Integer(0),
        "Days before today re-read at each refresh (an absence entered late is found).",
    )
    future_days: int = setting(28, Integer(0), "Days after today read at each refresh.")
