"""The canonical rendering of a portal's month: one text, the same bytes on SQLite and PostgreSQL.

A month close keeps the SHA-256 of this text; `verify` renders the month again and compares.
Version 1 (CANONICAL_VERSION) is:

- a header line `timeman-poller canonical v1<TAB>PORTAL<TAB>YYYY-MM`, then one line per row of
  the four tables below that belongs to the portal and month, the lines sorted by code point
  (Python's str order, the same as UTF-8 byte order); every line ends in LF, and the digest is
  SHA-256 over the UTF-8 bytes of the whole text;
- a line is the table's name, then the values of the columns in CANONICAL_COLUMNS, in that
  order, separated by TAB; the first KEY_WIDTH[table] columns are the row's key;
- a value is written by `text_value`: NULL `\\N`; booleans `true`/`false`; integers in decimal;
  floats as Python's shortest round-trip repr; instants in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`;
  dates `YYYY-MM-DD`; JSON compact with sorted keys (`json.dumps(sort_keys=True,
  separators=(",", ":"), ensure_ascii=False)`); text as is; then backslash, TAB, LF and CR
  escaped as `\\\\`, `\\t`, `\\n`, `\\r`.

Which rows: workdays, workday_records and workday_revisions whose work_date lies in the month;
snapshots whose work_date lies in the month and that were polled at or before the close.
Left out are the columns that change by design after a day is over (workdays.last_seen_at and
the names and correction counts a later directory refresh or revision rewrites; snapshots'
last_seen_at and seen_count, which a later identical poll extends) and the portal (in the
header).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from poller.fields import STATUS_COLUMNS

CANONICAL_VERSION = 1
NULL = "\\N"

CANONICAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "workdays": (
        "user_id", "time_start", "work_date", "time_finish", "tz_offset", "status", "worked_seconds",
        "worked_is_estimate", "leaks_seconds", "first_seen_at", "pending_approval", "source", "record_id",
    ),
    "workday_records": (
        "record_id", "user_id", "start_time", "end_time", "duration_seconds", "break_seconds", "status",
        "approved", "work_date", "raw", "fetched_at",
    ),
    "workday_revisions": (
        "id", "user_id", "work_date", "time_start", "record_id", "source", "field", "old_value",
        "new_value", "old_seen_at", "changed_at", "after_close",
    ),
    "snapshots": ("user_id", "polled_at", *STATUS_COLUMNS, "raw"),
}  # fmt: skip
KEY_WIDTH = {"workdays": 2, "workday_records": 1, "workday_revisions": 1, "snapshots": 2}

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def plain_value(value: Any) -> str | None:
    """`value` as canonical text before escaping; None stays None (what a revision stores)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def text_value(value: Any) -> str:
    """`value` as one escaped field of a canonical line."""
    plain = plain_value(value)
    return NULL if plain is None else plain.translate(_ESCAPES)


def line(table: str, row: Mapping[Any, Any]) -> str:
    """The canonical line of one row of `table` (without its LF)."""
    return "\t".join([table, *(text_value(row[column]) for column in CANONICAL_COLUMNS[table])])


def row_key(text: str) -> str:
    """The key part of a canonical line: the table's name and its key columns."""
    table = text.partition("\t")[0]
    return "\t".join(text.split("\t")[: 1 + KEY_WIDTH[table]])


def header(portal: str, month: date) -> str:
    return f"timeman-poller canonical v{CANONICAL_VERSION}\t{text_value(portal)}\t{month:%Y-%m}"


def digest(portal: str, month: date, lines: Iterable[str]) -> str:
    """SHA-256 (hex) of the canonical text: the header, then `lines` sorted, each ending in LF."""
    sha = hashlib.sha256(f"{header(portal, month)}\n".encode())
    for text in sorted(lines):
        sha.update(f"{text}\n".encode())
    return sha.hexdigest()


def fields_of(text: str) -> dict[str, str]:
    """The columns of a canonical line by name (escaped text as written)."""
    table, *values = text.split("\t")
    return dict(zip(CANONICAL_COLUMNS[table], values, strict=True))
