"""From a request path to a method: webhook or token authentication, classic REST or REST 3.0.

- `/rest/{user}/{secret}/{method}` and `/rest/{method}` (token in `auth`): classic methods,
  parameters from the query string and a JSON or form body;
- `/rest/api/{user}/{secret}/{method}` and `/rest/api/{method}`: REST 3.0, JSON body only.
  Its token is `auth` in the JSON object body (the documented way) or an `Authorization:
  Bearer` header (what Bitrix24's JS SDK sends for the REST 3.0 batch, whose body is a bare
  array); `?auth=` in the query string is refused here, stricter than some portals, so the
  poller never leans on a token in a URL (where proxies and access logs keep it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from poller.emulator import methods, rest3
from poller.emulator.rules import TokenState
from poller.emulator.wire import envelope, json_body, lookup, merge_params

if TYPE_CHECKING:
    from poller.emulator.server import Emulator

_WEBHOOK = re.compile(r"^/rest/(api/)?(\d+)/([^/]+)/([A-Za-z0-9_.]+?)(?:\.json)?/?$")
_TOKEN = re.compile(r"^/rest/(api/)?([A-Za-z0-9_.]+?)(?:\.json)?/?$")


def route(
    emulator: Emulator, path: str, query: str, body: bytes, content_type: str, authorization: str
) -> tuple[int, Any, str]:
    """Authenticate, then call the method; returns the status, the body and the method's name."""
    s = emulator.settings
    webhook = _WEBHOOK.match(path)
    token = None if webhook else _TOKEN.match(path)
    matched = webhook or token
    if matched is None:
        return 404, methods.NOT_FOUND, ""
    v3 = bool(matched.group(1))
    if v3 and not s.rest_v3:
        return 404, methods.NOT_FOUND, ""
    decoded = json_body(body) if v3 else None
    params = decoded if v3 else merge_params(query, body, content_type)
    if webhook is not None:
        user, secret, method = int(webhook.group(2)), webhook.group(3), webhook.group(4).lower()
        if user != s.webhook_user or secret != s.webhook_secret:
            return 401, envelope("NO_AUTH_FOUND", "Wrong authorization data"), method
    else:
        method = matched.group(2).lower()
        token, placement = _auth_token(
            params if v3 else merge_params("", body, content_type), query, authorization, v3
        )
        emulator.stats.add_auth(placement)
        denied = _check_token(emulator, token)
        if denied is not None:
            return *denied, method
    emulator.gate.wait_for(f"api/{method}" if v3 else method)
    if not v3:
        status, payload = methods.call(emulator, method, params or {})
    elif method == "batch":
        status, payload = rest3.batch(emulator, decoded)
    else:
        status, payload = rest3.call(emulator, method, decoded)
    return status, payload, method


def _check_token(emulator: Emulator, token: Any) -> tuple[int, Any] | None:
    state = emulator.rules.token_state(token)
    if state is TokenState.INVALID:
        return 401, envelope("invalid_token", "The access token provided is invalid.")
    if state is TokenState.EXPIRED:
        return 401, envelope("expired_token", "The access token provided has expired.")
    return None


def _auth_token(body_params: Any, query: str, authorization: str, v3: bool) -> tuple[Any, str]:
    """The access token and where it was found: "header", "body", "query" or "none".

    A Bearer header comes first (portals prefer it); then `auth` in the body; classic REST
    also reads the query string, REST 3.0 does not.
    """
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip(), "header"
    token = lookup(body_params, "auth")
    if token:
        return token, "body"
    token = dict(parse_qsl(query)).get("auth")
    if token:
        return (None, "ignored query") if v3 else (token, "query")
    return None, "none"
