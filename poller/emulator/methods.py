"""The classic REST methods (`/rest/...`): timeman.status, user.get, department.get and batch
(the norms, schedules, calendar and absences are in `norm_methods`).

Each takes the emulator and the call's parameters and returns an `Answer`; a 200 answer's
body holds `result` (and `total`/`next` for lists). The batch runs sub-calls through `call`,
so every sub-call meets the same rules as a single call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from poller.emulator import norm_methods, staff
from poller.emulator.faults import hostile_result
from poller.emulator.wire import Answer, as_int, envelope, lookup, put_form_fields, truthy

if TYPE_CHECKING:
    from poller.emulator.server import Emulator

BATCH_LIMIT = 50
PAGE = 50
NOT_FOUND = envelope("ERROR_METHOD_NOT_FOUND", "Method not found!")
OPERATION_TIME_LIMIT = envelope("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.")


def call(emulator: Emulator, method: str, params: dict[str, Any]) -> Answer:
    """Answer one classic method call (a request, or a sub-call of a batch)."""
    handler = _METHODS.get(method)
    if handler is None:
        return 404, NOT_FOUND
    emulator.stats.add_call(method)
    forced = emulator.errors.for_call(method, lookup(params, "USER_ID"), emulator.settings.webhook_user)
    if forced is not None:
        return forced
    if not emulator.rules.spend(method):
        emulator.stats.add_operating_limit()
        return 429, OPERATION_TIME_LIMIT
    return handler(emulator, params)


def timeman_status(emulator: Emulator, params: dict[str, Any]) -> Answer:
    s = emulator.settings
    raw_user = lookup(params, "USER_ID")
    user_id = as_int(raw_user, -1) if raw_user not in (None, "") else s.webhook_user
    if not emulator.world.exists(user_id) or emulator.is_fired(user_id):
        return 400, envelope("", "User not found")
    if user_id != s.webhook_user and not s.admin:
        return 400, envelope("", "User does not have access to managing other users work time")
    result = emulator.override_for(user_id)
    if result is None:
        result = emulator.world.status(user_id)
    kinds = s.hostile.get(user_id, ())
    if kinds:
        result = hostile_result(result, kinds)
    emulator.stats.add_status(user_id)
    return 200, {"result": result}


def user_get(emulator: Emulator, params: dict[str, Any]) -> Answer:
    """Users by ID, 50 a page; filters ACTIVE, USER_TYPE, UF_DEPARTMENT, >ID; `start=-1`: no count."""
    world = emulator.world
    wanted = lookup(params, "FILTER")
    wanted = wanted if isinstance(wanted, dict) else {}
    active, kind = lookup(wanted, "ACTIVE"), lookup(wanted, "USER_TYPE")
    department = lookup(wanted, "UF_DEPARTMENT")
    above = as_int(lookup(wanted, ">ID"), 0)
    ids = [
        u
        for u in range(max(1, above + 1), world.count + 1)
        if (active is None or _is_active(emulator, u) == truthy(active))
        and (kind is None or ("extranet" if staff.is_extranet(u) else "employee") == str(kind))
    ]
    if department is not None:
        ids = [u for u in ids if as_int(department, 0) in world.user(u)["UF_DEPARTMENT"]]
    rows = [_user_row(emulator, u) for u in _window(ids, params)]
    return 200, _page(rows, len(ids), params)


def _user_row(emulator: Emulator, user_id: int) -> dict[str, Any]:
    """The world's row, fired users inactive, a zone set by Emulator.set_time_zone named."""
    row = {**emulator.world.user(user_id), "ACTIVE": _is_active(emulator, user_id)}
    zone = emulator.time_zone_for(user_id)
    if zone is not None:
        row["TIME_ZONE"] = zone
    return row


def _is_active(emulator: Emulator, user_id: int) -> bool:
    return staff.is_active(user_id) and not emulator.is_fired(user_id)


def department_get(emulator: Emulator, params: dict[str, Any]) -> Answer:
    """Departments by ID, 50 a page; needs the `department` scope."""
    if not emulator.settings.department_scope:
        return 403, envelope(
            "insufficient_scope", "The request requires higher privileges than provided by the webhook token"
        )
    rows = emulator.world.departments()
    for name in ("ID", "PARENT"):
        value = lookup(params, name)
        if value is not None:
            rows = [r for r in rows if r.get(name) == str(value)]
    return 200, _page(_window(rows, params), len(rows), params)


def _window(rows: list[Any], params: dict[str, Any]) -> list[Any]:
    start = as_int(lookup(params, "start"), 0)
    start = 0 if start < 0 else start
    return rows[start : start + PAGE]


def _page(rows: list[Any], total: int, params: dict[str, Any]) -> dict[str, Any]:
    """A list answer: `total`, and `next` while more remain; neither when `start=-1`."""
    start = as_int(lookup(params, "start"), 0)
    if start == -1:
        return {"result": rows}
    start = max(0, start)
    body: dict[str, Any] = {"result": rows, "total": total}
    if start + PAGE < total:
        body["next"] = start + PAGE
    return body


def batch(emulator: Emulator, params: dict[str, Any]) -> Answer:
    """Up to 50 sub-calls; the rest fail with ERROR_BATCH_LENGTH_EXCEEDED; `halt=1` stops at a failure.

    HTTP 200 whatever the sub-calls did; empty sections are `[]`, as PHP serializes them.
    """
    commands = lookup(params, "cmd")
    if isinstance(commands, list):
        commands = {str(i): command for i, command in enumerate(commands)}
    if not isinstance(commands, dict) or not commands:
        return 400, envelope("INVALID_ARG_VALUE", "cmd is required")
    halt = truthy(lookup(params, "halt"))
    sections: dict[str, dict[str, Any]] = {name: {} for name in ("result", "error", "total", "next", "time")}
    for index, (key, command) in enumerate(commands.items()):
        started = emulator.rules.clock.time()
        method, _, query = str(command).partition("?")
        method = method.strip().lower()
        status: int
        payload: Any
        if index >= BATCH_LIMIT:
            status, payload = 400, envelope("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        elif method == "batch":
            status, payload = 400, envelope("ERROR_BATCH_METHOD_NOT_ALLOWED", "Batch call is not allowed")
        else:
            sub_params: dict[str, Any] = {}
            put_form_fields(sub_params, parse_qsl(query, keep_blank_values=True))
            status, payload = call(emulator, method, sub_params)
        if status == 200 and isinstance(payload, dict):
            sections["result"][key] = payload["result"]
            sections["time"][key] = emulator.rules.time_block(method, started)
            for name in ("total", "next"):
                if name in payload:
                    sections[name][key] = payload[name]
            continue
        sections["error"][key] = payload
        if halt:
            break
    return 200, {"result": {f"result_{n}" if n != "result" else n: v or [] for n, v in sections.items()}}


_METHODS = {
    "timeman.status": timeman_status,
    "user.get": user_get,
    "department.get": department_get,
    "batch": batch,
    **norm_methods.METHODS,
}
