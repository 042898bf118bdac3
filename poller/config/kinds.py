"""The kinds of config values: each reads one TOML value, checks it and names the key when it is wrong.

A kind's `text` says what it expects in docs/config-reference.md; its error says the same to
the user, so the page and the message agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poller.config.values import (
    check_cron,
    check_http_url,
    check_timezone,
    parse_domain,
    parse_webhook_url,
)
from poller.errors import ConfigError

_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})")


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"config key {key}: expected a string, got {value!r}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Text:
    """Any string."""

    text: str = "string"

    def read(self, value: Any, key: str, base: Path | None) -> str:
        return _text(value, key)


@dataclass(frozen=True)
class Choice:
    """One of a few words."""

    options: tuple[str, ...]

    @property
    def text(self) -> str:
        return " or ".join(f'"{option}"' for option in self.options)

    def read(self, value: Any, key: str, base: Path | None) -> str:
        if _text(value, key) not in self.options:
            raise ConfigError(f"config key {key}: {value!r} is not {self.text}")
        return value


@dataclass(frozen=True)
class Integer:
    """A whole number of at least `minimum`; `expected` rewords the error and the docs."""

    minimum: int
    expected: str = ""

    @property
    def text(self) -> str:
        return self.expected or f"integer >= {self.minimum}"

    def read(self, value: Any, key: str, base: Path | None) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < self.minimum:
            wanted = self.expected or f"an integer >= {self.minimum}"
            raise ConfigError(f"config key {key}: expected {wanted}, got {value!r}")
        return value


@dataclass(frozen=True)
class Number:
    """An integer or a float above zero (`or_zero`: zero too), held as a float."""

    or_zero: bool = False
    expected: str = ""

    @property
    def text(self) -> str:
        return self.expected or ("number >= 0" if self.or_zero else "number > 0")

    def read(self, value: Any, key: str, base: Path | None) -> float:
        if not _is_number(value) or value < 0 or (value == 0 and not self.or_zero):
            wanted = self.expected or "a number > 0"
            raise ConfigError(f"config key {key}: expected {wanted}, got {value!r}")
        return float(value)


@dataclass(frozen=True)
class Port:
    text: str = "TCP port (1-65535)"

    def read(self, value: Any, key: str, base: Path | None) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
            raise ConfigError(f"config key {key}: expected a TCP port (1-65535), got {value!r}")
        return value


@dataclass(frozen=True)
class TimeOfDay:
    text: str = "time of day, HH:MM"

    def read(self, value: Any, key: str, base: Path | None) -> str:
        match = _TIME_OF_DAY.fullmatch(_text(value, key))
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ConfigError(f"config key {key}: {value!r} is not a time of day; expected HH:MM (03:30)")
        return value


@dataclass(frozen=True)
class Checked:
    """Text that one of config_values' checks accepts (a crontab, a time zone, a URL)."""

    text: str
    check: Callable[[str, str], object]

    def read(self, value: Any, key: str, base: Path | None) -> str:
        self.check(_text(value, key), key)
        return value


CRON = Checked("crontab expression (5 fields)", check_cron)
TIME_ZONE = Checked("IANA time zone name", check_timezone)
HTTP_URL = Checked("http(s) URL", check_http_url)


@dataclass(frozen=True)
class WebhookUrl:
    """An incoming webhook's URL, read as (base URL, `/rest/ID/SECRET/` path)."""

    text: str = "incoming-webhook URL"

    def read(self, value: Any, key: str, base: Path | None) -> tuple[str, str]:
        return parse_webhook_url(_text(value, key), key)


@dataclass(frozen=True)
class Domain:
    """A portal's host, read as its base URL (https:// unless a scheme is given)."""

    text: str = "host name, optionally with http(s)://"

    def read(self, value: Any, key: str, base: Path | None) -> str:
        return parse_domain(_text(value, key), key)


@dataclass(frozen=True)
class Users:
    text: str = 'list of user ids, or "all"'

    def read(self, value: Any, key: str, base: Path | None) -> tuple[int, ...] | str:
        if value == "all":
            return "all"
        if not isinstance(value, list):
            raise ConfigError(f'config key {key}: expected a list of user ids or "all", got {value!r}')
        if not value:
            raise ConfigError(f'config key {key}: empty; list at least one user id or use "all"')
        users: list[int] = []
        for entry in value:
            if isinstance(entry, bool) or not isinstance(entry, int) or entry < 1:
                raise ConfigError(f"config key {key}: {entry!r} is not a user id (a positive integer)")
            if entry not in users:
                users.append(entry)
        return tuple(users)
