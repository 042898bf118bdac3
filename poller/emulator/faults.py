"""Faults a portal, a proxy or a network shows, and hostile values inside normal answers.

Request faults are drawn per request with the shares in `EmulatorSettings.fault_*`. Hostile
values are asked for per user (`Emulator.set_hostile`): they reproduce answers that broke an
earlier version (issue #9) and fit no database column or no date type.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from poller.emulator.settings import EmulatorSettings
from poller.emulator.wire import Answer, Drop, Hang, Raw, envelope

HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
TRUNCATED = b'{"result":{"result":{"u1":{"STATUS":"OPE'
NESTED_DEPTH = 200_000  # 400 KB of brackets: deeper than any JSON parser's recursion

HOSTILE_KINDS = (
    "long_ip", "nul", "huge_duration", "huge_offset", "far_date", "long_status", "nested", "bad_byte",
    "typed_fffd",
)  # fmt: skip
"""`long_ip`: IP_OPEN of 100 characters; `nul`: NUL bytes in IP_OPEN and IP_CLOSE; `huge_duration`:
DURATION 99999999:00:00; `huge_offset`: TZ_OFFSET 99999999999999; `far_date`: TIME_START
9999-12-31T23:00:00-05:00 (year 10000 in UTC); `long_status`: STATUS of 40 characters;
`nested`: the whole answer of any request for this user is 400 KB of nested brackets;
`bad_byte`: IP_OPEN "10.0.0." followed by the byte 0xFF, which is not UTF-8, inside an
answer (a batch's too) that is otherwise well formed; `typed_fffd`: IP_CLOSE "10.0.0." followed
by U+FFFD as valid UTF-8 (EF BF BD): text a user could type, not a bad byte."""

BAD_BYTE_MARK = "\udcff"  # a lone surrogate no real value holds; json_bytes sends it as 0xFF


def json_bytes(payload: Any) -> bytes:
    """A JSON answer as the emulator sends it: every BAD_BYTE_MARK becomes the one byte 0xFF,
    every U+FFFD its UTF-8 bytes (EF BF BD) rather than an escape."""
    return json.dumps(payload).encode().replace(b"\\udcff", b"\xff").replace(b"\\ufffd", "\ufffd".encode())


class AnswerInstead(Exception):
    """Raised by a method to replace the whole HTTP answer (a hostile body)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("answer replaced")
        self.answer = answer


class FaultDice:
    """Draw at most one fault per request, repeatably from the settings' seed."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)
        self._lock = threading.Lock()

    def roll(self) -> str | None:
        with self._lock:
            roll = self._random.random()
        for kind, share in self.settings.fault_shares():
            if roll < share:
                return kind
            roll -= share
        return None


def fault_answer(kind: str) -> Answer | None:
    """The answer that replaces the normal one, or None for faults that alter it (slow, trickle)."""
    if kind == "500":
        return 500, envelope("INTERNAL_SERVER_ERROR", "Internal server error")
    if kind == "html":
        return 502, HTML_PAGE
    if kind == "drop":
        return 0, Drop()
    if kind == "hang":
        return 0, Hang()
    if kind == "truncated":  # a proxy cut the answer short
        return 200, Raw(TRUNCATED)
    if kind == "huge":  # 17 MB: more than any real answer
        return 200, Raw(b'{"result": "' + b"x" * (17 * 1024 * 1024) + b'"}')
    if kind == "nested":
        return nested_answer()
    return None


def nested_answer() -> Answer:
    """HTTP 200 with a 400 KB body of nested brackets, valid JSON in the small."""
    return 200, Raw(b'{"result":' + b"[" * NESTED_DEPTH + b"]" * NESTED_DEPTH + b"}")


def hostile_result(result: Any, kinds: tuple[str, ...]) -> Any:
    """`result` with the hostile values of `kinds`; raises AnswerInstead for `nested`."""
    if "nested" in kinds:
        raise AnswerInstead(nested_answer())
    if not isinstance(result, dict):
        return result
    changed = dict(result)
    for kind in kinds:
        if kind == "long_ip":
            changed["IP_OPEN"] = ("10.20.30.40," * 10)[:100]
        elif kind == "nul":
            changed["IP_OPEN"] = "10.0.\x00.1"
            changed["IP_CLOSE"] = "\x00\x00"
        elif kind == "huge_duration":
            changed["DURATION"] = "99999999:00:00"
        elif kind == "huge_offset":
            changed["TZ_OFFSET"] = 99999999999999
        elif kind == "far_date":
            changed["TIME_START"] = "9999-12-31T23:00:00-05:00"
        elif kind == "bad_byte":
            changed["IP_OPEN"] = "10.0.0." + BAD_BYTE_MARK
        elif kind == "typed_fffd":
            changed["IP_CLOSE"] = "10.0.0.\ufffd"
        elif kind == "long_status":
            changed["STATUS"] = "OPENED" + "_PENDING_SUPERVISOR_REVIEW_X"[:34].ljust(34, "X")
        else:
            raise ValueError(f"unknown hostile kind {kind!r}; expected one of {', '.join(HOSTILE_KINDS)}")
    return changed
