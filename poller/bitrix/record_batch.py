"""Record calls 50 to a REST 3.0 `batch` request, and whether a client's portal takes one.

A batch is a JSON array of `{method, query}`, answered `{"result": [...]}` in the same order.
A portal that refuses its first batch (or answers it unreadably) is remembered per client and
gets single calls from then on.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any

from poller.bitrix.client import PortalClient
from poller.bitrix.record_answers import record_items
from poller.bitrix.record_query import RECORDS_METHOD, record_query
from poller.errors import BitrixError, OperatingTimeLimit, QueryLimitExceeded, TokenExpired

BATCH_METHOD = "batch"
BATCH_LIMIT = 50

# Whether a client's portal took the REST 3.0 batch: True once it answered one, False once it
# refused one; absent while untried. Kept beside the client, not in it, so that the client
# stays about calls and limits only; it lives as long as the client does.
_batch_support: weakref.WeakKeyDictionary[PortalClient, bool] = weakref.WeakKeyDictionary()


class BatchRefused(Exception):
    """The portal's first REST 3.0 batch came back refused or unreadable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def batch_support(client: PortalClient) -> bool | None:
    """True when the client's portal answered a REST 3.0 batch, False when it refused one."""
    return _batch_support.get(client)


def batch_refused(client: PortalClient) -> None:
    """Remember that the client's portal refused a batch: single calls from now on."""
    _batch_support[client] = False


def call_batch(
    client: PortalClient, window: tuple[datetime, datetime], queries: list[tuple[int, int]]
) -> list[list[dict[str, Any]] | BitrixError]:
    """Ask for each (user id, page) of `queries` in one batch; each answer is items or an error.

    Raises BatchRefused when an untried portal refuses the batch, and the BitrixError of a
    request that failed as a whole.
    """
    calls = [
        {"method": RECORDS_METHOD, "query": record_query(user_id, window, page)} for user_id, page in queries
    ]
    client.limits.check(RECORDS_METHOD, client.portal.host)  # blocked: not even a batch
    untried = _batch_support.get(client) is None
    try:
        body = client.call_v3(BATCH_METHOD, calls)
    except (QueryLimitExceeded, OperatingTimeLimit, TokenExpired):
        raise
    except BitrixError as exc:
        if untried and not exc.retryable:
            raise BatchRefused(exc.message) from None
        raise
    results = body.get("result")
    if not isinstance(results, list) or len(results) != len(queries):
        what = f"a list of {len(results)}" if isinstance(results, list) else "no list"
        problem = f"answered {what} for {len(queries)} calls"
        if untried:
            raise BatchRefused(problem)
        raise BitrixError(
            f"portal {client.portal.host}: batch {problem}", code="BAD_RESPONSE", http_status=200
        )
    _batch_support[client] = True
    answers: list[list[dict[str, Any]] | BitrixError] = []
    for (user_id, _), element in zip(queries, results, strict=True):
        if isinstance(element, dict) and element.get("error") not in (None, ""):
            error = BitrixError.from_envelope(None, element)
            if isinstance(error, OperatingTimeLimit):
                error.reset_at = client.limits.block(RECORDS_METHOD)
            answers.append(error)
        else:
            answers.append(record_items(element, client, user_id))
    return answers
