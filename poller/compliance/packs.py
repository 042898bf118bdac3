"""Rule packs: the working-time limits as data, read from TOML a user can copy and edit.

A pack is a table of rules, each `[rules.<id>]` with a `kind` the engine knows, a `limit`,
the kind's own parameters and the `source` it cites. The law differs by country and by
collective agreement, so the figures belong in a file, not in code. Every mistake in a pack
is one ConfigError naming the file and the key, because a silently skipped rule would read
as "no violations".
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from poller.compliance.days import DayKind
from poller.errors import ConfigError

SHIPPED = ("eu", "de", "ru")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DURATION = re.compile(r"^(\d{1,4}):([0-5]\d)(?::([0-5]\d))?$")

# Each kind's parameters beside `limit` and `source`: name -> (type, required).
KINDS: dict[str, dict[str, tuple[str, bool]]] = {
    "daily_rest": {},
    "min_break": {"over": ("duration", True), "min_part": ("duration", False)},
    "max_stretch": {"min_part": ("duration", False)},
    "daily_max": {},
    "daily_average": {"weeks": ("count", True), "days_per_week": ("count", True)},
    "weekly_average": {"weeks": ("count", True)},
    "weekly_rest": {},
    "no_work_on": {"weekdays": ("weekdays", False), "kinds": ("kinds", False)},
    "overtime_two_days": {"daily_norm": ("duration", True)},
    "overtime_year": {"daily_norm": ("duration", True)},
}
_COMMON = {"kind", "limit", "source", "title"}


@dataclass(frozen=True)
class Rule:
    """One limit of a pack; durations in seconds, unused parameters left at their defaults."""

    id: str
    kind: str
    limit: int
    source: str
    title: str = ""
    over: int = 0
    min_part: int = 0
    weeks: int = 1
    days_per_week: int = 5
    weekdays: tuple[str, ...] = ()
    kinds: tuple[DayKind, ...] = ()
    daily_norm: int = 0


@dataclass(frozen=True)
class RulePack:
    """A named, ordered set of rules; the order is the order of the file."""

    name: str
    title: str
    rules: tuple[Rule, ...]


def load_pack(spec: str | Path) -> RulePack:
    """Read a shipped pack by name (eu, de, ru) or a user's TOML file by path."""
    if isinstance(spec, str) and spec in SHIPPED:
        resource = files("poller.compliance").joinpath("packs", f"{spec}.toml")
        return parse_pack(resource.read_text(encoding="utf-8"), f"{spec}.toml")
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"rules {spec}: neither a shipped pack ({', '.join(SHIPPED)}) nor a readable file: "
            f"{error.strerror or error}"
        ) from None
    return parse_pack(text, str(path))


def parse_pack(text: str, where: str) -> RulePack:
    """Validate a pack's TOML text; `where` names the file in every error."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"name", "title", "rules"})
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]}: unknown key, expected name, title and [rules.<id>] tables")
    name = _text(data, "name", where, "name", Path(where).stem)
    title = _text(data, "title", where, "title", "")
    rules = data.get("rules")
    if not isinstance(rules, dict) or not rules:
        raise ConfigError(f"{where}: rules: expected at least one [rules.<id>] table")
    return RulePack(name, title, tuple(_rule(rule_id, body, where) for rule_id, body in rules.items()))


def _rule(rule_id: str, body: Any, where: str) -> Rule:
    """Build one rule, checking its kind, its keys and each value's type."""
    key = f"rules.{rule_id}"
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: {key}: expected a table, got {type(body).__name__}")
    kind = body.get("kind")
    if kind not in KINDS:
        expected = ", ".join(KINDS)
        raise ConfigError(f"{where}: {key}.kind: unknown rule kind {kind!r}, expected one of {expected}")
    params = KINDS[kind]
    extra = sorted(set(body) - _COMMON - set(params))
    if extra:
        known = ", ".join(sorted(_COMMON | set(params)))
        raise ConfigError(f"{where}: {key}.{extra[0]}: unknown key for kind {kind}, expected {known}")
    values: dict[str, Any] = {}
    for param, (type_, required) in {"limit": ("duration", True), **params}.items():
        if param in body:
            values[param] = _convert(body[param], type_, f"{where}: {key}.{param}")
        elif required:
            raise ConfigError(f"{where}: {key}.{param}: missing, kind {kind} needs it")
    source = _text(body, "source", where, f"{key}.source", None)
    title = _text(body, "title", where, f"{key}.title", "")
    return Rule(id=rule_id, kind=kind, source=source, title=title, **values)


def _text(table: dict[str, Any], name: str, where: str, key: str, default: str | None) -> str:
    """A string value, or the default; a missing value without a default is an error."""
    value = table.get(name, default)
    if value is None:
        raise ConfigError(f"{where}: {key}: missing, every rule cites its source")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key}: expected a string, got {value!r}")
    return value


def _convert(value: Any, type_: str, key: str) -> Any:
    """Check and convert one parameter; the message says what was expected."""
    if type_ == "duration":
        return parse_duration(value, key)
    if type_ == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}: expected a whole number of at least 1, got {value!r}")
        return value
    allowed = WEEKDAYS if type_ == "weekdays" else tuple(kind.value for kind in DayKind)
    if not isinstance(value, list) or any(item not in allowed for item in value):
        raise ConfigError(f"{key}: expected a list of {', '.join(allowed)}, got {value!r}")
    return tuple(value) if type_ == "weekdays" else tuple(DayKind(item) for item in value)


def parse_duration(value: Any, key: str) -> int:
    """'HH:MM' or 'HH:MM:SS' as seconds: the shape Bitrix24's own norms use, unambiguous about units."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f'{key}: expected a duration "HH:MM" or "HH:MM:SS", got {value!r}')
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds
