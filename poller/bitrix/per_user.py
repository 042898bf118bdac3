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
from poller.bitrix.methods import BATCH_LIMIT, call_per_user_batch, sub_answers
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
    no_answer = f"portal {client.portal.name}: batch gave no {method} answer"
    for user_id, answer, error in sub_answers(client, method, chunk, result, no_answer):
        if error is None:
            into.results[user_id] = answer
            continue
        if error.portal_wide or isinstance(error, OperatingTimeLimit):
            error.reword(f"portal {client.portal.name}: {method}: {error.message}")
            raise error
        into.errors[user_id] = error
