"""Flag the users whose answer held bytes that were not UTF-8.

The transport reads such bytes as U+FFFD and hands the texts that lost bytes over as
ReplacedText (poller.bitrix.lenient_text), so a bad byte costs only the value it is in: the
user's snapshot is stored as usual, with U+FFFD in that value (and in the raw JSON), and a
BAD_ENCODING row in poll_errors names the user and the keys. The row
is a flag, not a failure: the user counts as stored, and the row carries the moment of the
answer, so latest_status does not call the stored row stale for it. A U+FFFD that came as
valid UTF-8 (a user typed it) is text like any other, never flagged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from poller.bitrix.lenient_text import ReplacedText
from poller.storage import ErrorRow

BAD_ENCODING = "BAD_ENCODING"
MAX_KEYS_NAMED = 5


def undecodable_keys(value: Any, path: str = "") -> Iterator[str]:
    """The keys (dotted inside objects, [i] inside lists) whose text lost bytes (ReplacedText)."""
    if isinstance(value, str):
        if isinstance(value, ReplacedText):
            yield path or "(the value)"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, ReplacedText):
                yield name
            else:
                yield from undecodable_keys(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from undecodable_keys(item, f"{path}[{index}]")


def flag_row(portal: str, user_id: int, answered_at: datetime, result: Any) -> ErrorRow | None:
    """The BAD_ENCODING row of a user whose answer held undecodable bytes; None when it held none."""
    keys = list(undecodable_keys(result))
    if not keys:
        return None
    named = ", ".join(keys[:MAX_KEYS_NAMED]) + (
        f" and {len(keys) - MAX_KEYS_NAMED} more" if len(keys) > MAX_KEYS_NAMED else ""
    )
    message = (
        f"portal {portal} user {user_id}: {named} held bytes that are not UTF-8; "
        "stored with U+FFFD in their place, the rest of the answer as it came"
    )
    return ErrorRow(portal, user_id, answered_at, BAD_ENCODING, None, message)


def flag_rows(portal: str, results: Mapping[int, Any], answered_at: Mapping[int, datetime]) -> list[ErrorRow]:
    """The BAD_ENCODING rows of a part of a fetch: one per user whose answer held such bytes."""
    rows = (flag_row(portal, user_id, answered_at[user_id], result) for user_id, result in results.items())
    return [row for row in rows if row is not None]
