"""A snapshot's raw answer as the JSON column of either database keeps it, written fast.

Kept apart from the write of snapshots (storage.snapshots) and used by the records too
(storage.records): what an answer may hold that a database refuses, and the usual answer's
quick way to its JSON text.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from poller.models import snapshots_table
from poller.storage.driver_values import Convert, json_text

_RAW_DEPTH = 32  # a timeman.status result is flat; deeper nesting is hostile
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SCALARS = {str, int, bool, float, type(None)}
_RAW_CONVERSIONS: dict[tuple[str, Any], Convert] = {}


def storable_raw(value: Any, depth: int = 0) -> Any:
    """`value` as the JSON column of either database keeps it and every query can read it.

    Kept as it came, except: NUL and lone UTF-16 surrogates become their six-character escape
    as text (`\\u0000`: PostgreSQL text cannot hold NUL, `->>` fails on it, jsonb refuses it;
    no encoding takes a lone surrogate), NaN and infinities become the strings "NaN",
    "Infinity", "-Infinity" (not JSON: PostgreSQL refuses the whole row), and anything nested
    deeper than 32 levels becomes the string "<nested too deep>".
    """
    if depth == 0 and type(value) is dict and _plain(value):
        return value  # the usual answer: flat, finite, clean text; kept as it is
    if isinstance(value, str):
        return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict | list) and depth >= _RAW_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {storable_raw(key): storable_raw(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [storable_raw(item, depth + 1) for item in value]
    return value


def raw_conversion(dialect: Any) -> Convert:
    """How a snapshot's raw answer becomes the driver's value of the `raw` column on `dialect`:
    a JSON text of storable_raw(raw), the same document SQLAlchemy would store.

    The usual answer (a flat object of scalars) is encoded by orjson, some eight times faster
    than the json module (the largest single cost of writing a snapshot). orjson refuses a key
    that is not text, a lone UTF-16 surrogate and an integer beyond 64 bits, writes NUL as
    `\\u0000` and NaN or an infinity as null: a text with NUL, or with more nulls than the answer
    has None values, goes the slow way too (storable_raw, then SQLAlchemy's own serializer), as
    does an answer that is not a flat object of JSON's own scalars (orjson would write a date, a
    UUID or an enum that SQLAlchemy's serializer refuses). Found once per dialect (the statement
    is cached with it).
    """
    key = (dialect.name, dialect._json_serializer)
    if key not in _RAW_CONVERSIONS:
        dumps = json_text(dialect)
        process: Convert = dumps or snapshots_table.c.raw.type._cached_bind_processor(dialect) or json.dumps

        def slow(value: Any) -> Any:
            return process(storable_raw(value))

        def convert(value: Any) -> Any:
            if dumps is not None and type(value) is dict:
                kinds = set(map(type, value.values()))
                if kinds <= _SCALARS:
                    try:
                        text = orjson.dumps(value).decode()
                    except orjson.JSONEncodeError:
                        return slow(value)
                    if "\\u0000" not in text and (  # a NaN is written as null: only a float can be one
                        float not in kinds or text.count("null") == [*value.values()].count(None)
                    ):
                        return text
            return slow(value)

        _RAW_CONVERSIONS[key] = convert
    return _RAW_CONVERSIONS[key]


def _plain(item: dict[Any, Any]) -> bool:
    """Whether `item` is a flat object that storable_raw would keep unchanged (checked at C speed)."""
    values = item.values()
    kinds = set(map(type, values))
    if not kinds <= _SCALARS or not set(map(type, item)) <= {str}:
        return False
    if float in kinds and not all(math.isfinite(value) for value in values if type(value) is float):
        return False
    texts = "".join(item) + "".join([value for value in values if type(value) is str])
    return _UNSTORABLE.search(texts) is None
