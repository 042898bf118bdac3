"""Errors of timeman-poller: the CLI shows these as one line; anything else is a bug."""

from __future__ import annotations

from typing import Any


class PollerError(Exception):
    """Base class of every error the tool reports without a traceback."""


class ConfigError(PollerError):
    """The configuration file or a command-line value is wrong."""


class StorageError(PollerError):
    """The database could not be reached or written."""


class BitrixError(PollerError):
    """Bitrix24 (or the way to it) answered with an error.

    `code` is Bitrix24's error code ("" when the portal sent none), `http_status` the HTTP
    status (None when no answer came), `retryable` whether repeating the same call later can
    succeed, and `per_user` whether the error concerns one USER_ID rather than the portal.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        http_status: int | None = None,
        retryable: bool = False,
        per_user: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.per_user = per_user

    @classmethod
    def from_envelope(cls, http_status: int | None, envelope: dict[str, Any]) -> BitrixError:
        """Build the matching error from `{"error": ..., "error_description": ...}`.

        Bitrix24 builds disagree on statuses, so the code is matched first, then the
        description (the "User not found" answer has an empty code), then the status.
        """
        code = str(envelope.get("error") or "")
        description = str(envelope.get("error_description") or "")
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
        if code == "expired_token":
            return TokenExpired(text, retryable=True, **kwargs)
        if upper in {"INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER"}:
            return cls(text, retryable=True, **kwargs)
        # These two come with an empty code; name them so poll_errors.code can be grouped by.
        if "user not found" in lowered:
            return cls(text, per_user=True, code=code or "USER_NOT_FOUND", http_status=http_status)
        if "access to managing other users" in lowered:
            return cls(text, per_user=True, code=code or "NO_ACCESS_TO_USER", http_status=http_status)
        if upper in {
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
            "ERROR_BATCH_LENGTH_EXCEEDED",
        }:
            return cls(text, **kwargs)
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
