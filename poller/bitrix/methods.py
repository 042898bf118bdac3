"""The Bitrix24 methods timeman-poller uses, over a PortalClient: every one is a fetch_*.

`fetch_statuses` stops a portal's cycle at the first answer that would hit every user
(missing right or scope, bad credentials, a blocked method, an unreachable portal):
the remaining users are marked failed with that one error instead of spending a request
per 50 of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from poller.bitrix.client import PortalClient
from poller.bitrix.listed_rows import ListedRows
from poller.config import HttpConfig, PortalConfig, parse_domain, parse_webhook_url
from poller.errors import BitrixError, ConfigError, OperatingTimeLimit, Stopped, TransportError

logger = logging.getLogger(__name__)

BATCH_LIMIT = 50
BATCHES_PER_CHUNK = 10
STATUS_METHOD = "timeman.status"


@dataclass
class StatusBatch:
    """What `timeman.status` gave for a set of users: a result or an error per user.

    `portal_error` is the one portal-level error that ended the fetch early (None when every
    batch was tried); each user not answered by then has it in `errors` too. `not_polled`:
    the users left unasked because the caller's `stop` was set (neither answered nor failed).
    """

    results: dict[int, Any] = field(default_factory=dict)
    answered_at: dict[int, datetime] = field(default_factory=dict)
    errors: dict[int, BitrixError] = field(default_factory=dict)
    portal_error: BitrixError | None = None
    not_polled: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results) + len(self.errors)


def fetch_statuses(
    client: PortalClient,
    user_ids: Sequence[int],
    on_chunk: Callable[[StatusBatch], None] | None = None,
    *,
    batches_per_chunk: int = BATCHES_PER_CHUNK,
    stop: threading.Event | None = None,
) -> StatusBatch:
    """Fetch `timeman.status` of every user, 50 per batch request.

    Without `on_chunk`, return every user's outcome at once. With it, hand over the outcome
    in parts, in order: one part per `batches_per_chunk` batches and a last part with the
    rest (and `portal_error`, if the fetch ended early), so a caller can store a large
    portal as it arrives and memory does not grow with the portal. The parts are not kept:
    the StatusBatch returned then holds only `portal_error` and `not_polled`. An exception
    raised by `on_chunk` ends the fetch and reaches the caller.

    `stop` set (the daemon is shutting down) starts no new batch: the batch in flight ends,
    and the users left are listed in `not_polled` of the last part.
    """
    part = StatusBatch()
    for number, start in enumerate(range(0, len(user_ids), BATCH_LIMIT), 1):
        if stop is not None and stop.is_set():
            part.not_polled = list(user_ids[start:])
            logger.info(
                "portal %s: stopping: %d of %d users not polled",
                client.portal.name,
                len(part.not_polled),
                len(user_ids),
            )
            break
        chunk = user_ids[start : start + BATCH_LIMIT]
        ended = _fetch_chunk(client, chunk, single=len(user_ids) == 1, into=part)
        if ended is not None:
            part.portal_error = ended
            unanswered = (u for u in user_ids[start:] if u not in part.results and u not in part.errors)
            part.errors.update((u, ended) for u in unanswered)
            break
        _log_progress(client, start + len(chunk), len(user_ids))
        if on_chunk is not None and number % batches_per_chunk == 0:
            on_chunk(part)
            part = StatusBatch()
    if on_chunk is None:
        return part
    if len(part) or part.portal_error is not None or part.not_polled:
        on_chunk(part)
    return StatusBatch(portal_error=part.portal_error, not_polled=part.not_polled)


def _fetch_chunk(
    client: PortalClient, chunk: Sequence[int], *, single: bool, into: StatusBatch
) -> BitrixError | None:
    """Fetch one batch into `into`; return the error that should end the portal's fetch."""
    try:
        if single:
            body = client.call(STATUS_METHOD, {"USER_ID": chunk[0]})
            into.results[chunk[0]] = body.get("result")
            stop = None
        else:
            client.limits.check(STATUS_METHOD, client.portal.host)  # blocked: not even a batch
            stop = _merge_batch(client, chunk, call_per_user_batch(client, chunk), into)
    except BitrixError as exc:
        if exc.per_user and len(chunk) == 1:
            into.errors[chunk[0]] = exc
            return None
        if exc.portal_wide or not _portal_still_answers(exc):
            return exc
        into.errors.update((user_id, exc) for user_id in chunk)
        return None
    answered = client.clock.now()
    into.answered_at.update((u, answered) for u in chunk if u in into.results)
    return stop


def _portal_still_answers(exc: BitrixError) -> bool:
    """Whether the next batch is worth trying after this one failed for good.

    A portal that answered, with a transient error or a broken body, may answer the next
    batch; one that is unreachable or blocked the method will not.
    """
    if isinstance(exc, OperatingTimeLimit) or exc.http_status is None:
        return False
    return exc.retryable or exc.code == "BAD_RESPONSE"


def call_per_user_batch(
    client: PortalClient, user_ids: Sequence[int], method: str = STATUS_METHOD
) -> dict[str, Any]:
    """One `batch` of `method?USER_ID=<id>` for each of `user_ids` (at most 50): its result object,
    keyed `u<id>`; an answer without one is a retryable BAD_RESPONSE."""
    commands = {f"u{user_id}": f"{method}?USER_ID={user_id}" for user_id in user_ids}
    body = client.call("batch", {"halt": 0, "cmd": commands})
    result = body.get("result")
    if not isinstance(result, dict):
        raise TransportError(
            f"portal {client.portal.host}: batch answer has no result object",
            code="BAD_RESPONSE",
            http_status=200,
            retryable=True,
        )
    return result


def _merge_batch(
    client: PortalClient, user_ids: Sequence[int], result: dict[str, Any], into: StatusBatch
) -> BitrixError | None:
    """Sort a batch's sub-answers into `into`; return the first error that hits the whole portal."""
    stop: BitrixError | None = None
    no_answer = f"portal {client.portal.host}: batch gave no answer"
    for user_id, answer, error in sub_answers(client, STATUS_METHOD, user_ids, result, no_answer):
        if error is None:
            into.results[user_id] = answer
            continue
        into.errors[user_id] = error
        if stop is None and (error.portal_wide or isinstance(error, OperatingTimeLimit)):
            stop = error
    return stop


def sub_answers(
    client: PortalClient, method: str, user_ids: Sequence[int], result: dict[str, Any], no_answer: str
) -> Iterator[tuple[int, Any, BitrixError | None]]:
    """Each user's part of one `batch` answer, in order: (user, result, None) or (user, None, error).

    The error is the one the sub-call got (an OperatingTimeLimit blocks `method` at once), or a
    retryable NO_ANSWER saying `no_answer` + " for user <id>". The status fetch and
    `fetch_per_user` read the same answer; they differ only in what a portal-wide error does next.
    """
    results = _section(result.get("result"))
    errors = _section(result.get("result_error"))
    for timing in _section(result.get("result_time")).values():
        client.limits.note(method, timing)
    for user_id in user_ids:
        key = f"u{user_id}"
        if key in results and key not in errors:
            yield user_id, results[key], None
            continue
        envelope = errors.get(key)
        if isinstance(envelope, dict):
            error = BitrixError.from_envelope(None, envelope)
            if isinstance(error, OperatingTimeLimit):
                error.reset_at = client.limits.block(method)
        else:
            error = BitrixError(f"{no_answer} for user {user_id}", code="NO_ANSWER", retryable=True)
        yield user_id, None, error


def _section(value: Any) -> dict[str, Any]:
    """A batch section: Bitrix24 serializes an empty one as `[]`."""
    return value if isinstance(value, dict) else {}


def _log_progress(client: PortalClient, done: int, total: int) -> None:
    """On a long cycle (over 10 batches, at least 5 s at 2 requests/s), say how far it is."""
    step = BATCHES_PER_CHUNK * BATCH_LIMIT
    if total > step and (done % step == 0 or done == total):
        logger.info("portal %s: %d of %d users fetched", client.portal.name, done, total)


def fetch_users(client: PortalClient, *, active_only: bool = False) -> ListedRows:
    """List the portal's users with `user.get`, page by page, every field as the portal sent it.

    Fields used downstream: ID, NAME, LAST_NAME, EMAIL, WORK_POSITION, UF_DEPARTMENT,
    ACTIVE, TIME_ZONE, USER_TYPE. Rows without a numeric ID are skipped with a warning.
    """
    params: dict[str, Any] = {"SORT": "ID", "ORDER": "ASC"}
    if active_only:
        params["FILTER"] = {"ACTIVE": True}
    return _rows_with_ids(client, "user.get", params)


def fetch_active_user_ids(client: PortalClient) -> list[int]:
    """The ids of all active users, sorted."""
    return sorted({int(user["ID"]) for user in fetch_users(client, active_only=True)})


def fetch_departments(client: PortalClient) -> ListedRows:
    """List the portal's departments with `department.get` (ID, NAME, PARENT, UF_HEAD)."""
    return _rows_with_ids(client, "department.get", {"SORT": "ID", "ORDER": "ASC"})


def _rows_with_ids(client: PortalClient, method: str, params: dict[str, Any]) -> ListedRows:
    rows = ListedRows()
    for row in _pages(client, method, params):
        if isinstance(row, dict) and str(row.get("ID", "")).isdigit():
            rows.append(row)
        else:
            logger.warning("portal %s: %s row without a valid ID skipped", client.portal.name, method)
    return rows


def _pages(client: PortalClient, method: str, params: dict[str, Any]) -> Iterator[Any]:
    """Every row of a paged list method, following `next` while it moves forward.

    Once the client's `stop` is set no page is asked for: Stopped (a partial list is no list).
    """
    start = 0
    while True:
        if client.stop is not None and client.stop.is_set():
            raise Stopped(f"portal {client.portal.name}: stopping: {method} not listed to its end")
        body = client.call(method, {**params, "start": start})
        page = body.get("result") or []
        if not isinstance(page, list):
            raise TransportError(
                f"portal {client.portal.host}: {method} result is not a list",
                code="BAD_RESPONSE",
                http_status=200,
            )
        yield from page
        following = body.get("next")
        if not isinstance(following, int | str) or not str(following).isdigit():
            return
        if int(following) <= start:
            logger.warning("portal %s: %s paging did not move forward; stopped", client.portal.name, method)
            return
        start = int(following)


def get_timekeeping_status(
    url: str,
    userid: int | str | None = None,
    token: str | None = None,
    *,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Call `timeman.status` once and return the whole parsed JSON answer.

    OpenIntegrations' GetTimekeepingStatus: `url` is an incoming-webhook URL, or, when
    `token` is given, the portal's address; an empty `userid` means the caller. Errors are
    raised as BitrixError; the answer of a refused call is not returned.
    """
    if token:
        portal = PortalConfig(name="cli", base_url=parse_domain(url, "--url"), users=(1,), access_token=token)
    else:
        base_url, path = parse_webhook_url(url, "--url")
        portal = PortalConfig(name="cli", base_url=base_url, webhook_path=path, users=(1,))
    params: dict[str, Any] = {}
    if userid not in (None, ""):
        try:
            params["USER_ID"] = int(str(userid))
        except ValueError:
            raise ConfigError(f"--userid: {userid!r} is not a user id (a positive integer)") from None
    client = PortalClient(portal, session or requests.Session(), HttpConfig(max_retries=0))
    return client.call(STATUS_METHOD, params)
