"""Every row of the reference's error table maps to an error that says what to do."""

from __future__ import annotations

import pytest

from poller.errors import BitrixError, OperatingTimeLimit, QueryLimitExceeded, TokenExpired


def synthetic_code(description: str) -> str:
    return "USER_NOT_FOUND" if description == "User not found" else "NO_ACCESS_TO_USER"


@pytest.mark.parametrize(
    ("status", "code", "description", "kind", "retryable", "per_user"),
    [
        (503, "QUERY_LIMIT_EXCEEDED", "Too many requests", QueryLimitExceeded, True, False),
        (429, "OPERATION_TIME_LIMIT", "Method is blocked", OperatingTimeLimit, True, False),
        (503, "OVERLOAD_LIMIT", "REST API is blocked", BitrixError, False, False),
        (401, "expired_token", "The access token provided has expired.", TokenExpired, True, False),
        (401, "NO_AUTH_FOUND", "Wrong authorization data", BitrixError, False, False),
        (401, "invalid_token", "The access token provided is invalid.", BitrixError, False, False),
        (401, "authorization_error", "", BitrixError, False, False),
        (403, "insufficient_scope", "The request requires higher privileges", BitrixError, False, False),
        (403, "ACCESS_DENIED", "Access denied", BitrixError, False, False),
        (403, "INVALID_CREDENTIALS", "Invalid request credentials", BitrixError, False, False),
        (410, "PORTAL_DELETED", "Portal was deleted", BitrixError, False, False),
        (404, "ERROR_METHOD_NOT_FOUND", "Method not found!", BitrixError, False, False),
        (400, "", "User not found", BitrixError, False, True),
        (400, "", "User does not have access to managing other users work time", BitrixError, False, True),
        (500, "INTERNAL_SERVER_ERROR", "Internal server error", BitrixError, True, False),
        (500, "ERROR_UNEXPECTED_ANSWER", "Server returned an unexpected response", BitrixError, True, False),
        (502, "SOMETHING_NEW", "", BitrixError, True, False),
        (400, "SOMETHING_NEW", "", BitrixError, False, False),
    ],
)
def test_an_error_envelope_becomes_a_typed_error(
    status: int, code: str, description: str, kind: type, retryable: bool, per_user: bool
) -> None:
    error = BitrixError.from_envelope(status, {"error": code, "error_description": description})
    assert type(error) is kind
    assert error.code == (code or synthetic_code(description))
    assert error.http_status == status
    assert error.retryable is retryable
    assert error.per_user is per_user
    assert f"HTTP {status}" in error.message
    assert (description or code) in error.message
