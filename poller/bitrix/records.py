"""`timeman.record.list` (REST 3.0): each user's work time records between two dates.

The method takes ONE user per call and pages by 50 without a total, so a short page ends a
user. Calls go 50 to a REST 3.0 `batch` request (a JSON array of `{method, query}`, answered
`{"result": [...]}` in the same order): one month of 50 users is one request, and users
with more than 50 records get their next pages in the next batch. A portal that refuses
the batch is remembered per client and gets single calls from then on. A portal that cannot
serve the method at all (no REST 3.0, no right, no scope) ends the fetch with one
`RecordsUnavailable` naming what is missing.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from poller.bitrix.client import PortalClient
from poller.bitrix.limits import LeakyBucket
from poller.errors import V3_PREFIX, BitrixError, OperatingTimeLimit, QueryLimitExceeded, TokenExpired

logger = logging.getLogger(__name__)

RECORDS_METHOD = "timeman.record.list"
BATCH_METHOD = "batch"
BATCH_LIMIT = 50
PAGE_SIZE = 50
FIELDS = ("id", "userId", "startTime", "endTime", "duration", "breakLength", "state", "isApproved")
# A local date exists somewhere between UTC+14 and UTC-12: the window covers it everywhere.
EARLIEST_ZONE = timezone(timedelta(hours=14))
LATEST_ZONE = timezone(timedelta(hours=-12))

UsersDone = Callable[[dict[int, list[dict[str, Any]]]], None]

# Whether a client's portal took the REST 3.0 batch: True once it answered one, False once it
# refused one; absent while untried. Kept beside the client, not in it, so that the client
# stays about calls and limits only; it lives as long as the client does.
_batch_support: weakref.WeakKeyDictionary[PortalClient, bool] = weakref.WeakKeyDictionary()


class RecordsUnavailable(BitrixError):
    """The portal cannot serve timeman.record.list: REST 3.0, the right or the scope is missing."""


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


def record_window(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The instants whose local date lies in [date_from, date_to] in at least one time zone.

    Users of one portal live in different zones, and an instant names a local date only
    with a zone: from `date_from` 00:00 at UTC+14 to the end of `date_to` at UTC-12 takes
    every local day of the range, whatever the user's zone, and up to a day more at each end.
    """
    start = datetime.combine(date_from, time(), EARLIEST_ZONE)
    end = datetime.combine(date_to + timedelta(days=1), time(), LATEST_ZONE)
    return start, end


def record_query(user_id: int, window: tuple[datetime, datetime], page: int) -> dict[str, Any]:
    """The `timeman.record.list` query for one page of one user's records in `window`."""
    start, end = window
    return {
        "filter": [
            ["userId", user_id],
            ["startTime", ">=", start.isoformat()],
            ["startTime", "<", end.isoformat()],
        ],
        "select": list(FIELDS),
        "order": {"startTime": "ASC", "id": "ASC"},
        "pagination": {"page": page, "limit": PAGE_SIZE},
    }


def batch_support(client: PortalClient) -> bool | None:
    """True when the client's portal answered a REST 3.0 batch, False when it refused one."""
    return _batch_support.get(client)


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
        use_batch = len(self.pending) > 1 and _batch_support.get(self.client) is not False
        size = min(BATCH_LIMIT if use_batch else 1, len(self.pending))
        queries = [self.pending.popleft() for _ in range(size)]
        if self.pacer is not None:
            self.pacer.acquire()
        try:
            answers = self._call_batch(queries) if use_batch else [self._call_one(queries[0])]
        except _BatchRefused as refused:
            _batch_support[self.client] = False
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
        return _items(body.get("result"), self.client, user_id)

    def _call_batch(self, queries: list[tuple[int, int]]) -> list[list[dict[str, Any]] | BitrixError]:
        calls = [
            {"method": RECORDS_METHOD, "query": record_query(user_id, self.window, page)}
            for user_id, page in queries
        ]
        self.client.limits.check(RECORDS_METHOD, self.client.portal.host)  # blocked: not even a batch
        untried = _batch_support.get(self.client) is None
        try:
            body = self.client.call_v3(BATCH_METHOD, calls)
        except (QueryLimitExceeded, OperatingTimeLimit, TokenExpired):
            raise
        except BitrixError as exc:
            if untried and not exc.retryable:
                raise _BatchRefused(exc.message) from None
            raise
        results = body.get("result")
        if not isinstance(results, list) or len(results) != len(queries):
            what = f"a list of {len(results)}" if isinstance(results, list) else "no list"
            problem = f"answered {what} for {len(queries)} calls"
            if untried:
                raise _BatchRefused(problem)
            raise BitrixError(
                f"portal {self.client.portal.host}: batch {problem}", code="BAD_RESPONSE", http_status=200
            )
        _batch_support[self.client] = True
        answers: list[list[dict[str, Any]] | BitrixError] = []
        for (user_id, _), element in zip(queries, results, strict=True):
            if isinstance(element, dict) and element.get("error") not in (None, ""):
                error = BitrixError.from_envelope(None, element)
                if isinstance(error, OperatingTimeLimit):
                    error.reset_at = self.client.limits.block(RECORDS_METHOD)
                answers.append(error)
            else:
                answers.append(_items(element, self.client, user_id))
        return answers

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
        unavailable = _unavailable(self.client, error, self.anything_read)
        if unavailable is not None:
            return unavailable
        return error if error.portal_wide or isinstance(error, OperatingTimeLimit) else None

    def _request_failed(self, queries: list[tuple[int, int]], exc: BitrixError) -> BitrixError | None:
        """A request that failed as a whole: its users fail; the portal's fetch may end."""
        unavailable = _unavailable(self.client, exc, self.anything_read)
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


class _BatchRefused(Exception):
    """The portal's first REST 3.0 batch came back refused or unreadable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _items(result: Any, client: PortalClient, user_id: int) -> list[dict[str, Any]] | BitrixError:
    """The records of one answer's `result` (`{"items": [...]}`), or the error it stands for."""
    items = result.get("items") if isinstance(result, dict) else None
    if isinstance(items, list) and all(isinstance(item, dict) for item in items):
        return items
    return BitrixError(
        f"portal {client.portal.host}: {RECORDS_METHOD} answer for user {user_id} has no list of items",
        code="BAD_RESPONSE",
        http_status=200,
        retryable=True,
    )


_MISSING_METHOD = {"ERROR_METHOD_NOT_FOUND", V3_PREFIX + "UNKNOWNMETHODEXCEPTION"}
_MISSING_SCOPE = {"INSUFFICIENT_SCOPE", V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION"}
_MISSING_RIGHT = {"ACCESS_DENIED", V3_PREFIX + "ACCESSDENIEDEXCEPTION"}


def _unavailable(client: PortalClient, error: BitrixError, anything_read: bool) -> RecordsUnavailable | None:
    """The one line for an error that says the portal cannot serve the method, else None.

    A missing right is the portal's only while nothing was read: with rights "by
    subordination", one user can be refused while the others are read.
    """
    code = error.code.upper()
    name = client.portal.name
    what = f"{error.code or 'no code'}, HTTP {error.http_status}" if error.http_status else error.code
    if code in _MISSING_METHOD:
        message = (
            f"portal {name}: {RECORDS_METHOD} is not available (REST 3.0 missing: {error.code}); "
            "backfill needs a Bitrix24 build with REST 3.0"
        )
    elif code in _MISSING_SCOPE:
        message = (
            f"portal {name}: {RECORDS_METHOD} refused ({what}): the webhook or app lacks the "
            "timeman scope; add it to read work time records"
        )
    elif code in _MISSING_RIGHT and not anything_read:
        message = (
            f"portal {name}: {RECORDS_METHOD} refused ({what}): the webhook's or app's user lacks "
            "the right to read work time records (read all records, or by subordination)"
        )
    else:
        return None
    return RecordsUnavailable(message, code=error.code, http_status=error.http_status, portal_wide=True)
