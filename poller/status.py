"""Turn a `timeman.status` result (or any row of declared fields) into typed values that fit.

A value of the wrong type, or outside its sane range (poller.fields), becomes None with a
warning; text is cleaned and cut to its column. A wrong number in a payroll report is worse
than a missing one, and the raw JSON is stored beside the values anyway. `parse_fields`
applies the same rules to `user.get`, `department.get` and `timeman.record.list` rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from poller.fields import FIRST_YEAR, LAST_YEAR, MAX_TZ_OFFSET, STATUS_COLUMNS, STATUS_FIELDS, StatusField

KNOWN_STATUSES = frozenset({"OPENED", "CLOSED", "PAUSED", "EXPIRED"})
_HMS = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_INTEGER = re.compile(r"[+-]?\d+")
# NUL and the other C0/C1 control characters, and halves of UTF-16 pairs (no encoding takes them).
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SHOWN = 40  # characters of a value a warning shows

Value = str | int | float | bool | datetime | date | list[int] | None


@dataclass(frozen=True)
class ParsedStatus:
    """One user's `timeman.status` result, typed; timestamps are UTC instants.

    `values` holds every column of fields.STATUS_FIELDS, in that order; read one as an
    attribute too (`parsed.time_start`).
    """

    values: Mapping[str, Value]
    raw: dict[str, Any]
    warnings: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Value:
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def parse_status(result: Any) -> ParsedStatus:
    """Parse one `result` object; what cannot be kept is None (or cut) and named in `warnings`."""
    if not isinstance(result, dict):
        warning = f"result is {type(result).__name__}, not an object"
        return ParsedStatus(dict.fromkeys(STATUS_COLUMNS), {"_unparsed": result}, (warning,))
    parsed, warnings = parse_fields(STATUS_FIELDS, result)
    _check_status(parsed, result.get("STATUS"), warnings)
    time_start, tz_offset = parsed["time_start"], parsed["tz_offset"]
    work_date = local_date(
        time_start if isinstance(time_start, datetime) else None,
        start_offset(result.get("TIME_START"), tz_offset if isinstance(tz_offset, int) else None),
    )
    values = {
        spec.column: work_date if spec.kind == "date-derived" else parsed[spec.column]
        for spec in STATUS_FIELDS
    }
    return ParsedStatus(values, result, tuple(warnings))


def parse_fields(specs: Sequence[StatusField], row: Mapping[str, Any]) -> tuple[dict[str, Value], list[str]]:
    """Parse the fields `specs` of one answer row: {column: value} and the warnings.

    A key with a dot reads inside an object ("state.status"); derived fields (no key) are
    left to the caller.
    """
    warnings: list[str] = []
    values = {
        spec.column: _PARSERS[spec.kind](spec, _lookup(row, spec.key), warnings)
        for spec in specs
        if spec.key is not None
    }
    return values, warnings


def _lookup(row: Mapping[str, Any], key: str) -> object:
    """`row[key]`, reading "a.b" as row["a"]["b"]; where "a" is no object, its value is parsed instead."""
    head, _, rest = key.partition(".")
    value = row.get(head)
    return value.get(rest) if rest and isinstance(value, dict) else value


def start_offset(raw_start: object, tz_offset: int | None) -> int | None:
    """The UTC offset, in seconds, a day's local date is taken at: the one its start was written in.

    TZ_OFFSET is the user's offset when the answer was made: on a day that began before a DST
    change it is not the start's (a start at 2026-10-25 00:30+02:00 in Berlin, answered with
    TZ_OFFSET 3600, is a day of the 25th, not the 24th). Older builds write the start in UTC
    (+00:00) whatever the user's zone: there, and where the start has no readable offset,
    TZ_OFFSET is the better guess from the answer alone. Where the directory names the user's
    zone, storage takes the date in it instead (poller.storage.local_dates): the rule is zone,
    else the start's own offset when not zero, else TZ_OFFSET.
    """
    own = written_offset(raw_start)
    if own is None or (own == 0 and tz_offset):
        return tz_offset
    return own


def written_offset(raw: object) -> int | None:
    """The UTC offset an ISO 8601 timestamp was written in, in seconds; None when it has none
    or it is not within ±14 h."""
    if not isinstance(raw, str):
        return None
    try:
        offset = datetime.fromisoformat(raw).utcoffset()
    except ValueError:
        return None
    if offset is None or abs(offset.total_seconds()) > MAX_TZ_OFFSET:
        return None
    return int(offset.total_seconds())


def local_date(instant: datetime | None, tz_offset: int | None) -> date | None:
    """The user's calendar date at `instant`: UTC plus TZ_OFFSET seconds (0 when unknown)."""
    if instant is None:
        return None
    try:
        return (instant.astimezone(UTC) + timedelta(seconds=tz_offset or 0)).date()
    except OverflowError:
        return None


def parse_hms(text: str) -> int:
    """Seconds in "HH:MM:SS"; hours are not capped at 24."""
    match = _HMS.match(text)
    if not match:
        raise ValueError(f"{_show(text)} is not HH:MM:SS")
    hours, minutes, seconds = (int(part) for part in match.groups())  # ValueError past 4300 digits
    return hours * 3600 + minutes * 60 + seconds


def _check_status(parsed: dict[str, Value], raw_status: object, warnings: list[str]) -> None:
    status = parsed["status"]
    if not status:
        parsed["status"] = None
        if raw_status is None or isinstance(raw_status, str):  # _text named any other type
            warnings.append(f"STATUS {_show(raw_status)} is not a status string")
    elif status not in KNOWN_STATUSES:
        warnings.append(f"STATUS {_show(status)} is not one of {', '.join(sorted(KNOWN_STATUSES))}")


def _text(spec: StatusField, value: object, warnings: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        warnings.append(f"{spec.key} {_show(value)} is not a string")
        return None
    text = _UNSTORABLE.sub("", value)
    if text != value:
        warnings.append(f"{spec.key} {_show(value)}: control characters removed")
    if spec.length is not None and len(text) > spec.length:
        warnings.append(f"{spec.key} {_show(text)} is longer than {spec.length} characters: cut")
        text = text[: spec.length]
    return text


def _timestamp(spec: StatusField, value: object, warnings: list[str]) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = None
    if isinstance(value, str):
        with suppress(ValueError):
            parsed = datetime.fromisoformat(value)
    if parsed is None or parsed.tzinfo is None:
        warnings.append(f"{spec.key} {_show(value)} is not a timestamp with a UTC offset")
        return None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        warnings.append(f"{spec.key} {_show(value)} is outside the years {FIRST_YEAR}..{LAST_YEAR}")
        return None
    return parsed.astimezone(UTC)


def _hms(spec: StatusField, value: object, warnings: list[str]) -> int | None:
    if value is None:
        return None
    seconds = None
    if isinstance(value, str):
        with suppress(ValueError):
            seconds = parse_hms(value)
    if seconds is None:
        warnings.append(f"{spec.key} {_show(value)} is not HH:MM:SS")
        return None
    return seconds if _in_range(spec, seconds, value, warnings) else None


def _integer(spec: StatusField, value: object, warnings: list[str]) -> int | None:
    if value is None:
        return None
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        with suppress(ValueError):  # more than 4300 digits
            number = int(value)
    if number is None:
        warnings.append(f"{spec.key} {_show(value)} is not an integer")
        return None
    return number if _in_range(spec, number, value, warnings) else None


def _float(spec: StatusField, value: object, warnings: list[str]) -> float | None:
    if value is None:
        return None
    number = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            pass
        except OverflowError:  # an int past any float: out of range, not unreadable
            number = math.inf
    if number is None:
        warnings.append(f"{spec.key} {_show(value)} is not a number")
        return None
    return number if _in_range(spec, number, value, warnings) else None


def _boolean(spec: StatusField, value: object, warnings: list[str]) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in ("Y", "N"):
        return value == "Y"
    warnings.append(f"{spec.key} {_show(value)} is not a boolean")
    return None


def _integer_list(spec: StatusField, value: object, warnings: list[str]) -> list[int] | None:
    """A list of integers; `false`, Bitrix24's empty user field, is the empty list."""
    if value is None:
        return None
    if value is False:
        return []
    if not isinstance(value, list):
        warnings.append(f"{spec.key} {_show(value)} is not a list")
        return None
    items = [_integer(spec, item, warnings) for item in value]
    if any(item is None for item in items):
        return None
    return [item for item in items if item is not None]


def _in_range(spec: StatusField, number: float, value: object, warnings: list[str]) -> bool:
    """Whether `number` is finite and within the field's sane range; warn when not."""
    low = -math.inf if spec.low is None else spec.low
    high = math.inf if spec.high is None else spec.high
    if math.isfinite(number) and low <= number <= high:
        return True
    warnings.append(f"{spec.key} {_show(value)} is outside {low:.10g}..{high:.10g}")
    return False


def _show(value: object) -> str:
    """The start of a value's repr, for a warning line."""
    try:
        shown = repr(value)
    except ValueError:  # an int of more than 4300 digits
        return f"<{type(value).__name__} too long to show>"
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 1] + "…"


_PARSERS: dict[str, Callable[[StatusField, object, list[str]], Value]] = {
    "text": _text,
    "timestamp": _timestamp,
    "hms-duration": _hms,
    "int": _integer,
    "float": _float,
    "bool": _boolean,
    "int-list": _integer_list,
}
