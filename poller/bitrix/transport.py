"""One HTTP exchange with Bitrix24: send, read a JSON object back within a deadline, or raise.

Connect, send and receive together end within `HttpConfig.read_timeout_seconds`, however
the portal behaves: the body is read in chunks with the socket's read timeout set to the
time left, and `deadline.py`'s watchdog shuts the socket of a server that trickles.
Messages name the portal's host, never a URL (webhook paths and OAuth queries hold secrets).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from poller.bitrix.deadline import Deadline, DeadlineAdapter, deadline_for
from poller.bitrix.lenient_text import REPLACEMENTS, escaped_text, loads_marked, mark_replacements
from poller.config import HttpConfig
from poller.errors import BitrixError, TransportError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
READ_CHUNK = 16 * 1024  # also bounds what one gzip chunk may inflate to in one step
USER_AGENT = "timeman-poller"


class Transport:
    """Send one request and return the JSON object that came back, or raise a BitrixError.

    Redirects are not followed (a POST body would be lost and a moved portal should be
    noticed); bodies over 16 MB, HTML pages and hostile JSON become BAD_RESPONSE; both error
    envelopes become the matching BitrixError. Bytes that are not UTF-8 are read as U+FFFD.
    """

    def __init__(
        self,
        session: requests.Session,
        http: HttpConfig | None = None,
        *,
        observe_latency: Callable[[float], None] | None = None,
    ) -> None:
        self.session = session
        self.http = http or HttpConfig()
        self._observe_latency = observe_latency
        if self.http.ca_bundle:
            session.verify = self.http.ca_bundle  # TLS verification stays on; only the CA changes
        for prefix in ("http://", "https://"):
            if not isinstance(session.get_adapter(prefix), DeadlineAdapter):
                session.mount(prefix, DeadlineAdapter())

    def post_json(
        self, url: str, payload: Any, *, host: str, what: str, bearer: str | None = None
    ) -> dict[str, Any]:
        """POST `payload` as JSON to `url`; `host` and `what` name the call in messages.

        `bearer` goes in an `Authorization: Bearer` header, for bodies that cannot hold `auth`;
        redirects are refused, so the header never follows one to another host.
        """
        data = json.dumps(payload)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        return self._exchange(
            lambda timeout: self.session.post(
                url, data=data, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            ),
            host,
            what,
        )

    def get_json(self, url: str, params: dict[str, str], *, host: str, what: str) -> dict[str, Any]:
        """GET `url` with query `params` (the OAuth server's way)."""
        headers = {"User-Agent": USER_AGENT}
        return self._exchange(
            lambda timeout: self.session.get(
                url, params=params, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            ),
            host,
            what,
        )

    def _exchange(
        self, send: Callable[[tuple[float, float]], requests.Response], host: str, what: str
    ) -> dict[str, Any]:
        label = f"portal {host}: {what}"
        total = self.http.read_timeout_seconds
        started = time.perf_counter()
        try:
            with deadline_for(total) as deadline:
                try:
                    response = send((min(self.http.connect_timeout_seconds, total), total))
                    try:
                        _refuse_redirect(response, label)
                        raw = _read_body(response, deadline, label)
                    finally:
                        response.close()
                except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                    raise _fault(exc, deadline, label) from None
        finally:
            if self._observe_latency is not None:
                self._observe_latency(time.perf_counter() - started)
        return _parse(raw, response.status_code, label)


def _refuse_redirect(response: requests.Response, label: str) -> None:
    status = response.status_code
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("Location", "")).hostname or "an unknown address"
        raise BitrixError(
            f"{label}: HTTP {status} redirect to {target}; "
            "the portal has probably moved: update its address in the config",
            code="REDIRECT",
            http_status=status,
        )


def _read_body(response: requests.Response, deadline: Deadline, label: str) -> bytes:
    """Read the whole body in chunks, checking the deadline and the size cap between them."""
    status = response.status_code
    too_big = TransportError(
        f"{label}: HTTP {status} body larger than {MAX_BODY_BYTES} bytes",
        code="BAD_RESPONSE",
        http_status=status,
        retryable=True,  # a proxy's fault more likely than the portal's answer
    )
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_big
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: whatever has arrived, not a full chunk
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline.remaining() <= 0:
            raise _timeout(deadline, label)
        deadline.shorten_reads()
        chunk = read(READ_CHUNK, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_big
        chunks.append(chunk)


def _parse(raw: bytes, status: int, label: str) -> dict[str, Any]:
    """The JSON object of an answer, or the error it stands for."""
    try:
        body = _loads(raw, label)
    except RecursionError:
        raise _bad(label, status, "answer nests too deeply to read (hostile JSON?)", False) from None
    except ValueError as exc:
        if "digits" in str(exc):  # Python refuses integers of over 4300 digits
            raise _bad(label, status, "answer holds a number too long to read", False) from None
        kind = "an HTML page" if raw.lstrip()[:1] == b"<" else "not JSON"
        raise _bad(label, status, f"answer is {kind}", status >= 500 or status == 200) from None
    if not isinstance(body, dict):
        raise _bad(label, status, "answer is JSON but not an object", status >= 500)
    if body.get("error") not in (None, ""):
        raise BitrixError.from_envelope(status, body)
    if status >= 400:
        if "error_description" in body:  # the "User not found" answer has an empty code
            raise BitrixError.from_envelope(status, body)
        raise BitrixError(
            f"{label}: HTTP {status} without an error code",
            code=f"HTTP_{status}",
            http_status=status,
            retryable=status >= 500,
        )
    return body


def _loads(raw: bytes, label: str) -> Any:
    """The answer's JSON; bytes that are not UTF-8 become U+FFFD, so that a bad byte costs only
    the value it is in (the rest of a batch is read as usual), with a warning here.

    The texts that lost bytes are ReplacedText (poller.bitrix.lenient_text): the caller flags
    their users (poller.poll.undecodable), and never a U+FFFD that came as valid UTF-8.
    """
    encoding = json.detect_encoding(raw)
    try:
        return json.loads(raw.decode(encoding))
    except UnicodeDecodeError as exc:
        logger.warning(
            "%s: answer holds bytes that are not %s (the first at byte %d of %d); "
            "read with U+FFFD in their place",
            label,
            encoding.upper(),
            exc.start,
            len(raw),
        )
    escaped = escaped_text(raw, encoding)
    if escaped is None:
        return mark_replacements(json.loads(raw.decode(encoding, errors="replace")), REPLACEMENTS)
    return loads_marked(escaped)


def _bad(label: str, status: int, problem: str, retryable: bool) -> TransportError:
    return TransportError(
        f"{label}: HTTP {status} {problem}", code="BAD_RESPONSE", http_status=status, retryable=retryable
    )


def _timeout(deadline: Deadline, label: str) -> TransportError:
    waited = deadline.seconds - deadline.remaining()
    if waited >= deadline.seconds:
        problem = f"no complete answer within {deadline.seconds:g} s"
    else:
        problem = f"timed out after {waited:.1f} s"
    return TransportError(f"{label}: {problem}", code="TIMEOUT", retryable=True)


def _fault(exc: BaseException, deadline: Deadline, label: str) -> TransportError:
    """A short, complete message for a failed exchange, and whether retrying can help."""
    if isinstance(exc, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    ):
        return TransportError(f"{label}: connect timed out", code="TIMEOUT", retryable=True)
    if deadline.remaining() <= 0 or isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError):
        return _timeout(deadline, label)
    reason, permanent = describe_fault(exc)
    return TransportError(
        f"{label}: {reason}",
        code="TLS_ERROR" if reason.startswith("TLS error") else "CONNECTION_ERROR",
        retryable=not permanent,
    )


def describe_fault(exc: BaseException) -> tuple[str, bool]:
    """Name the root cause of a failed request in a few words; True when retrying cannot help.

    requests wraps urllib3, which wraps the socket error: the most telling cause in the
    chain names the fault, instead of a 400-character repr of the wrappers.
    """
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return _describe_tls(cause)
    for kind, reason in _FAULTS:
        if any(isinstance(cause, kind) for cause in causes):
            return reason, False
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower(), False
    return f"request failed ({type(exc).__name__})", False


_FAULTS: tuple[tuple[type[BaseException], str], ...] = (
    (socket.gaierror, "name not resolved"),
    (ConnectionRefusedError, "connection refused"),
    # RemoteDisconnected is a ConnectionResetError: test the narrower kind first.
    (http.client.RemoteDisconnected, "connection closed without an answer (RemoteDisconnected)"),
    (ConnectionResetError, "connection reset"),
    (http.client.IncompleteRead, "answer cut off"),
    (urllib3.exceptions.ProtocolError, "answer cut off"),
)


def _describe_tls(error: ssl.SSLError) -> tuple[str, bool]:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS error: certificate not trusted ({error.verify_message})", True
    reason = str(getattr(error, "reason", "") or "")
    if reason == "WRONG_VERSION_NUMBER":
        return "TLS error: wrong version number (is the port plain http?)", True
    return f"TLS error: {reason.lower().replace('_', ' ') or type(error).__name__}", False


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps, breadth first: args, `reason`, __cause__, __context__."""
    queue: list[BaseException] = [exc]
    seen: set[int] = set()
    while queue and len(seen) < 20:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped: list[object] = [*current.args, getattr(current, "reason", None)]
        wrapped += [current.__cause__, current.__context__]
        queue.extend(w for w in wrapped if isinstance(w, BaseException))
