"""Errors of timeman-poller: the CLI shows these as one line; anything else is a bug."""

from __future__ import annotations

from typing import Any

MAX_DESCRIPTION = 300  # a portal's text is quoted up to this many characters
MAX_CODE = 100  # poll_errors.code holds 100 characters

# Codes that come back for every call of a portal until a person changes something.
_PERMANENT = {
    "OVERLOAD_LIMIT",
    "NO_AUTH_FOUND",
    "INVALID_TOKEN",
    "AUTHORIZATION_ERROR",
    "INSUFFICIENT_SCOPE",
    "ACCESS_DENIED",
    "INVALID_CREDENTIALS",
    "PORTAL_DELETED",
    "ERROR_METHOD_NOT_FOUND",
    "INVALID_GRANT",
    "INVALID_CLIENT",
    "PAYMENT_REQUIRED",
    "ERROR_BATCH_LENGTH_EXCEEDED",
}
# Of those, the ones that hit every user of the portal: polling the next users is a waste.
_PORTAL_WIDE = _PERMANENT - {"ERROR_BATCH_LENGTH_EXCEEDED"}
V3_PREFIX = "BITRIX_REST_V3_EXCEPTION_"
_V3_PORTAL_WIDE = {V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION"}


class PollerError(Exception):
    """Base class of every error the tool reports without a traceback."""


class ConfigError(PollerError):
    """The configuration file or a command-line value is wrong."""


class StorageError(PollerError):
    """The database could not be reached or written."""


class DatabaseFailure(StorageError):
    """A storage call failed in the database; storage raises it in place of SQLAlchemy's errors."""


class DatabaseUnavailable(DatabaseFailure):
    """The database cannot take anything now (down, locked, connection lost): retry later."""


class RowsRefused(DatabaseFailure):
    """The database refused the rows for their values; `reason` says why, retrying cannot help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stopped(PollerError):
    """A stop (SIGTERM, Ctrl-C) came before a listing was complete: the partial list is not used."""


class BitrixError(PollerError):
    """Bitrix24 (or the way to it) answered with an error.

    `code` is Bitrix24's error code ("" when the portal sent none), `http_status` the HTTP
    status (None when no answer came), `retryable` whether repeating the same call later can
    succeed, `per_user` whether the error concerns one USER_ID rather than the portal, and
    `portal_wide` whether every other user of the portal would get it too (bad credentials,
    a missing scope or right, a lapsed subscription): then the rest of a cycle is not tried.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        http_status: int | None = None,
        retryable: bool = False,
        per_user: bool = False,
        portal_wide: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.per_user = per_user
        self.portal_wide = portal_wide

    def reword(self, message: str) -> None:
        """Replace the message with one that says what a person must do."""
        self.message = message
        self.args = (message,)

    @classmethod
    def from_envelope(cls, http_status: int | None, envelope: dict[str, Any]) -> BitrixError:
        """Build the matching error from either envelope style.

        REST 1: `{"error": "CODE", "error_description": "text"}`; REST 3.0:
        `{"error": {"code": ..., "message": ..., "validation": [{"field", "message"}]}}`.
        Bitrix24 builds disagree on statuses, so the code is matched first, then the
        description (the "User not found" answer has an empty code), then the status.
        """
        code, description = _code_and_description(envelope)
        if code and description:
            text = f"{code}: {description}"
        else:
            text = code or description or "error without a description"
        if http_status is not None:
            text = f"HTTP {http_status} {text}"
        lowered = description.lower()
        upper = code.upper()
        kwargs: dict[str, Any] = {"code": code, "http_status": http_status}
        if upper == "QUERY_LIMIT_EXCEEDED":
            return QueryLimitExceeded(text, retryable=True, **kwargs)
        if upper == "OPERATION_TIME_LIMIT":
            return OperatingTimeLimit(text, retryable=True, **kwargs)
        if upper == "EXPIRED_TOKEN":
            # Retryable after a refresh; raised to callers only when the refresh did not help.
            return TokenExpired(text, retryable=True, portal_wide=True, **kwargs)
        if upper in {"INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER"}:
            return cls(text, retryable=True, **kwargs)
        # These two come with an empty code; name them so poll_errors.code can be grouped by.
        if "user not found" in lowered:
            return cls(text, per_user=True, code=code or "USER_NOT_FOUND", http_status=http_status)
        if "access to managing other users" in lowered:
            # It hits every user but the caller: a missing right of the portal's webhook or app.
            return cls(text, portal_wide=True, code=code or "NO_ACCESS_TO_USER", http_status=http_status)
        if upper in _PERMANENT or upper in _V3_PORTAL_WIDE:
            return cls(text, portal_wide=upper in _PORTAL_WIDE or upper in _V3_PORTAL_WIDE, **kwargs)
        retryable = http_status is not None and http_status >= 500
        return cls(text, retryable=retryable, **kwargs)


class QueryLimitExceeded(BitrixError):
    """The portal's leaky bucket overflowed: slow down and retry."""


class OperatingTimeLimit(BitrixError):
    """The method's server-time budget is spent until `reset_at` (Unix seconds)."""

    reset_at: float | None = None


class TokenExpired(BitrixError):
    """The OAuth access token expired: refresh it and repeat the call."""


class TransportError(BitrixError):
    """No usable HTTP answer: timeout, refused connection, or a body that is not JSON."""


def _code_and_description(envelope: dict[str, Any]) -> tuple[str, str]:
    """The code and a one-line description, from a REST 1 or a REST 3.0 envelope."""
    error = envelope.get("error")
    if isinstance(error, dict):
        code = _text(error.get("code"))
        description = _text(error.get("message"))
        validation = error.get("validation")
        problems = [
            f"{_text(item.get('field'))}: {_text(item.get('message'))}".strip(": ")
            for item in (validation if isinstance(validation, list) else [])[:5]
            if isinstance(item, dict)
        ]
        if problems:
            description = "; ".join(filter(None, [description, *problems]))
    else:
        code = _text(error)
        description = _text(envelope.get("error_description"))
    return code[:MAX_CODE], _shorten(description)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())  # one line: no newlines from the portal in a log line


def _shorten(text: str) -> str:
    """Cut a long portal text at a word boundary and say so."""
    if len(text) <= MAX_DESCRIPTION:
        return text
    cut = text[:MAX_DESCRIPTION].rsplit(" ", 1)[0] or text[:MAX_DESCRIPTION]
    return f"{cut} … ({len(text)} characters)"
