"""The kinds of the keys that say what a portal's working time is judged by: schedules and holidays.

A portal's `schedule_ids`, its user or department to schedule map, its extra holidays and the
country (and subdivision) of the `holidays` package, which stands in when the portal's own
calendar has no holidays or cannot be read (no `calendar` scope).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from poller.errors import ConfigError

_COUNTRY = re.compile(r"[A-Z]{2}")
_SUBDIVISION = re.compile(r"[A-Z0-9]{1,3}")
SUBJECTS = ("users", "departments")


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class IdList:
    """A list of positive ids (schedules), without repeats."""

    text: str = "list of ids (positive integers)"

    def read(self, value: Any, key: str, base: Path | None) -> tuple[int, ...]:
        if not isinstance(value, list):
            raise ConfigError(f"config key {key}: expected a list of ids, got {value!r}")
        for entry in value:
            if not _positive(entry):
                raise ConfigError(f"config key {key}: {entry!r} is not an id (a positive integer)")
        return tuple(dict.fromkeys(value))


@dataclass(frozen=True)
class ScheduleMap:
    """Which schedule a user or a department works on: (id, schedule id) pairs per subject."""

    users: tuple[tuple[int, int], ...] = ()
    departments: tuple[tuple[int, int], ...] = ()

    def assignments(self) -> dict[tuple[str, int], int]:
        """The map as storage keeps it: ("user" | "department", id) -> schedule id."""
        found = {("user", subject): schedule for subject, schedule in self.users}
        found.update({("department", subject): schedule for subject, schedule in self.departments})
        return found

    def schedule_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(schedule for _, schedule in (*self.users, *self.departments)))


@dataclass(frozen=True)
class ScheduleMapKind:
    """`{ users = { "12" = 4 }, departments = { "3" = 1 } }`: ids (as keys) to schedule ids."""

    text: str = 'table of users and departments, each { "ID" = SCHEDULE_ID }'

    def read(self, value: Any, key: str, base: Path | None) -> ScheduleMap:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key}: expected a table with users and departments, got {value!r}")
        for name in value:
            if name not in SUBJECTS:
                raise ConfigError(
                    f"config key {key}: unknown key {name!r}; expected {' and/or '.join(SUBJECTS)}"
                )
        return ScheduleMap(*(self._pairs(value.get(name, {}), f"{key}.{name}") for name in SUBJECTS))

    @staticmethod
    def _pairs(table: Any, key: str) -> tuple[tuple[int, int], ...]:
        if not isinstance(table, dict):
            raise ConfigError(f'config key {key}: expected a table {{ "ID" = SCHEDULE_ID }}, got {table!r}')
        pairs = []
        for subject, schedule in table.items():
            if not subject.isdigit() or int(subject) < 1:
                raise ConfigError(f"config key {key}: {subject!r} is not an id (a positive integer)")
            if not _positive(schedule):
                raise ConfigError(f"config key {key}.{subject}: {schedule!r} is not a schedule id")
            pairs.append((int(subject), schedule))
        return tuple(sorted(pairs))


@dataclass(frozen=True)
class Dates:
    """A list of dates, as TOML dates (2026-12-24) or ISO strings ("2026-12-24")."""

    text: str = 'list of dates, e.g. ["2026-12-24"]'

    def read(self, value: Any, key: str, base: Path | None) -> tuple[date, ...]:
        if not isinstance(value, list):
            raise ConfigError(
                f'config key {key}: expected a list of dates like ["2026-12-24"], got {value!r}'
            )
        found = [_date(entry, key) for entry in value]
        return tuple(sorted(set(found)))


def _date(entry: Any, key: str) -> date:
    if isinstance(entry, date):
        return entry
    try:
        if isinstance(entry, str):
            return date.fromisoformat(entry)
    except ValueError:
        pass
    raise ConfigError(f"config key {key}: {entry!r} is not a date; expected YYYY-MM-DD")


@dataclass(frozen=True)
class Code:
    """A country (ISO 3166-1 alpha-2, "DE") or subdivision ("BY") code, upper case."""

    text: str
    pattern: re.Pattern[str]

    def read(self, value: Any, key: str, base: Path | None) -> str:
        if not isinstance(value, str) or not self.pattern.fullmatch(value.upper()):
            raise ConfigError(f"config key {key}: {value!r} is not a {self.text}")
        return value.upper()


COUNTRY = Code("country code (ISO 3166-1 alpha-2, e.g. DE)", _COUNTRY)
SUBDIVISION = Code("subdivision code (e.g. BY for Bavaria)", _SUBDIVISION)


def check_holidays_country(country: str | None, subdivision: str | None, where: str) -> None:
    """Whether the `holidays` package knows the country and subdivision; a ConfigError if not."""
    if subdivision is not None and country is None:
        raise ConfigError(f"config key {where}.holidays_subdivision: needs holidays_country")
    if country is None:
        return
    try:
        import holidays
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        raise ConfigError(
            f"config key {where}.holidays_country: the holidays package is not installed; "
            "pip install holidays"
        ) from None
    known = holidays.list_supported_countries()
    if country not in known:
        raise ConfigError(
            f"config key {where}.holidays_country: {country!r} is not a country the holidays package knows"
        )
    if subdivision is not None and subdivision not in known[country]:
        raise ConfigError(
            f"config key {where}.holidays_subdivision: {subdivision!r} is not a subdivision of {country}; "
            f"expected one of {', '.join(known[country])}"
        )
