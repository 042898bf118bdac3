"""`timeman.record.list` (REST 3.0): each user's work time records between two dates.

The method takes ONE user per call and pages by 50 without a total, so a short page ends a
user. Calls go 50 to a REST 3.0 `batch` request (poller.bitrix.record_batch): one month of
50 users is one request, and users with more than 50 records get their next pages in the
next batch. A portal that cannot serve the method at all (no REST 3.0, no right, no scope)
ends the fetch with one `RecordsUnavailable` naming what is missing
(poller.bitrix.record_answers). The queries are built in poller.bitrix.record_query.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from poller.bitrix.client import PortalClient
from poller.bitrix.limits import LeakyBucket
from poller.bitrix.record_answers import RecordsUnavailable, record_items, records_unavailable
from poller.bitrix.record_batch import BATCH_LIMIT, BatchRefused, batch_refused, batch_support, call_batch
from poller.bitrix.record_query import PAGE_SIZE, RECORDS_METHOD, record_query, record_window
from poller.errors import BitrixError, OperatingTimeLimit

__all__ = [
    "PAGE_SIZE",
    "RecordsFetched",
    "RecordsUnavailable",
    "batch_support",
    "fetch_records",
    "record_query",
    "record_window",
]

logger = logging.getLogger(__name__)

UsersDone = Callable[[dict[int, list[dict[str, Any]]]], None]


@dataclass
class RecordsFetched:
    """What `fetch_records` did.

    `done`: users whose every page was read, in the order they finished. `failed`: users
    that could not be read, with the error. `portal_error`: the error that ended the fetch
    early (the users left are in `failed` with it), None when every user was tried.
    `stopped`: `stop` was set, so the users left were neither read nor failed. `items`: each
    done user's records as the portal sent them, kept only without an `on_users_done`.
    """

    done: list[int] = field(default_factory=list)
    failed: dict[int, BitrixError] = field(default_factory=dict)
    portal_error: BitrixError | None = None
    stopped: bool = False
    items: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def fetch_records(
    client: PortalClient,
    user_ids: Sequence[int],
    date_from: date,
    date_to: date,
    *,
    on_users_done: UsersDone | None = None,
    rate_share: float = 1.0,
    stop: threading.Event | None = None,
) -> RecordsFetched:
    """Fetch every record of each user whose start lies in `record_window(date_from, date_to)`.

    1. Users are read in order, 50 calls per REST 3.0 batch request; a user's next page
       goes first into the next request, so users finish in about the order given.
    2. A user is done at its first page shorter than 50. After each request that finished
       users, `on_users_done({user_id: items})` gets their records (ordered by start, as the
       portal sent them), before the next request: one call per request lets the caller
       store them in one transaction. An exception it raises ends the fetch and reaches
       the caller.
    3. `rate_share` below 1 paces the requests to that share of the portal's rate, leaving
       the rest of its bucket to the live poll; `stop` set ends the fetch before the next
       request.
    """
    fetch = _Fetch(client, date_from, date_to, on_users_done, rate_share)
    for user_id in dict.fromkeys(user_ids):
        fetch.pending.append((user_id, 1))
    while fetch.pending:
        if stop is not None and stop.is_set():
            fetch.result.stopped = True
            break
        error = fetch.next_request()
        if error is not None:
            fetch.end(error)
            break
    return fetch.result


class _Fetch:
    """The state of one `fetch_records`: queries left, pages read so far, the outcome."""

    def __init__(
        self,
        client: PortalClient,
        date_from: date,
        date_to: date,
        on_users_done: UsersDone | None,
        rate_share: float,
    ) -> None:
        self.client = client
        self.window = record_window(date_from, date_to)
        self.on_users_done = on_users_done
        self.finished: dict[int, list[dict[str, Any]]] = {}  # by the request in progress
        self.pending: deque[tuple[int, int]] = deque()  # (user id, page)
        self.pages: dict[int, list[dict[str, Any]]] = {}
        self.result = RecordsFetched()
        self.anything_read = False
        self.pacer: LeakyBucket | None = None
        if 0 < rate_share < 1:
            rate = client.bucket.rate * rate_share
            self.pacer = LeakyBucket(rate, 1, headroom=0, clock=client.clock)

    def next_request(self) -> BitrixError | None:
        """Send the next request; return the error that ends the portal's fetch, if any."""
        use_batch = len(self.pending) > 1 and batch_support(self.client) is not False
        size = min(BATCH_LIMIT if use_batch else 1, len(self.pending))
        queries = [self.pending.popleft() for _ in range(size)]
        if self.pacer is not None:
            self.pacer.acquire()
        try:
            answers = (
                call_batch(self.client, self.window, queries) if use_batch else [self._call_one(queries[0])]
            )
        except BatchRefused as refused:
            batch_refused(self.client)
            logger.info(
                "portal %s: the REST 3.0 batch was refused (%s); single calls from now on",
                self.client.portal.name,
                refused.reason,
            )
            self.pending.extendleft(reversed(queries))
            return None
        except BitrixError as exc:
            return self._request_failed(queries, exc)
        self.anything_read = self.anything_read or any(isinstance(a, list) for a in answers)
        following: list[tuple[int, int]] = []
        stop: BitrixError | None = None
        for (user_id, page), answer in zip(queries, answers, strict=True):
            if isinstance(answer, BitrixError):
                ends = self._user_failed(user_id, answer)
                stop = stop or ends
            elif self._add_page(user_id, page, answer):
                following.append((user_id, page + 1))
        self.pending.extendleft(reversed(following))
        finished, self.finished = self.finished, {}
        if finished and self.on_users_done is not None:
            self.on_users_done(finished)
        elif finished:
            self.result.items.update(finished)
        return stop

    def _call_one(self, query: tuple[int, int]) -> list[dict[str, Any]] | BitrixError:
        user_id, page = query
        body = self.client.call_v3(RECORDS_METHOD, record_query(user_id, self.window, page))
        return record_items(body.get("result"), self.client, user_id)

    def _add_page(self, user_id: int, page: int, items: list[dict[str, Any]]) -> bool:
        """Keep a page of `user_id`; True when another page must be read."""
        kept = self.pages.setdefault(user_id, [])
        seen = {item.get("id") for item in kept}
        new = [item for item in items if item.get("id") not in seen]
        if len(items) >= PAGE_SIZE and not new:
            self._user_failed(
                user_id,
                BitrixError(
                    f"portal {self.client.portal.name}: {RECORDS_METHOD} page {page} of user {user_id} "
                    "repeats the records before it (paging ignored?)",
                    code="BAD_RESPONSE",
                    http_status=200,
                ),
            )
            return False
        kept.extend(new)
        if len(items) >= PAGE_SIZE:
            return True
        self.finished[user_id] = self.pages.pop(user_id)
        self.result.done.append(user_id)
        return False

    def _user_failed(self, user_id: int, error: BitrixError) -> BitrixError | None:
        """Record a user's error; return the error instead when it ends the portal's fetch."""
        self.pages.pop(user_id, None)
        self.result.failed[user_id] = error
        unavailable = records_unavailable(self.client, error, self.anything_read)
        if unavailable is not None:
            return unavailable
        return error if error.portal_wide or isinstance(error, OperatingTimeLimit) else None

    def _request_failed(self, queries: list[tuple[int, int]], exc: BitrixError) -> BitrixError | None:
        """A request that failed as a whole: its users fail; the portal's fetch may end."""
        unavailable = records_unavailable(self.client, exc, self.anything_read)
        if unavailable is not None or exc.portal_wide or isinstance(exc, OperatingTimeLimit):
            self.pending.extendleft(reversed(queries))
            return unavailable or exc
        if exc.http_status is None:  # unreachable: the next request will not fare better
            self.pending.extendleft(reversed(queries))
            return exc
        for user_id, _ in queries:
            self._user_failed(user_id, exc)
        return None

    def end(self, error: BitrixError) -> None:
        """End the fetch with `error`: every user not done yet fails with it."""
        self.result.portal_error = error
        for user_id, _ in self.pending:
            self.result.failed.setdefault(user_id, error)
            self.pages.pop(user_id, None)
        self.pending.clear()
