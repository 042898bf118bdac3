"""Secrets never leave in text: configured secrets, webhook paths and token parameters."""

from __future__ import annotations

import logging

import pytest

from poller.redaction import UrlSecretFilter, redact, redact_urls


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POST /rest/1/s3cr3t/batch HTTP/1.1", "POST /rest/1/***/batch HTTP/1.1"),
        (
            "https://acme.bitrix24.com/rest/api/7/s3cr3t/timeman.record.list",
            "https://acme.bitrix24.com/rest/api/7/***/timeman.record.list",
        ),
        (
            "GET /oauth/token/?grant_type=refresh_token&client_secret=cs1&refresh_token=rt1 200",
            "GET /oauth/token/?grant_type=refresh_token&client_secret=***&refresh_token=*** 200",
        ),
        (
            "https://acme.bitrix24.com/rest/timeman.status?auth=tok",
            "https://acme.bitrix24.com/rest/timeman.status?auth=***",
        ),
        ("/rest/timeman.status and /rest/batch", "/rest/timeman.status and /rest/batch"),
    ],
)
def test_urls_lose_their_secrets_and_keep_the_rest(text: str, expected: str) -> None:
    assert redact_urls(text) == expected


def test_configured_secrets_are_hidden_longest_first() -> None:
    text = "tokens abc and abcdef, none of None"
    assert redact(text, ["abc", "abcdef", None, ""]) == "tokens *** and ***, none of None"


def test_the_filter_rewrites_a_record_that_carries_a_secret_and_leaves_others_alone() -> None:
    record = logging.LogRecord(
        "urllib3.connectionpool",
        logging.DEBUG,
        __file__,
        1,
        '"%s %s"',
        ("POST", "/rest/1/s3cr3t/batch"),
        None,
    )
    plain = logging.LogRecord(
        "urllib3.connectionpool", logging.DEBUG, __file__, 1, "Starting %s", ("x",), None
    )
    assert UrlSecretFilter().filter(record) and UrlSecretFilter().filter(plain)
    assert record.getMessage() == '"POST /rest/1/***/batch"'
    assert (plain.msg, plain.args) == ("Starting %s", ("x",))
