"""Read one value of an answer, or say in one line why not: a bad value costs only itself.

Each reader takes the raw value and a `Problems` that knows whose answer it is ("portal acme
user 5"), returns the typed value or None, and on None for a present value adds one line
naming the portal, the owner, the key and the value (shortened), which is also logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

_HMS = re.compile(r"^(\d{1,2}):([0-5]\d):([0-5]\d)$")
_SHOWN = 40
DAY = 86400


@dataclass
class Problems:
    """The one-line warnings of one answer; `whose` opens each line ("portal acme user 5")."""

    whose: str
    lines: list[str] = field(default_factory=list)

    def add(self, key: str, value: object, problem: str) -> None:
        line = f"{self.whose}: {key} {show(value)} {problem}"
        logger.warning("%s", line)
        self.lines.append(line)


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def hms(row: dict[str, Any], key: str, problems: Problems) -> int | None:
    """Seconds in an "HH:MM:SS" value below 24 hours (a time of day or a day's duration)."""
    value = row.get(key)
    if value is None or value == "":
        return None
    match = _HMS.match(value) if isinstance(value, str) else None
    seconds = None
    if match:
        hours, minutes, secs = (int(part) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds is None or seconds >= DAY:
        problems.add(key, value, "is not HH:MM:SS below 24:00:00")
        return None
    return seconds


def flag(row: dict[str, Any], key: str, problems: Problems) -> bool | None:
    """A yes/no: JSON true/false, "Y"/"N", 1/0 or "true"/"false"."""
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().upper() if isinstance(value, str | int) else None
    if text in {"Y", "1", "TRUE"}:
        return True
    if text in {"N", "0", "FALSE", ""}:
        return False
    problems.add(key, value, "is not a yes/no value")
    return None


def integer(
    row: dict[str, Any], key: str, problems: Problems, *, low: int = -1, high: int = 2**31 - 1
) -> int | None:
    """A whole number (or its digits as a string) in `low`..`high`."""
    value = row.get(key)
    if value is None or value == "":
        return None
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
        number = int(value)
    if number is None or not low <= number <= high:
        problems.add(key, value, f"is not a whole number in {low}..{high}")
        return None
    return number


def text(row: dict[str, Any], key: str, problems: Problems, *, length: int = 255) -> str | None:
    """A string, cut to `length` characters."""
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problems.add(key, value, "is not a string")
        return None
    if len(value) > length:
        problems.add(key, value, f"is longer than {length} characters: cut")
        return value[:length]
    return value
