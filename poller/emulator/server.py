"""A Bitrix24 portal on loopback: a request passes the rules and faults, then reaches a method.

The pieces: `world` and `staff` (who works when, who is who), `record` (a record and the
portal's time formats), `rules` (bucket, operating window per method, tokens: one clock),
`faults` (broken answers, hostile values), `routes` (authentication), `methods` (classic
REST), `rest3` (REST 3.0), `oauth`, `exchange` (one request through all of these) and
`handler` (HTTP). The emulator counts what it answered, so tests and benchmarks can compare
what was stored with what was sent.
"""

from __future__ import annotations

import threading
from typing import Any

from poller.clock import SYSTEM_CLOCK, Clock
from poller.emulator.exchange import answer
from poller.emulator.faults import HOSTILE_KINDS, FaultDice
from poller.emulator.gate import Gate
from poller.emulator.handler import EmulatorServer, handler_for
from poller.emulator.portal_errors import PortalErrors
from poller.emulator.rules import PortalRules
from poller.emulator.settings import EmulatorSettings, EmulatorStats
from poller.emulator.simclock import SimClock
from poller.emulator.wire import Answer
from poller.emulator.world import World
from poller.serving import PromptServer


class PromptEmulatorServer(PromptServer, EmulatorServer):
    """The emulator's server, which `Emulator.stop()` stops at once (see poller.serving)."""


class Emulator:
    """The emulated portal. `bind()` then `serve_forever()`, or `start()` for a background thread.

    `clock` drives the rules; the world's time is `settings.start + speed × (clock's elapsed
    time)`, so with a `ManualClock` and speed 1 a test moves both.
    """

    def __init__(self, settings: EmulatorSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings or EmulatorSettings()
        self.clock = clock
        s = self.settings
        self.world = World(s.users, SimClock(s.start, s.speed, clock, catch_up=s.catch_up))
        self.rules = PortalRules(self.settings, clock)
        self.stats = EmulatorStats()
        self.stopping = threading.Event()
        self.gate = Gate()
        self.dice = FaultDice(self.settings)
        self.errors = PortalErrors()
        self._lock = threading.Lock()
        self._overrides: dict[int, Any] = {}
        self._fired: set[int] = set()
        self._zones: dict[int, str] = {}  # user id: the TIME_ZONE user.get names instead of the world's
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving -------------------------------------------------------------------------

    def bind(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Listen on `host:port` (0 picks a free port); raises OSError when it is taken."""
        self.stopping.clear()
        self._server = PromptEmulatorServer((host, port), handler_for(self))
        return self

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Serve in a daemon thread, binding first unless `bind()` was called."""
        server = self._server or self.bind(host, port)._server
        assert server is not None
        self._thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, host: str | None = None, port: int = 0) -> None:
        """Serve in this thread until `stop()` from another thread or an interrupt.

        Binds first unless `bind()` was called (the CLI binds, prints its banner, then serves).
        """
        server = self._server or self.bind(host or "127.0.0.1", port)._server
        assert server is not None
        self._thread = threading.current_thread()
        try:
            server.serve_forever()
        finally:
            self.stopping.set()
            server.server_close()

    def stop(self) -> None:
        """Stop serving; hung, trickling and held connections end too."""
        self.stopping.set()
        self.gate.release()
        server, self._server = self._server, None
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()  # returns at once when serve_forever has already ended
            if self._thread is not threading.current_thread():
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

    def hold(self, *methods: str, after: int = 0) -> None:
        """Hold requests of `methods` ("user.get", "batch", REST 3.0 "api/batch") after `after`
        of them passed, until `release()`: a phase of the poller held open (see gate.py)."""
        self.gate.hold(*methods, after=after)

    def release(self) -> None:
        """Let the held requests go and hold no more."""
        self.gate.release()

    def wait_held(self, count: int = 1, timeout: float = 30.0) -> bool:
        """Wait until `count` requests are held (False after `timeout` real seconds)."""
        return self.gate.wait_held(count, timeout)

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

    def set_time_zone(self, user_id: int, zone: str) -> None:
        """Let `user.get` name `zone` (an IANA name, e.g. one with DST) as `user_id`'s TIME_ZONE."""
        with self._lock:
            self._zones[user_id] = zone

    def time_zone_for(self, user_id: int) -> str | None:
        with self._lock:
            return self._zones.get(user_id)

    def fire(self, *user_ids: int) -> None:
        """Let `user_ids` go: `user.get` lists them inactive, `timeman.status` says "User not found"."""
        with self._lock:
            self._fired.update(user_ids)

    def is_fired(self, user_id: int) -> bool:
        with self._lock:
            return user_id in self._fired

    def set_hostile(self, user_id: int, *kinds: str) -> None:
        """Put hostile values (`faults.HOSTILE_KINDS`) into `user_id`'s answers; none: stop."""
        unknown = [k for k in kinds if k not in HOSTILE_KINDS]
        if unknown:
            expected = ", ".join(HOSTILE_KINDS)
            raise ValueError(f"unknown hostile kind {unknown[0]!r}; expected one of {expected}")
        with self._lock:
            self.settings.hostile = {**self.settings.hostile, user_id: tuple(kinds)}

    def fail_requests(self, kind: str, times: int | None = None, status: int | None = None) -> None:
        """Answer the next `times` requests (None: all, until `stop_failing`) with a named error
        of `portal_errors.REQUEST_ERRORS` (a block, a deleted portal, a 504 page...)."""
        self.errors.fail_requests(kind, times, status)

    def fail_calls(
        self, kind: str, method: str = "timeman.status", times: int | None = None, status: int | None = None
    ) -> None:
        """Answer calls of `method`, alone or inside a batch (its `result_error`), with a named
        error of `portal_errors.CALL_ERRORS` (insufficient_scope, an auth error...)."""
        self.errors.fail_calls(kind, method, times, status)

    def stop_failing(self) -> None:
        self.errors.clear()

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        self.rules.expire_tokens()

    def stats_summary(self) -> dict[str, Any]:
        """The counters as JSON, for benchmarks that run the emulator in another process."""
        return self.stats.summary()

    # -- one request ---------------------------------------------------------------------

    def handle(
        self, path: str, query: str, body: bytes, content_type: str, authorization: str = ""
    ) -> Answer:
        """Answer one HTTP request: admission (bucket, faults), authentication, then the method."""
        return answer(self, path, query, body, content_type, authorization)
