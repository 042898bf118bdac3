"""One HTTP exchange of the emulated portal: counted, admitted (bucket, forced errors, dice
faults), authenticated and routed to a method, then given its time block or a slow body."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from poller.emulator import oauth
from poller.emulator.faults import AnswerInstead, fault_answer
from poller.emulator.routes import route
from poller.emulator.wire import Answer, Redirect, Trickle, envelope

if TYPE_CHECKING:
    from poller.emulator.server import Emulator

QUERY_LIMIT_EXCEEDED = envelope("QUERY_LIMIT_EXCEEDED", "Too many requests")


def answer(
    emulator: Emulator, path: str, query: str, body: bytes, content_type: str, authorization: str = ""
) -> Answer:
    """Answer one request (`Emulator.handle`); a fault may replace or slow the answer."""
    if path == "/_emulator/stats":
        return 200, emulator.stats_summary()
    emulator.stats.add_request()
    if path.rstrip("/") == "/oauth/token":
        return oauth.refresh(emulator, dict(parse_qsl(query)))
    if emulator.settings.moved_to:
        return 302, Redirect(f"{emulator.settings.moved_to.rstrip('/')}{path}")
    if not emulator.rules.admit():
        emulator.stats.add_query_limit()
        return 503, QUERY_LIMIT_EXCEEDED
    forced = emulator.errors.for_request()
    if forced is not None:
        emulator.stats.add_fault("asked")
        return forced
    fault = emulator.dice.roll()
    if fault is not None:
        emulator.stats.add_fault(fault)
        replaced = fault_answer(fault)
        if replaced is not None:
            return replaced
        if fault == "slow":
            emulator.stopping.wait(emulator.settings.slow_seconds)
    started = emulator.clock.time()
    try:
        status, payload, method = route(emulator, path, query, body, content_type, authorization)
    except AnswerInstead as instead:
        return instead.answer
    if status == 200 and isinstance(payload, dict):
        payload["time"] = emulator.rules.time_block(method, started)
    if fault == "trickle":
        data = json.dumps(payload).encode()
        return status, Trickle(data, emulator.settings.trickle_length, emulator.settings.trickle_interval)
    return status, payload
