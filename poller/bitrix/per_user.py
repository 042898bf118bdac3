"""One method called for many users, 50 sub-calls per `batch` request, with the errors sorted.

A sub-call's own error ("User not found") stays with its user; one that would hit every user
(a missing scope or right, bad credentials, the method's time budget spent) is raised at
once, so a refresh does not spend a request per 50 users on answers it knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from poller.bitrix.client import PortalClient
from poller.bitrix.methods import BATCH_LIMIT, call_per_user_batch
from poller.errors import BitrixError, OperatingTimeLimit


@dataclass
class PerUser:
    """Each user's result, or the error that user's sub-call got."""

    results: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, BitrixError] = field(default_factory=dict)


def fetch_per_user(client: PortalClient, method: str, user_ids: Sequence[int]) -> PerUser:
    """Call `method?USER_ID=<id>` for every user in batches of 50; raise a portal-wide error."""
    answers = PerUser()
    for start in range(0, len(user_ids), BATCH_LIMIT):
        chunk = user_ids[start : start + BATCH_LIMIT]
        client.limits.check(method, client.portal.host)  # blocked: not even a batch
        _merge(client, method, chunk, call_per_user_batch(client, chunk, method), answers)
    return answers


def _merge(
    client: PortalClient, method: str, chunk: Sequence[int], result: dict[str, Any], into: PerUser
) -> None:
    results, errors = _section(result.get("result")), _section(result.get("result_error"))
    for timing in _section(result.get("result_time")).values():
        client.limits.note(method, timing)
    for user_id in chunk:
        key = f"u{user_id}"
        if key in results and key not in errors:
            into.results[user_id] = results[key]
            continue
        envelope = errors.get(key)
        if not isinstance(envelope, dict):
            into.errors[user_id] = BitrixError(
                f"portal {client.portal.name}: batch gave no {method} answer for user {user_id}",
                code="NO_ANSWER",
                retryable=True,
            )
            continue
        error = BitrixError.from_envelope(None, envelope)
        if isinstance(error, OperatingTimeLimit):
            error.reset_at = client.limits.block(method)
        if error.portal_wide or isinstance(error, OperatingTimeLimit):
            error.reword(f"portal {client.portal.name}: {method}: {error.message}")
            raise error
        into.errors[user_id] = error


def _section(value: Any) -> dict[str, Any]:
    """A batch section: Bitrix24 serializes an empty one as `[]`."""
    return value if isinstance(value, dict) else {}
