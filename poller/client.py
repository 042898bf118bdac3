"""Talk to one Bitrix24 portal over its REST API: `timeman.status`, `batch`, `user.get`.

Every function that reaches Bitrix24 is named fetch_*. Messages and logs name the portal's
host only: the webhook path and the tokens are secrets.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from poller.config import HttpConfig, PortalConfig, parse_domain, parse_webhook_url
from poller.errors import (
    BitrixError,
    ConfigError,
    OperatingTimeLimit,
    QueryLimitExceeded,
    TokenExpired,
    TransportError,
)
from poller.ratelimit import LeakyBucket

logger = logging.getLogger(__name__)

BATCH_LIMIT = 50
RATE_LIMIT_RETRIES = 10
MAX_BODY_BYTES = 16 * 1024 * 1024
USER_AGENT = "timeman-poller"
TokenCallback = Callable[[str, str], None]


_SECRET_IN_URL = re.compile(
    r"(/rest/\d+/)[^/\s\"']+|((?:auth|access_token|refresh_token|client_secret)=)[^&\s\"']+"
)


def redact_urls(text: str) -> str:
    """Hide webhook secrets and token parameters in any URL within `text`."""
    return _SECRET_IN_URL.sub(lambda m: f"{m.group(1) or m.group(2)}***", text)


class UrlSecretFilter(logging.Filter):
    """Redact URLs in urllib3's debug lines, which print every request path."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_urls(record.getMessage()), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(UrlSecretFilter())


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text` by `***`."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact_urls(text)


@dataclass
class StatusBatch:
    """What one round of `timeman.status` calls gave: a result or an error per user."""

    results: dict[int, Any] = field(default_factory=dict)
    answered_at: dict[int, datetime] = field(default_factory=dict)
    errors: dict[int, BitrixError] = field(default_factory=dict)


class PortalClient:
    """Calls one portal, within its rate limits, refreshing an expired OAuth token.

    One instance lives as long as the daemon, so the bucket level, a blocked method and a
    refreshed token carry over from cycle to cycle.
    """

    def __init__(
        self,
        portal: PortalConfig,
        session: requests.Session,
        http: HttpConfig | None = None,
        *,
        on_tokens_refreshed: TokenCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        observe_latency: Callable[[float], None] | None = None,
    ) -> None:
        self.portal = portal
        self._observe_latency = observe_latency
        self.session = session
        self.http = http or HttpConfig()
        if self.http.ca_bundle:
            session.verify = self.http.ca_bundle  # TLS verification stays on; only the CA changes
        self.bucket = LeakyBucket(portal.requests_per_second, portal.burst, sleep=sleep)
        self.access_token = portal.access_token
        self.refresh_token = portal.refresh_token
        self._on_tokens_refreshed = on_tokens_refreshed
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._blocked_until = 0.0
        self._operating_reset_at: float | None = None
        self._token_lock = threading.Lock()
        self.requests_sent = 0
        self.rate_limited = 0
        if portal.base_url.startswith("http://"):
            logger.warning(
                "portal %s: plain http:// to %s; use https:// outside local tests",
                portal.name,
                portal.host,
            )

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (*self.portal.secrets(), self.access_token, self.refresh_token) if s)

    def use_tokens(self, access_token: str, refresh_token: str | None) -> None:
        """Start from a stored token pair instead of the config's."""
        self.access_token = access_token
        self.refresh_token = refresh_token

    def fetch_statuses(self, user_ids: Sequence[int]) -> StatusBatch:
        """Fetch `timeman.status` of every user, 50 per batch request."""
        outcome = StatusBatch()
        for start in range(0, len(user_ids), BATCH_LIMIT):
            chunk = user_ids[start : start + BATCH_LIMIT]
            try:
                if len(user_ids) == 1:
                    body = self.call("timeman.status", {"USER_ID": chunk[0]})
                    outcome.results[chunk[0]] = body.get("result")
                else:
                    self._merge_batch(chunk, self._call_batch(chunk), outcome)
                answered = datetime.fromtimestamp(self._wall_clock(), UTC)
                outcome.answered_at.update((u, answered) for u in chunk if u in outcome.results)
                self._log_progress(start + len(chunk), len(user_ids))
            except BitrixError as exc:
                if exc.per_user and len(chunk) == 1:
                    outcome.errors[chunk[0]] = exc
                    continue
                if _portal_still_answers(exc):
                    outcome.errors.update((user_id, exc) for user_id in chunk)
                    continue
                outcome.errors.update((user_id, exc) for user_id in user_ids[start:])
                break
        return outcome

    def _log_progress(self, done: int, total: int) -> None:
        """On a long cycle (over 10 batches, at least 5 s at 2 requests/s), say how far it is."""
        if total > 10 * BATCH_LIMIT and (done % (10 * BATCH_LIMIT) == 0 or done == total):
            logger.info("portal %s: %d of %d users fetched", self.portal.name, done, total)

    def fetch_active_user_ids(self) -> list[int]:
        """List the ids of all active users with `user.get`, 50 per page."""
        user_ids: list[int] = []
        start: int | None = 0
        while start is not None:
            body = self.call(
                "user.get", {"FILTER": {"ACTIVE": True}, "SORT": "ID", "ORDER": "ASC", "start": start}
            )
            page = body.get("result") or []
            if not isinstance(page, list):
                raise TransportError(
                    f"portal {self.portal.host}: user.get result is not a list",
                    code="BAD_RESPONSE",
                )
            for user in page:
                try:
                    user_ids.append(int(user["ID"]))
                except (KeyError, TypeError, ValueError):
                    logger.warning("portal %s: user.get row without a valid ID skipped", self.portal.name)
            next_start = body.get("next")
            start = (
                int(next_start) if isinstance(next_start, int | str) and str(next_start).isdigit() else None
            )
        return sorted(set(user_ids))

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call `method`, retrying what a retry can fix, and return the whole JSON body.

        1. A method blocked by OPERATION_TIME_LIMIT is not called before its reset time.
        2. Each attempt first takes a slot of the leaky bucket.
        3. QUERY_LIMIT_EXCEEDED, 5xx, HTML pages and transport faults are retried with
           growing, jittered delays; an expired token is refreshed once and the call repeated.
        """
        now = self._wall_clock()
        if method != "user.get" and now < self._blocked_until:
            raise self._operating_limit_error(self._blocked_until)
        refreshed = False
        attempt = limited = 0
        while True:
            try:
                body = self._post(method, params)
                self._note_operating(body)
                return body
            except TokenExpired:
                if refreshed:
                    raise
                self.fetch_new_tokens()
                refreshed = True
            except OperatingTimeLimit as exc:
                reset_at = self._operating_reset_at
                if reset_at is None or reset_at <= self._wall_clock():
                    reset_at = self._wall_clock() + 60.0
                self._blocked_until = reset_at
                exc.reset_at = reset_at
                raise
            except QueryLimitExceeded as exc:
                # Another app may hold the shared bucket full for a while: wait longer.
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

    def _back_off(self, exc: BitrixError, attempt: int, attempts: int) -> None:
        delay = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random())
        logger.warning(
            "portal %s: %s; retry %d of %d in %.1f s",
            self.portal.name,
            exc.message,
            attempt + 1,
            attempts,
            delay,
        )
        self._sleep(delay)

    def fetch_new_tokens(self) -> None:
        """Trade the refresh token for a new pair, and hand the pair to the callback at once."""
        with self._token_lock:
            portal = self.portal
            if not (self.refresh_token and portal.client_id and portal.client_secret):
                raise BitrixError(
                    f"portal {portal.name}: access token expired and no refresh_token, client_id "
                    "and client_secret are configured to renew it",
                    code="expired_token",
                    http_status=401,
                )
            params = {
                "grant_type": "refresh_token",
                "client_id": portal.client_id,
                "client_secret": portal.client_secret,
                "refresh_token": self.refresh_token,
            }
            try:
                response = self.session.get(
                    portal.oauth_url, params=params, timeout=self._timeout(), allow_redirects=False
                )
            except requests.RequestException as exc:
                raise TransportError(
                    f"portal {portal.name}: token refresh at {urlsplit(portal.oauth_url).hostname} "
                    f"failed: {type(exc).__name__}",
                    code="TRANSPORT",
                    retryable=True,
                ) from None
            body = _json_body(response, urlsplit(portal.oauth_url).hostname or "oauth server")
            if "error" in body or not body.get("access_token"):
                error = BitrixError.from_envelope(response.status_code, body)
                if error.code == "invalid_grant":
                    error.message = (
                        f"portal {portal.name}: the refresh token was refused (invalid_grant); "
                        "a person must re-authorize the application"
                    )
                    error.args = (error.message,)
                raise error
            self.access_token = str(body["access_token"])
            self.refresh_token = str(body.get("refresh_token") or self.refresh_token)
            logger.info("portal %s: OAuth access token refreshed", portal.name)
            if self._on_tokens_refreshed is not None:
                self._on_tokens_refreshed(self.access_token, self.refresh_token)

    def _call_batch(self, user_ids: Sequence[int]) -> dict[str, Any]:
        commands = {f"u{user_id}": f"timeman.status?USER_ID={user_id}" for user_id in user_ids}
        body = self.call("batch", {"halt": 0, "cmd": commands})
        result = body.get("result")
        if not isinstance(result, dict):
            raise TransportError(
                f"portal {self.portal.host}: batch answer has no result object",
                code="BAD_RESPONSE",
                http_status=200,
                retryable=True,
            )
        return result

    def _merge_batch(self, user_ids: Sequence[int], result: dict[str, Any], outcome: StatusBatch) -> None:
        results = _section(result.get("result"))
        errors = _section(result.get("result_error"))
        timings = _section(result.get("result_time"))
        for user_id in user_ids:
            key = f"u{user_id}"
            if key in results and key not in errors:
                outcome.results[user_id] = results[key]
                continue
            envelope = errors.get(key)
            if isinstance(envelope, dict):
                error = BitrixError.from_envelope(None, envelope)
                if isinstance(error, OperatingTimeLimit):
                    self._blocked_until = max(self._blocked_until, self._wall_clock() + 60.0)
            else:
                error = BitrixError(
                    f"portal {self.portal.host}: batch gave no answer for user {user_id}",
                    code="NO_ANSWER",
                    retryable=True,
                )
            outcome.errors[user_id] = error
        for timing in timings.values():
            if isinstance(timing, dict):
                self._note_operating({"time": timing})

    def _post(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        portal = self.portal
        if portal.webhook_path is not None:
            url = f"{portal.base_url}{portal.webhook_path}{method}"
            payload = params
        else:
            url = f"{portal.base_url}/rest/{method}"
            payload = {**params, "auth": self.access_token}
        self.bucket.acquire()
        self.requests_sent += 1
        sent_at = time.perf_counter()
        try:
            response = self.session.post(
                url,
                data=json.dumps(payload),
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
                timeout=self._timeout(),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise TransportError(
                f"portal {portal.host}: {method} timed out", code="TIMEOUT", retryable=True
            ) from None
        except requests.RequestException as exc:
            raise TransportError(
                f"portal {portal.host}: {method} failed: {type(exc).__name__}: "
                + redact(_first_line(exc), self.secrets()).replace(url, portal.host),
                code="CONNECTION_ERROR",
                retryable=True,
            ) from None
        if 300 <= response.status_code < 400:
            target = urlsplit(response.headers.get("Location", "")).hostname or "an unknown address"
            response.close()
            raise BitrixError(
                f"portal {portal.host}: HTTP {response.status_code} redirect to {target}; "
                "the portal has probably moved: update its address in the config",
                code="REDIRECT",
                http_status=response.status_code,
            )
        try:
            body = _json_body(response, portal.host)
        finally:
            if self._observe_latency is not None:
                self._observe_latency(time.perf_counter() - sent_at)
        if "error" in body and body.get("error") is not None:
            raise BitrixError.from_envelope(response.status_code, body)
        if response.status_code >= 400:
            raise BitrixError(
                f"portal {portal.host}: HTTP {response.status_code} without an error code",
                code=f"HTTP_{response.status_code}",
                http_status=response.status_code,
                retryable=response.status_code >= 500,
            )
        return body

    def _note_operating(self, body: dict[str, Any]) -> None:
        timing = body.get("time")
        if isinstance(timing, dict):
            reset_at = timing.get("operating_reset_at")
            if isinstance(reset_at, int | float) and not isinstance(reset_at, bool):
                self._operating_reset_at = float(reset_at)

    def _operating_limit_error(self, until: float) -> OperatingTimeLimit:
        error = OperatingTimeLimit(
            f"portal {self.portal.host}: timeman.status is blocked by OPERATION_TIME_LIMIT "
            f"for {until - self._wall_clock():.0f} s more",
            code="OPERATION_TIME_LIMIT",
            http_status=None,
        )
        error.reset_at = until
        return error

    def _timeout(self) -> tuple[float, float]:
        return (self.http.connect_timeout_seconds, self.http.read_timeout_seconds)


def _portal_still_answers(exc: BitrixError) -> bool:
    """Whether the next batch is worth trying after this one failed for good.

    A portal that answered, with a transient error or a broken body, may answer the next
    batch; one that is unreachable, refuses our credentials or blocked the method will not,
    so the rest of its users are recorded as failed at once.
    """
    if isinstance(exc, OperatingTimeLimit) or exc.http_status is None:
        return False
    return exc.retryable or exc.code == "BAD_RESPONSE"


def _section(value: Any) -> dict[str, Any]:
    """A batch section: Bitrix24 serializes an empty one as `[]`."""
    return value if isinstance(value, dict) else {}


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else ""


def _json_body(response: requests.Response, host: str) -> dict[str, Any]:
    """Read a JSON object from `response`, refusing huge bodies and HTML pages."""
    status = response.status_code
    try:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise TransportError(
                    f"portal {host}: HTTP {status} body larger than {MAX_BODY_BYTES} bytes",
                    code="BAD_RESPONSE",
                    http_status=status,
                    retryable=True,  # a proxy's fault more likely than the portal's answer
                )
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise TransportError(
            f"portal {host}: answer cut off: {type(exc).__name__}",
            code="CONNECTION_ERROR",
            http_status=status,
            retryable=True,
        ) from None
    finally:
        response.close()
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except ValueError:
        kind = "an HTML page" if raw.lstrip()[:1] == b"<" else "not JSON"
        raise TransportError(
            f"portal {host}: HTTP {status} answer is {kind}",
            code="BAD_RESPONSE",
            http_status=status,
            retryable=status >= 500 or status == 200,
        ) from None
    if not isinstance(body, dict):
        raise TransportError(
            f"portal {host}: HTTP {status} answer is JSON but not an object",
            code="BAD_RESPONSE",
            http_status=status,
            retryable=status >= 500,
        )
    return body


def get_timekeeping_status(
    url: str,
    userid: int | str | None = None,
    token: str | None = None,
    *,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Call `timeman.status` once and return the whole parsed JSON answer.

    OpenIntegrations' GetTimekeepingStatus: `url` is an incoming-webhook URL, or, when
    `token` is given, the portal's address; an empty `userid` means the caller. Errors are
    raised as BitrixError; the answer of a refused call is not returned.
    """
    if token:
        portal = PortalConfig(name="cli", base_url=parse_domain(url, "--url"), users=(1,), access_token=token)
    else:
        base_url, path = parse_webhook_url(url, "--url")
        portal = PortalConfig(name="cli", base_url=base_url, webhook_path=path, users=(1,))
    params: dict[str, Any] = {}
    if userid not in (None, ""):
        try:
            params["USER_ID"] = int(str(userid))
        except ValueError:
            raise ConfigError(f"--userid: {userid!r} is not a user id (a positive integer)") from None
    client = PortalClient(portal, session or requests.Session(), HttpConfig(max_retries=0))
    return client.call("timeman.status", params)
