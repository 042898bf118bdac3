"""The spool file's lines: an entry (one portal's cycle) with its sequence number, or a marker.

`{"seq": 7, "run_id": ..., "snapshots": [...], "errors": [...]}` keeps an entry; a snapshot
keeps the raw answer and is parsed again when read. `{"done": 7}` says entry 7 left the
queue. A line written by the previous version (no "seq") is an entry too. Every value is
checked on reading, so a damaged line fails alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from poller import storage
from poller.status import parse_status

_INT64 = 2**63


@dataclass(frozen=True)
class SpoolEntry:
    """One portal's cycle waiting for the database: its snapshots and error rows."""

    run_id: int | None
    snapshots: tuple[storage.SnapshotRow, ...]
    errors: tuple[storage.ErrorRow, ...]

    @property
    def rows(self) -> int:
        return len(self.snapshots) + len(self.errors)


def entry_line(seq: int, entry: SpoolEntry, **extra: Any) -> bytes:
    """The line keeping `entry` (`extra`: more keys, e.g. why it was dead-lettered)."""
    return _dump({**_encode(seq, entry), **extra})


def done_line(seq: int) -> bytes:
    """The marker saying entry `seq` left the queue."""
    return _dump({"done": seq})


def _dump(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def _encode(seq: int, entry: SpoolEntry) -> dict[str, Any]:
    return {
        "seq": seq,
        "run_id": entry.run_id,
        "snapshots": [
            {
                "portal": s.portal,
                "user_id": s.user_id,
                "polled_at": s.polled_at.isoformat(),
                "raw": _json_safe(s.parsed.raw),
            }
            for s in entry.snapshots
        ],
        "errors": [
            {
                "portal": e.portal,
                "user_id": e.user_id,
                "occurred_at": e.occurred_at.isoformat(),
                "code": e.code,
                "http_status": e.http_status,
                "message": e.message,
            }
            for e in entry.errors
        ],
    }


def _json_safe(raw: Any) -> Any:
    """The raw answer as it came when JSON can hold it, else as the database would keep it."""
    try:
        json.dumps(raw)
    except (ValueError, TypeError, RecursionError):
        return storage.storable_raw(raw)
    return raw


def read_line(raw: bytes) -> tuple[int | None, SpoolEntry | None]:
    """A marker `(seq, None)` or an entry `(seq or None, entry)`; raise if the line is unusable."""
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise TypeError("not an object")
    if set(data) == {"done"}:
        return _int(data["done"]), None
    seq = _int(data["seq"]) if "seq" in data else None
    return seq, _decode(data)


def _decode(data: dict[str, Any]) -> SpoolEntry:
    """An entry from its line, every value checked: a line that fails costs only itself."""
    snapshots = tuple(
        storage.SnapshotRow(
            _text(s["portal"]), _int(s["user_id"]), _instant(s["polled_at"]), _reparse(s["raw"])
        )
        for s in data["snapshots"]
    )
    errors = tuple(
        storage.ErrorRow(
            _text(e["portal"]),
            _optional_int(e["user_id"]),
            _instant(e["occurred_at"]),
            _text(e["code"]),
            _optional_int(e["http_status"]),
            _text(e["message"]),
        )
        for e in data["errors"]
    )
    return SpoolEntry(_optional_int(data["run_id"]), snapshots, errors)


def _int(value: Any) -> int:
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise ValueError("not a 64-bit integer")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError("a time without its offset")
    return moment.astimezone(UTC)  # OverflowError past the year 9999


def _reparse(raw: Any) -> Any:
    unparsed = isinstance(raw, dict) and set(raw) == {"_unparsed"}
    return parse_status(raw["_unparsed"] if unparsed else raw)
