"""Turn a `timeman.status` result into typed values, tolerating what real portals send.

A value of the wrong type becomes None with a warning: a wrong number in a payroll report
is worse than a missing one, and the raw JSON is stored beside it anyway.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)

KNOWN_STATUSES = frozenset({"OPENED", "CLOSED", "PAUSED", "EXPIRED"})
_HMS = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")


@dataclass(frozen=True)
class ParsedStatus:
    """One user's `timeman.status` result, typed; timestamps are UTC instants."""

    status: str | None
    time_start: datetime | None
    time_finish: datetime | None
    time_finish_default: datetime | None
    work_date: date | None
    duration_seconds: int | None
    time_leaks_seconds: int | None
    active: bool | None
    tz_offset: int | None
    ip_open: str | None
    ip_close: str | None
    lat_open: float | None
    lon_open: float | None
    lat_close: float | None
    lon_close: float | None
    raw: dict[str, Any]
    warnings: tuple[str, ...] = field(default=())


def parse_status(result: Any) -> ParsedStatus:
    """Parse one `result` object; what cannot be parsed is None and named in `warnings`."""
    warnings: list[str] = []
    if not isinstance(result, dict):
        return _empty({"_unparsed": result}, f"result is {type(result).__name__}, not an object")
    status = result.get("STATUS")
    if not isinstance(status, str) or not status:
        warnings.append(f"STATUS {status!r} is not a status string")
        status = None
    elif status not in KNOWN_STATUSES:
        warnings.append(f"STATUS {status!r} is not one of {', '.join(sorted(KNOWN_STATUSES))}")
    time_start = _timestamp(result, "TIME_START", warnings)
    tz_offset = _integer(result, "TZ_OFFSET", warnings)
    return ParsedStatus(
        status=status,
        time_start=time_start,
        time_finish=_timestamp(result, "TIME_FINISH", warnings),
        time_finish_default=_timestamp(result, "TIME_FINISH_DEFAULT", warnings),
        work_date=local_date(time_start, tz_offset),
        duration_seconds=_hms(result, "DURATION", warnings),
        time_leaks_seconds=_hms(result, "TIME_LEAKS", warnings),
        active=_boolean(result, "ACTIVE", warnings),
        tz_offset=tz_offset,
        ip_open=_text(result, "IP_OPEN", warnings),
        ip_close=_text(result, "IP_CLOSE", warnings),
        lat_open=_float(result, "LAT_OPEN", warnings),
        lon_open=_float(result, "LON_OPEN", warnings),
        lat_close=_float(result, "LAT_CLOSE", warnings),
        lon_close=_float(result, "LON_CLOSE", warnings),
        raw=result,
        warnings=tuple(warnings),
    )


def local_date(instant: datetime | None, tz_offset: int | None) -> date | None:
    """The user's calendar date at `instant`: UTC plus TZ_OFFSET seconds (0 when unknown)."""
    if instant is None:
        return None
    return (instant.astimezone(UTC) + timedelta(seconds=tz_offset or 0)).date()


def parse_hms(text: str) -> int:
    """Seconds in "HH:MM:SS"; hours are not capped at 24."""
    match = _HMS.match(text)
    if not match:
        raise ValueError(f"{text!r} is not HH:MM:SS")
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _empty(raw: dict[str, Any], warning: str) -> ParsedStatus:
    return ParsedStatus(
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        raw,
        (warning,),
    )


def _timestamp(result: dict[str, Any], key: str, warnings: list[str]) -> datetime | None:
    value = result.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    warnings.append(f"{key} {value!r} is not a timestamp with a UTC offset")
    return None


def _hms(result: dict[str, Any], key: str, warnings: list[str]) -> int | None:
    value = result.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_hms(value)
        except ValueError:
            pass
    warnings.append(f"{key} {value!r} is not HH:MM:SS")
    return None


def _integer(result: dict[str, Any], key: str, warnings: list[str]) -> int | None:
    value = result.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    warnings.append(f"{key} {value!r} is not an integer")
    return None


def _float(result: dict[str, Any], key: str, warnings: list[str]) -> float | None:
    value = result.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    warnings.append(f"{key} {value!r} is not a number")
    return None


def _boolean(result: dict[str, Any], key: str, warnings: list[str]) -> bool | None:
    value = result.get(key)
    if value is None or isinstance(value, bool):
        return value
    if value in ("Y", "N"):
        return value == "Y"
    warnings.append(f"{key} {value!r} is not a boolean")
    return None


def _text(result: dict[str, Any], key: str, warnings: list[str]) -> str | None:
    value = result.get(key)
    if value is None or isinstance(value, str):
        return value
    warnings.append(f"{key} {value!r} is not a string")
    return None
