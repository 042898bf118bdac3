"""REST 3.0 (`/rest/api/...`): `timeman.record.list` and the batch, as the reference describes.

Filters are arrays of conditions (`["field", "op", value]` or `["field", value]`), ANDed; the
filter must name exactly one `userId`; `startTime` takes `=`, `>`, `>=`, `<`, `<=`, `between`.
Pages hold at most 50 items and carry no total: a short page is the last. Errors use the
REST 3.0 envelope `{"error": {"code", "message"}}`. Inferred where the reference is silent:
a failed batch element is that envelope, and a naive startTime is read as UTC.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from poller.emulator.methods import BATCH_LIMIT, OPERATION_TIME_LIMIT
from poller.emulator.wire import Answer, v3_error

if TYPE_CHECKING:
    from poller.emulator.server import Emulator
    from poller.emulator.world import Record

PREFIX = "BITRIX_REST_V3_EXCEPTION_"
PAGE_LIMIT = 50
FIELDS = ("id", "userId", "startTime", "endTime", "duration", "breakLength", "state", "isApproved")
ORDER_FIELDS = ("id", "userId", "startTime", "endTime", "duration")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_SORT_KEYS: dict[str, Callable[[Record], Any]] = {
    "id": lambda r: r.id,
    "userId": lambda r: r.user_id,
    "startTime": lambda r: r.start_time,
    "endTime": lambda r: (r.end_time is not None, r.end_time),
    "duration": lambda r: r.duration,
}


class Invalid(Exception):
    """A request REST 3.0 refuses: code suffix and message."""

    def __init__(self, kind: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = PREFIX + kind
        self.status = status

    def answer(self) -> Answer:
        return self.status, v3_error(self.code, str(self))


def call(emulator: Emulator, method: str, query: Any) -> Answer:
    """Answer one REST 3.0 call (a request, or an element of the REST 3.0 batch)."""
    if method == "rest.documentation.openapi":
        paths = {"/timeman.record.list": {"post": {"summary": "List work time records"}}}
        return 200, {"result": {"openapi": "3.0.0", "paths": paths}}
    if method != "timeman.record.list":
        return 404, v3_error(PREFIX + "UNKNOWNMETHODEXCEPTION", f"Method '{method}' not found")
    emulator.stats.add_call(method)
    if not emulator.settings.records_access:
        return Invalid("ACCESSDENIEDEXCEPTION", "Access denied", 403).answer()
    if not emulator.rules.spend(method):
        emulator.stats.add_operating_limit()
        return 429, OPERATION_TIME_LIMIT
    try:
        return 200, {"result": {"items": record_list(emulator, query)}}
    except Invalid as exc:
        return exc.answer()


def batch(emulator: Emulator, body: Any) -> Answer:
    """A JSON array of `{method, query}`; results in the same order; beyond 50 each one fails."""
    if not emulator.settings.rest_v3_batch:
        return 404, v3_error(PREFIX + "UNKNOWNMETHODEXCEPTION", "Method 'batch' not found")
    if not isinstance(body, list):
        return Invalid("INVALIDSELECTEXCEPTION", "batch expects an array of {method, query}").answer()
    emulator.stats.add_call("batch")
    results: list[Any] = []
    for index, element in enumerate(body):
        if index >= BATCH_LIMIT:
            results.append(v3_error("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded"))
            continue
        if not isinstance(element, dict) or not isinstance(element.get("method"), str):
            results.append(Invalid("INVALIDSELECTEXCEPTION", "element needs a method").answer()[1])
            continue
        status, payload = call(emulator, element["method"].lower(), element.get("query", {}))
        if status == 200 and isinstance(payload, dict):
            results.append(payload["result"])
        else:
            results.append(_as_v3(payload))
    return 200, {"result": results}


def _as_v3(payload: Any) -> Any:
    """A classic envelope inside a REST 3.0 batch, reshaped to the REST 3.0 one."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return v3_error(payload["error"], str(payload.get("error_description", "")))
    return payload


def record_list(emulator: Emulator, query: Any) -> list[dict[str, Any]]:
    """The page of items the query asks for; raises Invalid for what REST 3.0 refuses."""
    if not isinstance(query, dict):
        raise Invalid("INVALIDFILTEREXCEPTION", "filter is required")
    user_id, conditions = _filter(query.get("filter"))
    fields = _select(query.get("select"))
    order = _order(query.get("order"))
    offset, limit = _pagination(query.get("pagination"))
    after = max((v for op, v in conditions if op in {"=", ">", ">="}), default=None)
    before = min((v for op, v in conditions if op in {"=", "<", "<="}), default=None)
    records = [
        r
        for r in emulator.world.records_started(user_id, after, before)
        if all(_OPERATORS[op](r.start_time, value) for op, value in conditions)
    ]
    for name, descending in reversed(order):
        records.sort(key=_SORT_KEYS[name], reverse=descending)
    emulator.stats.add_records(user_id)
    return [{k: v for k, v in r.item().items() if k in fields} for r in records[offset : offset + limit]]


def _filter(raw: Any) -> tuple[int, list[tuple[str, datetime]]]:
    """The one user id and the startTime conditions (`between` split in two)."""
    if not isinstance(raw, list) or not raw:
        raise Invalid("INVALIDFILTEREXCEPTION", "filter must be a non-empty array of conditions")
    users: list[Any] = []
    conditions: list[tuple[str, datetime]] = []
    for condition in raw:
        if not isinstance(condition, list) or len(condition) not in (2, 3):
            raise Invalid("INVALIDFILTEREXCEPTION", f"condition {condition!r} is not [field, op, value]")
        name, op, value = (condition[0], "=", condition[1]) if len(condition) == 2 else condition
        if name == "userId" and op in ("=", "in"):
            users.extend(value if isinstance(value, list) else [value])
        elif name == "startTime" and op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise Invalid("INVALIDFILTEREXCEPTION", "between takes [from, to]")
            conditions += [(">=", _instant(value[0])), ("<=", _instant(value[1]))]
        elif name == "startTime" and op in _OPERATORS:
            conditions.append((op, _instant(value)))
        else:
            raise Invalid("INVALIDFILTEREXCEPTION", f"cannot filter by {name!r} with {op!r}")
    if len(users) != 1:
        raise Invalid("INVALIDFILTEREXCEPTION", "Only one employee ID can be passed in a single request")
    try:
        return int(users[0]), conditions
    except (TypeError, ValueError):
        raise Invalid("INVALIDFILTEREXCEPTION", f"userId {users[0]!r} is not an integer") from None


def _instant(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise Invalid("INVALIDFILTEREXCEPTION", f"startTime {value!r} is not a date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _select(raw: Any) -> tuple[str, ...]:
    if raw is None or raw == []:
        return FIELDS
    if not isinstance(raw, list) or any(f not in FIELDS for f in raw):
        raise Invalid("INVALIDSELECTEXCEPTION", f"select {raw!r}: fields are {', '.join(FIELDS)}")
    return tuple(raw)


def _order(raw: Any) -> list[tuple[str, bool]]:
    if raw is None or raw == [] or raw == {}:
        return [("id", False)]
    if not isinstance(raw, dict) or any(
        k not in ORDER_FIELDS or str(v).upper() not in ("ASC", "DESC") for k, v in raw.items()
    ):
        raise Invalid("INVALIDORDEREXCEPTION", f"order {raw!r}: by {', '.join(ORDER_FIELDS)}, ASC or DESC")
    return [(k, str(v).upper() == "DESC") for k, v in raw.items()]


def _pagination(raw: Any) -> tuple[int, int]:
    """(first item, items): page 1 and limit 50 by default; a page never holds more than 50."""
    raw = raw if isinstance(raw, dict) else {}
    try:
        page, limit = int(raw.get("page", 1)), int(raw.get("limit", PAGE_LIMIT))
        offset = int(raw.get("offset", 0))
    except (TypeError, ValueError):
        raise Invalid("INVALIDPAGINATIONEXCEPTION", f"pagination {raw!r} needs integers") from None
    if page < 1 or limit < 1 or offset < 0:
        raise Invalid("INVALIDPAGINATIONEXCEPTION", f"pagination {raw!r} out of range")
    return (page - 1) * limit + offset, min(limit, PAGE_LIMIT)
