"""How a value becomes the driver's parameter, fast: the conversions storage.bulk and
storage.keyed generate per statement.

Each column's conversion is chosen once: SQLAlchemy's own bind processor, or a shorter way that
gives the same value (a UTC instant's text on SQLite, kept for the instants a cycle repeats; a
date's; a JSON object's text; a float for an integer column on PostgreSQL made whole as the
server would). A row's conversions are one generated function (row_converter). Values stored
are the same as through SQLAlchemy: tests/test_bulk.py and tests/test_instant_texts.py compare them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, Integer

from poller.models import UTCDateTime

Convert = Callable[[Any], Any]
_DUMPS = json.JSONEncoder().encode  # what json.dumps uses with its default arguments


def row_converter(converters: Sequence[Convert | None], *, none_as_is: bool = False) -> Convert | None:
    """One function that converts a row's tuple column by column (None: the row as it is);
    with `none_as_is`, a None value is not converted.

    Generated once per statement (a tuple display of `c3(row[3])` and `row[4]`): a loop over
    the columns would cost more than the conversions themselves. A conversion made by _passing
    is not called for a value of the types it lets through, one with a `known` lookup (the
    texts of instants and dates) not for a value it knows nor for None, which it must convert
    to None.
    """
    if all(convert is None for convert in converters):
        return None
    names: dict[str, Any] = {}
    items = []
    for index, convert in enumerate(converters):
        value = f"row[{index}]"
        if convert is None:
            items.append(value)
            continue
        names[f"c{index}"] = convert
        if none_as_is:
            items.append(f"(None if {value} is None else c{index}({value}))")
        elif hasattr(convert, "passes"):
            names[f"p{index}"] = convert.passes
            items.append(f"({value} if {value}.__class__ in p{index} else c{index}({value}))")
        elif hasattr(convert, "known"):  # a value converted before: a dict lookup, no call; None
            names[f"k{index}"] = convert.known  # (which converts to None): no call either
            items.append(f"(k{index}({value}) or (None if {value} is None else c{index}({value})))")
        else:
            items.append(f"c{index}({value})")
    made: Convert = eval(f"lambda row: ({', '.join(items)},)", names)  # built from indexes only
    return made


def converter(column_type: Any, dialect_name: str, dialect: Any) -> Convert | None:
    """How a value of `column_type` becomes the driver's parameter (None: as it is).

    SQLAlchemy's own processor, except where a shorter way gives the same value: a UTC instant;
    a JSON object, as the text SQLAlchemy's serializer makes of it (where the PostgreSQL
    dialect would wrap it for psycopg to serialize, which both COPY and a parameter take as the
    same text); a date on SQLite, as its ISO text. On PostgreSQL a float for an integer column
    is rounded as the server rounds a float parameter (half to even), so that COPY, which would
    refuse its text, stores what an executemany stores. A bool or a float on SQLite goes as it is.
    """
    if isinstance(column_type, UTCDateTime):
        return instant_parameter(dialect_name)
    if dialect_name == "postgresql" and isinstance(column_type, Integer):
        return _whole
    process: Convert | None = column_type._cached_bind_processor(dialect)  # Float on SQLite: float()
    if process is None:
        return None
    if isinstance(column_type, JSON):
        return _json_objects(dialect._json_serializer or json.dumps, process)
    if dialect_name == "sqlite" and isinstance(column_type, Date):
        return _iso_dates(process)
    if dialect_name == "sqlite" and isinstance(column_type, Float):
        return _passing((float, type(None)), process)
    if dialect_name == "sqlite" and isinstance(column_type, Boolean):
        return _passing((bool, type(None)), process)  # any other value: refused by the processor
    return process


def json_text(dialect: Any) -> Convert | None:
    """How a JSON value becomes the text SQLAlchemy's JSON type stores on `dialect`, when that
    is json.dumps (None: the dialect serializes otherwise)."""
    return _DUMPS if dialect._json_serializer in (None, json.dumps) else None


def _json_objects(serialize: Convert, process: Convert) -> Convert:
    dumps = _DUMPS if serialize is json.dumps else serialize  # json.dumps less its keyword checks

    def convert(value: Any) -> Any:
        return dumps(value) if type(value) is dict else process(value)

    return convert


def _whole(value: Any) -> Any:
    """A float as the integer PostgreSQL casts it to (NaN and infinities refused: ValueError,
    OverflowError); anything else as it is."""
    return round(value) if type(value) is float else value


def _passing(kinds: tuple[type, ...], process: Convert) -> Convert:
    """`process`, but a value of exactly one of `kinds` goes as it is: a value the driver stores
    as the processor would (a bool as 1 or 0, a float). row_converter reads `passes` and makes
    no call at all for those."""
    passes = frozenset(kinds)

    def convert(value: Any) -> Any:
        return value if value.__class__ in passes else process(value)

    convert.passes = passes  # type: ignore[attr-defined]
    return convert


_DATE_TEXTS: dict[date, str] = {}  # a write's rows share a handful of dates: their texts, kept
_DATES_KEPT = 4096


def _iso_dates(process: Convert) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not date:
            return process(value)
        if len(_DATE_TEXTS) >= _DATES_KEPT:
            _DATE_TEXTS.clear()
        text = _DATE_TEXTS[value] = value.isoformat()
        return text

    convert.known = _DATE_TEXTS.get  # type: ignore[attr-defined]  # see row_converter
    return convert


def instant_parameter(dialect_name: str) -> Convert:
    """How a UTC instant becomes the driver's parameter on `dialect_name`."""
    return _sqlite_instant if dialect_name == "sqlite" else _aware_instant


def _aware_instant(value: datetime | None) -> datetime | None:
    """PostgreSQL (timestamptz) takes any aware datetime as the instant it is (checked in place:
    every instant of every row passes here)."""
    if value is not None and (value.__class__ is not datetime or value.tzinfo is None) and _naive(value):
        raise ValueError("naive datetime given where a UTC instant is required")
    return value


def _naive(value: Any) -> bool:
    """Whether `value` is a naive datetime; TypeError for what is no datetime at all (refused as
    SQLAlchemy refuses it, a value the column cannot take)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{type(value).__name__} given where a UTC instant is required")
    return value.tzinfo is None


# The texts of the instants written lately. A write repeats its instants (polled_at; a start in
# its snapshot and its day) and a cycle repeats the last one's (an open day's start, poll after
# poll): kept, each costs a lookup instead of a formatting. Emptied when full: 32,768 cover the
# instants of a cycle of some 25,000 users, in some 6 MB.
_INSTANT_TEXTS: dict[datetime, str] = {}
_INSTANTS_KEPT = 1 << 15


def _sqlite_instant(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DATETIME stores for a UTC instant (naive UTC, microseconds)."""
    if value is None:
        return None
    text = _INSTANT_TEXTS.get(value)
    if text is None:
        if _naive(value):
            raise ValueError("naive datetime given where a UTC instant is required")
        text = value.astimezone(UTC).isoformat(" ", "microseconds")[:26]
        if type(value.tzinfo) is timezone:  # a fixed offset: equal keys are one instant (a zone's
            if len(_INSTANT_TEXTS) >= _INSTANTS_KEPT:  # repeated hour compares equal to its first)
                _INSTANT_TEXTS.clear()
            _INSTANT_TEXTS[value] = text
    return text


_sqlite_instant.known = _INSTANT_TEXTS.get  # type: ignore[attr-defined]  # see row_converter
