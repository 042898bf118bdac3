"""What crosses the wire: answer bodies, both error envelopes, and request parameters.

A handler of the emulator returns an `Answer`: an HTTP status and a body, which is a JSON
object, an HTML page (str), or one of the special bodies below that the HTTP layer plays out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

_BRACKETS = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True)
class Raw:
    """An answer body sent exactly as given."""

    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Redirect:
    """A 302 answer: the portal moved to `location`."""

    location: str


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True)
class Hang:
    """Keep the connection open and never answer (until the emulator stops)."""


@dataclass(frozen=True)
class Trickle:
    """Announce `length` bytes, then send `body` padded with spaces one byte per `interval` s."""

    body: bytes
    length: int
    interval: float


Body = dict[str, Any] | list[Any] | str | Raw | Redirect | Drop | Hang | Trickle
Answer = tuple[int, Body]


def envelope(code: str, description: str) -> dict[str, Any]:
    """The classic error envelope: `{"error": "CODE", "error_description": "text"}`."""
    return {"error": code, "error_description": description}


def v3_error(code: str, message: str) -> dict[str, Any]:
    """REST 3.0's error envelope: an object under `error`."""
    return {"error": {"code": code, "message": message, "validation": []}}


def lookup(params: Any, name: str) -> Any:
    """Bitrix24 reads parameter names case-insensitively."""
    if not isinstance(params, dict):
        return None
    wanted = name.lower()
    for key, value in params.items():
        if str(key).lower() == wanted:
            return value
    return None


def truthy(value: Any) -> bool:
    return value is True or str(value).upper() in {"Y", "TRUE", "1"}


def as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def json_body(body: bytes) -> Any:
    """The decoded JSON body, or None when there is none or it is not JSON."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def merge_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Query string and body (JSON, or PHP-style form fields like `cmd[u5]=...`) merged."""
    params: dict[str, Any] = {}
    put_form_fields(params, parse_qsl(query, keep_blank_values=True))
    if body:
        if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
            decoded = json_body(body)
            if isinstance(decoded, dict):
                params.update(decoded)
        else:
            put_form_fields(params, parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def put_form_fields(params: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    """Nest `a[b][c]=v` fields the way PHP does."""
    for name, value in pairs:
        head, _, _ = name.partition("[")
        keys = [head, *_BRACKETS.findall(name[len(head) :])]
        target = params
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                break
        else:
            target[keys[-1]] = value
