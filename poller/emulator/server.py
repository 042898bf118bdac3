"""A Bitrix24 REST server for one portal: `timeman.status`, `batch`, `user.get` and OAuth.

It answers with the shapes and error envelopes of the reference page, enforces the leaky
bucket and the operating limit, and can inject faults. It counts what it answered, so tests
and benchmarks can compare what was stored with what was sent.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets as secrets_module
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from poller.emulator.world import SimClock, World

logger = logging.getLogger(__name__)

_WEBHOOK_ROUTE = re.compile(r"^/rest/(\d+)/([^/]+)/([A-Za-z0-9_.]+?)(?:\.json)?/?$")
_TOKEN_ROUTE = re.compile(r"^/rest/([A-Za-z0-9_.]+?)(?:\.json)?/?$")
_BRACKETS = re.compile(r"\[([^\]]*)\]")


@dataclass
class EmulatorSettings:
    """Every knob of the emulated portal; 0 for a rate or a share turns that feature off."""

    users: int = 25
    speed: float = 1.0
    start: datetime | None = None
    webhook_user: int = 1
    webhook_secret: str = field(default_factory=lambda: secrets_module.token_hex(8))
    access_token: str = field(default_factory=lambda: secrets_module.token_hex(16))
    refresh_token: str = field(default_factory=lambda: secrets_module.token_hex(16))
    client_id: str = "local.emulator"
    client_secret: str = field(default_factory=lambda: secrets_module.token_hex(12))
    token_lifetime: float = 3600.0
    admin: bool = True
    rate: float = 2.0
    burst: int = 50
    operating_limit: float = 480.0
    operating_cost: float = 0.01
    fault_500: float = 0.0
    fault_html: float = 0.0
    fault_drop: float = 0.0
    fault_slow: float = 0.0
    fault_truncated: float = 0.0
    fault_huge: float = 0.0
    slow_seconds: float = 2.0
    moved_to: str | None = None
    seed: int = 1


@dataclass
class EmulatorStats:
    """What the emulator received and answered."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    query_limit_exceeded: int = 0
    operating_limit_exceeded: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    statuses_answered: Counter[int] = field(default_factory=Counter)
    token_refreshes: int = 0


class Emulator:
    """The emulated portal; `start()` serves it over HTTP in a background thread."""

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        self.clock = SimClock(self.settings.start, self.settings.speed)
        self.world = World(self.settings.users, self.clock)
        self.stats = EmulatorStats()
        self._lock = threading.Lock()
        self._random = random.Random(self.settings.seed)
        self._bucket_level = 0.0
        self._bucket_updated = time.monotonic()
        self._forced_query_limits = 0
        self._blocked_until = 0.0
        self._operating: dict[str, dict[int, float]] = {}  # method -> minute -> seconds
        self._access_tokens = {self.settings.access_token: time.monotonic() + self.settings.token_lifetime}
        self._refresh_tokens = {self.settings.refresh_token}
        self._overrides: dict[int, Any] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving -------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Serve on `host:port` (0 picks a free port) in a daemon thread."""
        server = self._bind(host, port)
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self, host: str, port: int) -> None:
        """Serve on `host:port` in this thread until interrupted (the `emulator` command)."""
        self._bind(host, port).serve_forever()

    def _bind(self, host: str, port: int) -> ThreadingHTTPServer:
        handler = type("BoundHandler", (_Handler,), {"emulator": self})
        self._server = _Server((host, port), handler)
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "emulator is not started"
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
        with self._lock:
            self._forced_query_limits = requests

    def force_operating_limit(self, seconds: float) -> None:
        """Block `timeman.status` for `seconds`, as if its time budget were spent."""
        with self._lock:
            self._blocked_until = time.time() + seconds

    def override_result(self, user_id: int, result: Any) -> None:
        """Answer `user_id` with `result` from now on, whatever its shape (odd portal builds)."""
        with self._lock:
            self._overrides[user_id] = result

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        with self._lock:
            self._access_tokens = {token: 0.0 for token in self._access_tokens}

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
                "token_refreshes": stats.token_refreshes,
            }

    # -- request handling ----------------------------------------------------------------

    def handle(self, path: str, query: str, body: bytes, content_type: str) -> tuple[int, Any]:
        """Answer one HTTP request; returns (status, JSON object) or (status, "drop"|html str)."""
        started = time.time()
        if path == "/_emulator/stats":
            return 200, self.stats_summary()
        with self._lock:
            self.stats.requests += 1
        if path.rstrip("/") == "/oauth/token":
            return self._oauth(dict(parse_qsl(query)))
        if self.settings.moved_to:
            return 302, Redirect(f"{self.settings.moved_to.rstrip('/')}{path}")
        fault = self._admit()
        if fault is not None:
            return fault
        params = _merge_params(query, body, content_type)
        route = _WEBHOOK_ROUTE.match(path)
        if route:
            user, secret, method = int(route.group(1)), route.group(2), route.group(3)
            if user != self.settings.webhook_user or secret != self.settings.webhook_secret:
                return 401, _envelope("NO_AUTH_FOUND", "Wrong authorization data")
        else:
            route = _TOKEN_ROUTE.match(path)
            if not route:
                return 404, _envelope("ERROR_METHOD_NOT_FOUND", "Method not found!")
            method = route.group(1)
            denied = self._check_token(_lookup(params, "auth"))
            if denied is not None:
                return denied
        method = method.lower()
        status, payload = self._dispatch(method, params)
        if status == 200:
            if method != "timeman.status":
                self._spend(method, time.time() - started)
            payload["time"] = self._time_block(started, method)
        return status, payload

    def _admit(self) -> tuple[int, Any] | None:
        """Apply the leaky bucket and the injected faults to an arriving request."""
        s = self.settings
        with self._lock:
            if self._forced_query_limits > 0:
                self._forced_query_limits -= 1
                self.stats.query_limit_exceeded += 1
                return 503, _envelope("QUERY_LIMIT_EXCEEDED", "Too many requests")
            if s.rate > 0:
                now = time.monotonic()
                self._bucket_level = max(0.0, self._bucket_level - (now - self._bucket_updated) * s.rate)
                self._bucket_updated = now
                if self._bucket_level + 1 > s.burst:
                    self.stats.query_limit_exceeded += 1
                    return 503, _envelope("QUERY_LIMIT_EXCEEDED", "Too many requests")
                self._bucket_level += 1
            roll = self._random.random()
        for kind, share in (
            ("500", s.fault_500),
            ("html", s.fault_html),
            ("drop", s.fault_drop),
            ("slow", s.fault_slow),
            ("truncated", s.fault_truncated),
            ("huge", s.fault_huge),
        ):
            if roll < share:
                with self._lock:
                    self.stats.faults[kind] += 1
                if kind == "500":
                    return 500, _envelope("INTERNAL_SERVER_ERROR", "Internal server error")
                if kind == "html":
                    return 502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
                if kind == "drop":
                    return 0, "drop"
                if kind == "truncated":  # a proxy cut the answer short
                    return 200, Raw(b'{"result":{"result":{"u1":{"STATUS":"OPE', "application/json")
                if kind == "huge":  # 17 MB: more than any real answer
                    return 200, Raw(b'{"result": "' + b"x" * (17 * 1024 * 1024) + b'"}', "application/json")
                time.sleep(s.slow_seconds)
                return None
            roll -= share
        return None

    def _check_token(self, token: Any) -> tuple[int, Any] | None:
        with self._lock:
            expires = self._access_tokens.get(str(token)) if token else None
        if expires is None:
            return 401, _envelope("invalid_token", "The access token provided is invalid.")
        if expires <= time.monotonic():
            return 401, _envelope("expired_token", "The access token provided has expired.")
        return None

    def _dispatch(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "batch":
            return self._batch(params)
        if method == "user.get":
            return 200, self._user_get(params)
        if method == "timeman.status":
            error = self._operating_check()
            if error is not None:
                return error
            return self._timeman_status(params)
        return 404, _envelope("ERROR_METHOD_NOT_FOUND", "Method not found!")

    def _timeman_status(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raw_user = _lookup(params, "USER_ID")
        try:
            user_id = int(raw_user) if raw_user not in (None, "") else self.settings.webhook_user
        except (TypeError, ValueError):
            return 400, _envelope("", "User not found")
        if not self.world.exists(user_id):
            return 400, _envelope("", "User not found")
        if user_id != self.settings.webhook_user and not self.settings.admin:
            return 400, _envelope("", "User does not have access to managing other users work time")
        with self._lock:
            result = self._overrides.get(user_id)
        if result is None:
            result = self.world.status(user_id)
        with self._lock:
            self.stats.statuses_answered[user_id] += 1
        return 200, {"result": result}

    def _operating_check(self) -> tuple[int, dict[str, Any]] | None:
        """Refuse `timeman.status` once its server time in the last 10 minutes hits the limit."""
        now = time.time()
        with self._lock:
            spent = sum(self._minutes("timeman.status", now).values())
            limit = self.settings.operating_limit
            blocked = now < self._blocked_until or (limit > 0 and spent >= limit)
            if blocked:
                self.stats.operating_limit_exceeded += 1
        if blocked:
            return 429, _envelope("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.")
        self._spend("timeman.status", self.settings.operating_cost)
        return None

    def _spend(self, method: str, seconds: float) -> None:
        now = time.time()
        with self._lock:
            minutes = self._minutes(method, now)
            minutes[int(now // 60)] = minutes.get(int(now // 60), 0.0) + seconds

    def _minutes(self, method: str, now: float) -> dict[int, float]:
        """The method's per-minute server time, without minutes older than ten (lock held)."""
        minutes = self._operating.setdefault(method, {})
        for old in [m for m in minutes if m <= int(now // 60) - 10]:
            del minutes[old]
        return minutes

    def _batch(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        commands = _lookup(params, "cmd")
        if isinstance(commands, list):
            commands = {str(i): command for i, command in enumerate(commands)}
        if not isinstance(commands, dict):
            return 400, _envelope("INVALID_ARG_VALUE", "cmd is required")
        if len(commands) > 50:
            return 400, _envelope("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        for key, command in commands.items():
            started = time.time()
            method, _, query = str(command).partition("?")
            status, payload = self._dispatch(method.lower(), dict(parse_qsl(query)))
            if status == 200:
                results[key] = payload["result"]
                timings[key] = self._time_block(started, method.lower())
            else:
                errors[key] = payload
        return 200, {
            "result": {
                "result": results or [],
                "result_error": errors or [],
                "result_total": [],
                "result_next": [],
                "result_time": timings or [],
            }
        }

    def _user_get(self, params: dict[str, Any]) -> dict[str, Any]:
        only_active = _truthy(_lookup(_lookup(params, "FILTER") or {}, "ACTIVE"))
        ids = [u for u in range(1, self.world.count + 1) if not only_active or u % 97 != 0]
        try:
            start = max(0, int(_lookup(params, "start") or 0))
        except (TypeError, ValueError):
            start = 0
        page = ids[start : start + 50]
        body: dict[str, Any] = {
            "result": [
                {"ID": str(u), "ACTIVE": u % 97 != 0, "NAME": f"User{u}", "LAST_NAME": "Emulated"}
                for u in page
            ],
            "total": len(ids),
        }
        if start + 50 < len(ids):
            body["next"] = start + 50
        return body

    def _oauth(self, params: dict[str, str]) -> tuple[int, Any]:
        s = self.settings
        if params.get("grant_type") != "refresh_token":
            return 400, _envelope("unsupported_grant_type", "Only refresh_token is emulated")
        if params.get("client_id") != s.client_id or params.get("client_secret") != s.client_secret:
            return 401, _envelope("invalid_client", "Client authentication failed")
        with self._lock:
            if params.get("refresh_token") not in self._refresh_tokens:
                return 400, _envelope("invalid_grant", "Invalid refresh token")
            self._refresh_tokens.discard(params["refresh_token"])
            access, refresh = secrets_module.token_hex(16), secrets_module.token_hex(16)
            self._access_tokens[access] = time.monotonic() + s.token_lifetime
            self._refresh_tokens.add(refresh)
            self.stats.token_refreshes += 1
        host = urlsplit(self.base_url).netloc
        return 200, {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(s.token_lifetime),
            "expires": int(time.time() + s.token_lifetime),
            "scope": "timeman,user",
            "domain": host,
            "server_endpoint": f"{self.base_url}/oauth/rest/",
            "client_endpoint": f"{self.base_url}/rest/",
            "member_id": "emulated-member",
            "user_id": s.webhook_user,
            "status": "L",
        }

    def _time_block(self, started: float, method: str) -> dict[str, Any]:
        """The `time` object; `operating` is this method's server time in the last 10 minutes."""
        finished = time.time()
        with self._lock:
            minutes = self._minutes(method, finished)
            spent = sum(minutes.values())
            oldest = min(minutes, default=int(finished // 60))
        return {
            "start": started,
            "finish": finished,
            "duration": finished - started,
            "processing": finished - started,
            "date_start": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "date_finish": datetime.fromtimestamp(finished, UTC).isoformat(timespec="seconds"),
            "operating_reset_at": (oldest + 10) * 60,
            "operating": spent,
        }


class _Server(ThreadingHTTPServer):
    """A threading server with a listen backlog fit for 50 concurrent clients."""

    daemon_threads = True
    request_queue_size = 512


@dataclass(frozen=True)
class Raw:
    """An answer body sent exactly as given."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class Redirect:
    """A 302 answer: the portal moved to `location`."""

    location: str


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, without Nagle: otherwise every answer waits
    # for the client's delayed ACK (40 ms on Linux).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length) if length else b"")

    def do_GET(self) -> None:
        self._answer(b"")

    def _answer(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        status, payload = self.emulator.handle(
            parts.path, parts.query, body, self.headers.get("Content-Type") or ""
        )
        with self.emulator._lock:
            self.emulator.stats.by_status[status] += 1
        if payload == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if isinstance(payload, Redirect):
            self.send_response(status)
            self.send_header("Location", payload.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(payload, Raw):
            data, content_type = payload.body, payload.content_type
        elif isinstance(payload, str):
            data, content_type = payload.encode(), "text/html"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: request lines carry webhook secrets."""


def _envelope(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


def _lookup(params: Any, name: str) -> Any:
    """Bitrix24 reads parameter names case-insensitively."""
    if not isinstance(params, dict):
        return None
    wanted = name.lower()
    for key, value in params.items():
        if str(key).lower() == wanted:
            return value
    return None


def _truthy(value: Any) -> bool:
    return value is True or str(value).upper() in {"Y", "TRUE", "1"}


def _merge_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Query string and body (JSON, or PHP-style form fields like `cmd[u5]=...`) merged."""
    params: dict[str, Any] = {}
    _put_form_fields(params, parse_qsl(query, keep_blank_values=True))
    if body:
        if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                params.update(decoded)
        else:
            _put_form_fields(params, parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _put_form_fields(params: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
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
