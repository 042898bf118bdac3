"""Errors a real portal answers that a test asks for by name, in the portal's own shapes.

Two kinds of ask. `Emulator.fail_requests(kind)` answers whole requests with one of
REQUEST_ERRORS, before authentication, as a portal's front does for a block or a deleted
portal (and a proxy for its 504 page). `Emulator.fail_calls(kind, method)` answers the calls
of one method with one of CALL_ERRORS: alone as the HTTP answer, inside a batch as that
sub-call's `result_error` (HTTP 200 for the batch), which is where an auth or scope error
of a batch lands. Codes, texts and statuses come from b24restdocs (`_includes/system-errors.md`)
and the reference; statuses differ between builds (the current table puts OVERLOAD_LIMIT and
insufficient_scope at 401, older ones at 503 and 403), so each ask can override the status.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from poller.emulator.wire import Answer, envelope

GATEWAY_TIMEOUT_PAGE = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

REQUEST_ERRORS: dict[str, Answer] = {
    "OVERLOAD_LIMIT": (503, envelope("OVERLOAD_LIMIT", "REST API is blocked due to overload")),
    "PORTAL_DELETED": (403, envelope("PORTAL_DELETED", "Portal was deleted")),
    "ERROR_UNEXPECTED_ANSWER": (
        500,
        envelope("ERROR_UNEXPECTED_ANSWER", "Server returned an unexpected response"),
    ),
    "REST_NOT_IN_PLAN": (401, envelope("ACCESS_DENIED", "REST is available only on commercial plans")),
    "GATEWAY_TIMEOUT": (504, GATEWAY_TIMEOUT_PAGE),
}
"""Whole answers: a vendor block, a deleted portal, a server fault, a plan without REST, a proxy's
504 page (HTML, not JSON)."""

CALL_ERRORS: dict[str, Answer] = {
    "insufficient_scope": (
        401,
        envelope(
            "insufficient_scope", "The request requires higher privileges than provided by the webhook token"
        ),
    ),
    "ACCESS_DENIED": (403, envelope("ACCESS_DENIED", "Access denied")),
    "NO_AUTH_FOUND": (401, envelope("NO_AUTH_FOUND", "Wrong authorization data")),
    "expired_token": (401, envelope("expired_token", "The access token provided has expired")),
}
"""Answers to one method's calls. `ACCESS_DENIED` is how older builds refuse reading another
user's day (403, where newer ones answer 400 with an empty code): the caller's own day is
still answered."""


@dataclass
class _Ask:
    answer: Answer
    left: int | None  # calls still to fail; None: until `clear`
    spare_caller: bool = False


class PortalErrors:
    """What a test asked to fail, and how often; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._request: _Ask | None = None
        self._calls: dict[str, _Ask] = {}

    def fail_requests(self, kind: str, times: int | None = None, status: int | None = None) -> None:
        answer = _pick(REQUEST_ERRORS, kind, status)
        with self._lock:
            self._request = _Ask(answer, times)

    def fail_calls(self, kind: str, method: str, times: int | None = None, status: int | None = None) -> None:
        answer = _pick(CALL_ERRORS, kind, status)
        with self._lock:
            self._calls[method.lower()] = _Ask(answer, times, spare_caller=kind == "ACCESS_DENIED")

    def clear(self) -> None:
        with self._lock:
            self._request = None
            self._calls.clear()

    def for_request(self) -> Answer | None:
        """The answer replacing this whole request, or None."""
        with self._lock:
            ask = self._request
            if ask is None or not _spend(ask):
                return None
        return _copy(ask.answer)

    def for_call(self, method: str, user_id: Any, caller: int) -> Answer | None:
        """The answer replacing this call of `method` (for `user_id`, None: the caller), or None."""
        with self._lock:
            ask = self._calls.get(method)
            if ask is None:
                return None
            if ask.spare_caller and str(user_id if user_id not in (None, "") else caller) == str(caller):
                return None
            if not _spend(ask):
                return None
        return _copy(ask.answer)


def _pick(table: dict[str, Answer], kind: str, status: int | None) -> Answer:
    if kind not in table:
        raise ValueError(f"unknown portal error {kind!r}; expected one of {', '.join(table)}")
    default_status, body = table[kind]
    return (default_status if status is None else status), body


def _spend(ask: _Ask) -> bool:
    if ask.left is None:
        return True
    if ask.left <= 0:
        return False
    ask.left -= 1
    return True


def _copy(answer: Answer) -> Answer:
    status, body = answer
    return status, dict(body) if isinstance(body, dict) else body
