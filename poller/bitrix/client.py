"""A client of one portal: one `call` that waits for the limits, retries and refreshes tokens.

One instance lives as long as the daemon, so the bucket level, blocked methods and a
refreshed token carry over from cycle to cycle. What the methods mean is in `methods.py`.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from poller.bitrix.limits import LeakyBucket, OperatingLimits
from poller.bitrix.oauth import fetch_token_pair, follow_client_endpoint
from poller.bitrix.transport import Transport
from poller.clock import SYSTEM_CLOCK, Clock, SystemClock
from poller.config import HttpConfig, PortalConfig
from poller.errors import BitrixError, OperatingTimeLimit, QueryLimitExceeded, TokenExpired
from poller.redaction import redact

logger = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 10
TokenCallback = Callable[[str, str], None]


class PortalClient:
    """Calls one portal within its limits, retrying what a retry can fix.

    `on_tokens_refreshed(access, refresh)` gets a new OAuth pair before the client uses it,
    so it can be stored first: the old refresh token is already spent. Once `stop` is set
    (the daemon is shutting down), a failed request is not retried: the call raises at once.
    """

    def __init__(
        self,
        portal: PortalConfig,
        session: requests.Session,
        http: HttpConfig | None = None,
        *,
        on_tokens_refreshed: TokenCallback | None = None,
        clock: Clock = SYSTEM_CLOCK,
        observe_latency: Callable[[float], None] | None = None,
        observe_wait: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.portal = portal
        self._observe_wait = observe_wait
        self.stop = stop
        self.http = http or HttpConfig()
        self.clock = clock
        self.transport = Transport(session, self.http, observe_latency=observe_latency)
        self.bucket = LeakyBucket(portal.requests_per_second, portal.burst, clock=clock)
        self.limits = OperatingLimits(clock)
        self.access_token = portal.access_token
        self.refresh_token = portal.refresh_token
        self._on_tokens_refreshed = on_tokens_refreshed
        self._token_lock = threading.Lock()
        self.requests_sent = 0
        self.rate_limited = 0
        if portal.base_url.startswith("http://") and not is_loopback(portal.host):
            logger.warning(
                "portal %s: plain http:// to %s; use https:// outside local tests", portal.name, portal.host
            )

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (*self.portal.secrets(), self.access_token, self.refresh_token) if s)

    def use_tokens(self, access_token: str, refresh_token: str | None) -> None:
        """Start from a stored token pair instead of the config's."""
        self.access_token = access_token
        self.refresh_token = refresh_token

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call a REST 1 `method` (`/rest/...`) and return the whole JSON answer."""
        return self._call(method, params, api="rest")

    def call_v3(self, method: str, body: dict[str, Any] | list[Any]) -> dict[str, Any]:
        """Call a REST 3.0 `method` (`/rest/api/...`, JSON body only) and return the whole answer.

        With OAuth, `auth` goes in the JSON body (REST 3.0 reads no query string for
        parameters). The REST 3.0 `batch` takes a bare array, which has no room for `auth`:
        its token goes in an `Authorization: Bearer` header, which portals read before body
        and query (the way Bitrix24's own JS SDK sends a server-side REST 3.0 batch).
        """
        return self._call(method, body, api="rest/api")

    def _call(self, method: str, params: dict[str, Any] | list[Any], api: str) -> dict[str, Any]:
        """Send `method`, retrying what a retry can fix.

        1. A method blocked by OPERATION_TIME_LIMIT is not called before its own reset time.
        2. Each attempt first takes a slot of the leaky bucket.
        3. QUERY_LIMIT_EXCEEDED is retried on its own budget (another app may hold the
           shared bucket full for a while); 5xx, HTML pages and transport faults on
           `max_retries`, with growing, jittered delays; an expired token is refreshed once.
        """
        self.limits.check(method, self.portal.host)
        refreshed = False
        attempt = limited = 0
        while True:
            token_sent = self.access_token
            try:
                body = self._send(method, params, api)
                self.limits.note(method, body.get("time"))
                return body
            except TokenExpired:
                if refreshed:
                    raise
                self.refresh_tokens(expired=token_sent)
                refreshed = True
            except OperatingTimeLimit as exc:
                exc.reset_at = self.limits.block(method)
                raise
            except QueryLimitExceeded as exc:
                self.rate_limited += 1
                self.bucket.fill()
                if limited >= RATE_LIMIT_RETRIES:
                    raise
                self._back_off(exc, limited, RATE_LIMIT_RETRIES)
                limited += 1
            except BitrixError as exc:
                if not exc.retryable or attempt >= self.http.max_retries:
                    raise
                self._back_off(exc, attempt, self.http.max_retries)
                attempt += 1

    def _send(self, method: str, params: dict[str, Any] | list[Any], api: str) -> dict[str, Any]:
        portal = self.portal
        payload: dict[str, Any] | list[Any] = params
        bearer: str | None = None
        if portal.webhook_path is not None:
            url = f"{portal.base_url}/{api}{portal.webhook_path.removeprefix('/rest')}{method}"
        elif isinstance(params, list):
            url, bearer = f"{portal.base_url}/{api}/{method}", self.access_token or ""
        else:
            url = f"{portal.base_url}/{api}/{method}"
            payload = {**params, "auth": self.access_token}
        waited = self.bucket.acquire()
        if waited > 0 and self._observe_wait is not None:
            self._observe_wait(waited)
        self.requests_sent += 1
        if not logger.isEnabledFor(logging.DEBUG):
            return self.transport.post_json(url, payload, host=portal.host, what=method, bearer=bearer)
        started = time.perf_counter()
        outcome = "HTTP 200"
        try:
            return self.transport.post_json(url, payload, host=portal.host, what=method, bearer=bearer)
        except BitrixError as exc:
            outcome = f"HTTP {exc.http_status} {exc.code}" if exc.http_status else f"no answer ({exc.code})"
            raise
        finally:
            users = users_in(method, params)
            logger.debug(
                "portal %s: %s%s to %s (%d user%s): %s in %.3f s",
                portal.name,
                method,
                "" if api == "rest" else " (REST 3.0)",
                portal.host,
                users,
                "" if users == 1 else "s",
                outcome,
                time.perf_counter() - started,
            )

    def _back_off(self, exc: BitrixError, attempt: int, attempts: int) -> None:
        if self.stop is not None and self.stop.is_set():
            raise exc  # shutting down: no wait, no retry
        delay = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random())
        message = redact(exc.message, self.secrets())
        host_prefix = f"portal {self.portal.host}:"
        if message.startswith(host_prefix) and self.portal.name != self.portal.host:
            message = f"portal {self.portal.name} ({self.portal.host}):{message[len(host_prefix) :]}"
        elif not message.startswith("portal "):
            message = f"portal {self.portal.name}: {message}"
        logger.warning("%s; retry %d of %d in %.1f s", message, attempt + 1, attempts, delay)
        if self.stop is not None and isinstance(self.clock, SystemClock):
            self.stop.wait(delay)  # a SIGTERM during the wait ends it at once
        else:
            self.clock.sleep(delay)
        if self.stop is not None and self.stop.is_set():
            raise exc  # shutting down: the retry is not sent

    def refresh_tokens(self, expired: str | None = None) -> None:
        """Trade the refresh token for a new pair, hand the pair over, then use it.

        `expired` is the access token the portal refused: when another thread has replaced
        it meanwhile, nothing is traded. A handover that fails is logged (without the
        tokens) and the pair is used anyway: the old refresh token is spent.
        """
        with self._token_lock:
            if expired is not None and expired != self.access_token:
                return
            pair = fetch_token_pair(self.transport, self.portal, self.refresh_token)
            if self._on_tokens_refreshed is not None:
                try:
                    self._on_tokens_refreshed(pair.access_token, pair.refresh_token)
                except Exception as exc:
                    secrets = (*self.secrets(), pair.access_token, pair.refresh_token)
                    logger.error(
                        "portal %s: the refreshed OAuth tokens could not be handed over: %s: %s",
                        self.portal.name,
                        type(exc).__name__,
                        redact(str(exc).splitlines()[0] if str(exc) else "", secrets)[:300],
                    )
            self.access_token, self.refresh_token = pair.access_token, pair.refresh_token
            logger.info("portal %s: OAuth access token refreshed", self.portal.name)
            self.portal = follow_client_endpoint(self.portal, pair)


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (localhost, 127.0.0.0/8, ::1): plain http is fine there."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def users_in(method: str, params: Any) -> int:
    """How many users a request concerns, for the debug line: batch sub-calls, or one USER_ID."""
    if isinstance(params, list):  # the REST 3.0 batch: one element per call
        return len(params)
    if not isinstance(params, dict):
        return 0
    if method == "batch":
        commands = params.get("cmd")
        return len(commands) if isinstance(commands, dict | list) else 0
    keys = {str(key).upper() for key in params}
    if "USER_ID" in keys or "filter" in params:
        return 1
    return 0
