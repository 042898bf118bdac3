"""A Bitrix24 portal on loopback: routes a request through the rules and faults to a method.

The pieces: `world` (who works when), `rules` (bucket, operating window, tokens, on one
clock), `faults`, `methods` (classic REST) and `rest3` (REST 3.0), and `handler` (HTTP).
The emulator counts what it answered, so tests and benchmarks can compare what was stored
with what was sent.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from poller.clock import SYSTEM_CLOCK, Clock
from poller.emulator import methods, rest3
from poller.emulator.faults import HOSTILE_KINDS, AnswerInstead, FaultDice, fault_answer
from poller.emulator.handler import EmulatorServer, handler_for
from poller.emulator.rules import PortalRules, TokenState
from poller.emulator.settings import EmulatorSettings, EmulatorStats
from poller.emulator.wire import Answer, Redirect, Trickle, envelope, json_body, lookup, merge_params
from poller.emulator.world import SimClock, World

logger = logging.getLogger(__name__)

_WEBHOOK_ROUTE = re.compile(r"^/rest/(api/)?(\d+)/([^/]+)/([A-Za-z0-9_.]+?)(?:\.json)?/?$")
_TOKEN_ROUTE = re.compile(r"^/rest/(api/)?([A-Za-z0-9_.]+?)(?:\.json)?/?$")
QUERY_LIMIT_EXCEEDED = envelope("QUERY_LIMIT_EXCEEDED", "Too many requests")


class Emulator:
    """The emulated portal. `bind()` then `serve_forever()`, or `start()` for a background thread.

    `clock` drives the rules; the world's time is `settings.start + speed × (clock's elapsed
    time)`, so with a `ManualClock` and speed 1 a test moves both.
    """

    def __init__(self, settings: EmulatorSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings or EmulatorSettings()
        self.clock = clock
        self.world = World(self.settings.users, SimClock(self.settings.start, self.settings.speed, clock))
        self.rules = PortalRules(self.settings, clock)
        self.stats = EmulatorStats()
        self.stopping = threading.Event()
        self._faults = FaultDice(self.settings)
        self._lock = threading.Lock()
        self._overrides: dict[int, Any] = {}
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving -------------------------------------------------------------------------

    def bind(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Listen on `host:port` (0 picks a free port); raises OSError when it is taken."""
        self.stopping.clear()
        self._server = EmulatorServer((host, port), handler_for(self))
        return self

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Serve in a daemon thread, binding first unless `bind()` was called."""
        server = self._server or self.bind(host, port)._server
        assert server is not None
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self, host: str | None = None, port: int = 0) -> None:
        """Serve in this thread until interrupted, binding first unless `bind()` was called."""
        server = self._server or self.bind(host or "127.0.0.1", port)._server
        assert server is not None
        try:
            server.serve_forever()
        finally:
            self.stopping.set()
            server.server_close()
            self._server = None

    def stop(self) -> None:
        """Stop serving; hung and trickling connections end too."""
        self.stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
            self._thread.join()
            self._thread = None
        server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "emulator is not bound"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def webhook_url(self) -> str:
        s = self.settings
        return f"{self.base_url}/rest/{s.webhook_user}/{s.webhook_secret}/"

    @property
    def oauth_url(self) -> str:
        return f"{self.base_url}/oauth/token/"

    # -- test controls -------------------------------------------------------------------

    def force_query_limit(self, requests: int) -> None:
        """Answer the next `requests` requests with QUERY_LIMIT_EXCEEDED (another app's storm)."""
        self.rules.force_query_limit(requests)

    def force_operating_limit(self, seconds: float, method: str = "timeman.status") -> None:
        """Block `method` for `seconds` of the clock, as if its time budget were spent."""
        self.rules.force_operating_limit(seconds, method)

    def override_result(self, user_id: int, result: Any) -> None:
        """Answer `user_id` with `result` from now on, whatever its shape (odd portal builds)."""
        with self._lock:
            self._overrides[user_id] = result

    def override_for(self, user_id: int) -> Any:
        with self._lock:
            return self._overrides.get(user_id)

    def set_hostile(self, user_id: int, *kinds: str) -> None:
        """Put hostile values (`faults.HOSTILE_KINDS`) into `user_id`'s answers; none: stop."""
        unknown = [k for k in kinds if k not in HOSTILE_KINDS]
        if unknown:
            expected = ", ".join(HOSTILE_KINDS)
            raise ValueError(f"unknown hostile kind {unknown[0]!r}; expected one of {expected}")
        with self._lock:
            self.settings.hostile = {**self.settings.hostile, user_id: tuple(kinds)}

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        self.rules.expire_tokens()

    # -- counters ------------------------------------------------------------------------

    def count_call(self, method: str) -> None:
        with self._lock:
            self.stats.calls[method] += 1

    def count_status(self, user_id: int) -> None:
        with self._lock:
            self.stats.statuses_answered[user_id] += 1

    def count_records(self, user_id: int) -> None:
        with self._lock:
            self.stats.records_answered[user_id] += 1

    def count_operating_limit(self) -> None:
        with self._lock:
            self.stats.operating_limit_exceeded += 1

    def count_http_status(self, status: int) -> None:
        with self._lock:
            self.stats.by_status[status] += 1

    def stats_summary(self) -> dict[str, Any]:
        """The counters as JSON, for benchmarks that run the emulator in another process."""
        with self._lock:
            stats = self.stats
            return {
                "requests": stats.requests,
                "by_status": {str(k): v for k, v in stats.by_status.items()},
                "query_limit_exceeded": stats.query_limit_exceeded,
                "operating_limit_exceeded": stats.operating_limit_exceeded,
                "faults": dict(stats.faults),
                "statuses_answered": sum(stats.statuses_answered.values()),
                "users_answered": len(stats.statuses_answered),
                "records_answered": sum(stats.records_answered.values()),
                "calls": dict(stats.calls),
                "token_refreshes": stats.token_refreshes,
            }

    # -- one request ---------------------------------------------------------------------

    def handle(
        self, path: str, query: str, body: bytes, content_type: str, authorization: str = ""
    ) -> Answer:
        """Answer one HTTP request: admission (bucket, faults), authentication, then the method."""
        if path == "/_emulator/stats":
            return 200, self.stats_summary()
        with self._lock:
            self.stats.requests += 1
        if path.rstrip("/") == "/oauth/token":
            return self._oauth(dict(parse_qsl(query)))
        if self.settings.moved_to:
            return 302, Redirect(f"{self.settings.moved_to.rstrip('/')}{path}")
        if not self.rules.admit():
            with self._lock:
                self.stats.query_limit_exceeded += 1
            return 503, QUERY_LIMIT_EXCEEDED
        fault = self._faults.roll()
        if fault is not None:
            with self._lock:
                self.stats.faults[fault] += 1
            replaced = fault_answer(fault)
            if replaced is not None:
                return replaced
            if fault == "slow":
                self.stopping.wait(self.settings.slow_seconds)
        started = self.clock.time()
        try:
            status, payload, method = self._route(path, query, body, content_type, authorization)
        except AnswerInstead as instead:
            return instead.answer
        if status == 200 and isinstance(payload, dict):
            payload["time"] = self.rules.time_block(method, started)
        if fault == "trickle":
            data = json.dumps(payload).encode()
            return status, Trickle(data, self.settings.trickle_length, self.settings.trickle_interval)
        return status, payload

    def _route(
        self, path: str, query: str, body: bytes, content_type: str, authorization: str
    ) -> tuple[int, Any, str]:
        """Authenticate, then call the classic or the REST 3.0 method; returns the method too."""
        webhook = _WEBHOOK_ROUTE.match(path)
        token = None if webhook else _TOKEN_ROUTE.match(path)
        if webhook is None and token is None:
            return 404, methods.NOT_FOUND, ""
        v3 = bool((webhook or token).group(1))  # type: ignore[union-attr]
        if v3 and not self.settings.rest_v3:
            return 404, methods.NOT_FOUND, ""
        decoded = json_body(body) if v3 else None
        params = merge_params(query, body, content_type) if not v3 else decoded
        if webhook is not None:
            user, secret, method = int(webhook.group(2)), webhook.group(3), webhook.group(4).lower()
            if user != self.settings.webhook_user or secret != self.settings.webhook_secret:
                return 401, envelope("NO_AUTH_FOUND", "Wrong authorization data"), method
        else:
            assert token is not None
            method = token.group(2).lower()
            denied = self._check_token(_auth_token(params, query, authorization))
            if denied is not None:
                return *denied, method
        if not v3:
            status, payload = methods.call(self, method, params or {})
        elif method == "batch":
            status, payload = rest3.batch(self, decoded)
        else:
            status, payload = rest3.call(self, method, decoded)
        return status, payload, method

    def _check_token(self, token: Any) -> tuple[int, Any] | None:
        state = self.rules.token_state(token)
        if state is TokenState.INVALID:
            return 401, envelope("invalid_token", "The access token provided is invalid.")
        if state is TokenState.EXPIRED:
            return 401, envelope("expired_token", "The access token provided has expired.")
        return None

    def _oauth(self, params: dict[str, str]) -> Answer:
        s = self.settings
        if params.get("grant_type") != "refresh_token":
            return 400, envelope("unsupported_grant_type", "Only refresh_token is emulated")
        if params.get("client_id") != s.client_id or params.get("client_secret") != s.client_secret:
            return 401, envelope("invalid_client", "Client authentication failed")
        pair = self.rules.refresh(params.get("refresh_token", ""))
        if pair is None:
            return 400, envelope("invalid_grant", "Invalid refresh token")
        with self._lock:
            self.stats.token_refreshes += 1
        host = urlsplit(self.base_url).netloc
        return 200, {
            "access_token": pair[0],
            "refresh_token": pair[1],
            "expires_in": int(s.token_lifetime),
            "expires": int(self.clock.time() + s.token_lifetime),
            "scope": "timeman,user,department" if s.department_scope else "timeman,user",
            "domain": host,
            "server_endpoint": f"{self.base_url}/oauth/rest/",
            "client_endpoint": f"{self.base_url}/rest/",
            "member_id": "emulated-member",
            "user_id": s.webhook_user,
            "status": "L",
        }


def _auth_token(params: Any, query: str, authorization: str) -> Any:
    """The access token: `auth` in the body or the query string, or a Bearer header."""
    token = lookup(params, "auth") or dict(parse_qsl(query)).get("auth")
    if not token and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    return token
