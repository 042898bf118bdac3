"""Every row of the reference's error table maps to an error that says what to do."""

from __future__ import annotations

import pytest

from poller.errors import BitrixError, OperatingTimeLimit, QueryLimitExceeded, TokenExpired


def synthetic_code(description: str) -> str:
    return "USER_NOT_FOUND" if description == "User not found" else "NO_ACCESS_TO_USER"


NO_ACCESS = "User does not have access to managing other users work time"


@pytest.mark.parametrize(
    ("status", "code", "description", "kind", "retryable", "per_user", "portal_wide"),
    [
        (503, "QUERY_LIMIT_EXCEEDED", "Too many requests", QueryLimitExceeded, True, False, False),
        (429, "OPERATION_TIME_LIMIT", "Method is blocked", OperatingTimeLimit, True, False, False),
        (503, "OVERLOAD_LIMIT", "REST API is blocked", BitrixError, False, False, True),
        (401, "expired_token", "The access token provided has expired.", TokenExpired, True, False, True),
        (401, "NO_AUTH_FOUND", "Wrong authorization data", BitrixError, False, False, True),
        (401, "invalid_token", "The access token provided is invalid.", BitrixError, False, False, True),
        (401, "authorization_error", "", BitrixError, False, False, True),
        (
            403,
            "insufficient_scope",
            "The request requires higher privileges",
            BitrixError,
            False,
            False,
            True,
        ),
        (403, "ACCESS_DENIED", "Access denied", BitrixError, False, False, True),
        (403, "INVALID_CREDENTIALS", "Invalid request credentials", BitrixError, False, False, True),
        (410, "PORTAL_DELETED", "Portal was deleted", BitrixError, False, False, True),
        (404, "ERROR_METHOD_NOT_FOUND", "Method not found!", BitrixError, False, False, True),
        (402, "PAYMENT_REQUIRED", "Subscription expired", BitrixError, False, False, True),
        (400, "invalid_grant", "Invalid refresh token", BitrixError, False, False, True),
        (400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", BitrixError, False, False, False),
        (400, "", "User not found", BitrixError, False, True, False),
        (400, "", NO_ACCESS, BitrixError, False, False, True),  # every user but the caller
        (500, "INTERNAL_SERVER_ERROR", "Internal server error", BitrixError, True, False, False),
        (
            500,
            "ERROR_UNEXPECTED_ANSWER",
            "Server returned an unexpected response",
            BitrixError,
            True,
            False,
            False,
        ),
        (502, "SOMETHING_NEW", "", BitrixError, True, False, False),
        (400, "SOMETHING_NEW", "", BitrixError, False, False, False),
    ],
)
def test_an_error_envelope_becomes_a_typed_error(
    status: int,
    code: str,
    description: str,
    kind: type,
    retryable: bool,
    per_user: bool,
    portal_wide: bool,
) -> None:
    error = BitrixError.from_envelope(status, {"error": code, "error_description": description})
    assert type(error) is kind
    assert error.code == (code or synthetic_code(description))
    assert error.http_status == status
    assert error.retryable is retryable
    assert error.per_user is per_user
    assert error.portal_wide is portal_wide
    assert f"HTTP {status}" in error.message
    assert (description or code) in error.message


def test_a_rest_3_error_object_gives_its_code_message_and_validation() -> None:
    envelope = {
        "error": {
            "code": "BITRIX_REST_V3_EXCEPTION_INVALIDFILTEREXCEPTION",
            "message": "Only one employee ID can be passed in a single request",
            "validation": [{"field": "filter", "message": "userId is required"}, "not an object"],
        }
    }
    error = BitrixError.from_envelope(400, envelope)
    assert type(error) is BitrixError
    assert (error.code, error.http_status, error.retryable, error.portal_wide) == (
        "BITRIX_REST_V3_EXCEPTION_INVALIDFILTEREXCEPTION",
        400,
        False,
        False,
    )
    assert error.message == (
        "HTTP 400 BITRIX_REST_V3_EXCEPTION_INVALIDFILTEREXCEPTION: "
        "Only one employee ID can be passed in a single request; filter: userId is required"
    )


def test_a_rest_3_missing_scope_hits_the_whole_portal() -> None:
    envelope = {"error": {"code": "BITRIX_REST_V3_EXCEPTION_INSUFFICIENTSCOPEEXCEPTION", "message": "scope"}}
    error = BitrixError.from_envelope(403, envelope)
    assert error.portal_wide is True
    assert error.retryable is False


def test_a_rest_3_access_denied_is_not_portal_wide() -> None:
    # Rights "according to subordination" let the caller read some users and not others.
    envelope = {"error": {"code": "BITRIX_REST_V3_EXCEPTION_ACCESSDENIEDEXCEPTION", "message": "denied"}}
    error = BitrixError.from_envelope(403, envelope)
    assert (error.portal_wide, error.per_user, error.retryable) == (False, False, False)


def test_rest_3_errors_of_the_server_are_retryable_and_odd_shapes_do_not_crash() -> None:
    assert BitrixError.from_envelope(503, {"error": {"code": "X", "message": None}}).retryable is True
    odd = BitrixError.from_envelope(400, {"error": {"validation": {"not": "a list"}}})
    assert odd.message == "HTTP 400 error without a description"


def test_a_long_or_multiline_portal_text_is_cut_at_a_word_and_kept_on_one_line() -> None:
    description = "word " * 200 + "\nsecond line"
    error = BitrixError.from_envelope(500, {"error": "X" * 300, "error_description": description})
    assert "\n" not in error.message
    assert len(error.code) == 100
    assert error.message.endswith("word … (1011 characters)")
    assert len(error.message) < 550
