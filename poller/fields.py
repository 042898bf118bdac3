"""The Bitrix24 fields the poller keeps, declared once.

Everything else is derived from STATUS_FIELDS: the parser (poller.status), the snapshots
columns (poller.models), the "changes" comparison and the insert values (poller.storage) and
the latest_status view description (poller.views). A new field is one line here plus an
Alembic revision that adds its column. USER_FIELDS, DEPARTMENT_FIELDS and RECORD_FIELDS do
the same for `user.get`, `department.get` and `timeman.record.list` (poller.storage parses
them with the same rules, poller.models derives the columns).

A value outside its sane range cannot be right and might not fit its column, so the parser
keeps None and a warning instead (the raw JSON keeps what came):
- timestamps: the year as written between FIRST_YEAR and LAST_YEAR (2000..2100);
- TZ_OFFSET: within ±14 h, the widest offsets in use (UTC-12 .. UTC+14);
- DURATION, TIME_LEAKS: 0 .. 366 days; hours are not capped at 24 (a day left open can run
  long), but a year is not a workday, and the bound keeps a 32-bit column safe;
- latitude ±90, longitude ±180, NaN and infinities never;
- text: NUL, control characters and lone surrogates removed, then cut to the column length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["text", "timestamp", "hms-duration", "int", "float", "bool", "date-derived", "int-list"]

FIRST_YEAR = 2000
LAST_YEAR = 2100
MAX_TZ_OFFSET = 14 * 3600
MAX_DURATION = 366 * 24 * 3600
MAX_ID = 2**31 - 1  # Bitrix24 ids are positive; the columns are 32-bit integers


@dataclass(frozen=True)
class StatusField:
    """One value of a Bitrix24 answer (`timeman.status` unless said) and the column that keeps it."""

    key: str | None  # the result's key; None for a value derived from other fields
    column: str
    kind: FieldKind
    length: int | None = None  # text: the column's length in characters
    low: float | None = None  # numbers: the smallest sane value
    high: float | None = None  # numbers: the largest sane value
    in_latest_view: bool = True  # described in views.latest_status, so the reports show it


STATUS_FIELDS: tuple[StatusField, ...] = (
    StatusField("STATUS", "status", "text", length=32),
    StatusField("TIME_START", "time_start", "timestamp"),
    StatusField("TIME_FINISH", "time_finish", "timestamp"),
    StatusField("TIME_FINISH_DEFAULT", "time_finish_default", "timestamp"),
    # The user's calendar date at TIME_START: UTC plus TZ_OFFSET (0 when unknown).
    StatusField(None, "work_date", "date-derived"),
    StatusField("DURATION", "duration_seconds", "hms-duration", low=0, high=MAX_DURATION),
    StatusField("TIME_LEAKS", "time_leaks_seconds", "hms-duration", low=0, high=MAX_DURATION),
    StatusField("ACTIVE", "active", "bool"),
    StatusField("TZ_OFFSET", "tz_offset", "int", low=-MAX_TZ_OFFSET, high=MAX_TZ_OFFSET),
    StatusField("IP_OPEN", "ip_open", "text", length=64, in_latest_view=False),
    StatusField("IP_CLOSE", "ip_close", "text", length=64, in_latest_view=False),
    StatusField("LAT_OPEN", "lat_open", "float", low=-90, high=90, in_latest_view=False),
    StatusField("LON_OPEN", "lon_open", "float", low=-180, high=180, in_latest_view=False),
    StatusField("LAT_CLOSE", "lat_close", "float", low=-90, high=90, in_latest_view=False),
    StatusField("LON_CLOSE", "lon_close", "float", low=-180, high=180, in_latest_view=False),
    # The workday record's id (newest builds only): joins a poll to its timeman.record.list item.
    StatusField("ID", "record_id", "int", low=1, high=MAX_ID, in_latest_view=False),
)

STATUS_COLUMNS: tuple[str, ...] = tuple(spec.column for spec in STATUS_FIELDS)

# `user.get` rows (the key, user_id, comes first and is required).
USER_FIELDS: tuple[StatusField, ...] = (
    StatusField("ID", "user_id", "int", low=1, high=MAX_ID),
    StatusField("NAME", "name", "text", length=255),
    StatusField("LAST_NAME", "last_name", "text", length=255),
    StatusField("EMAIL", "email", "text", length=255),
    StatusField("WORK_POSITION", "position", "text", length=255),
    StatusField("UF_DEPARTMENT", "department_ids", "int-list", low=1, high=MAX_ID),
    StatusField("USER_TYPE", "user_type", "text", length=32),
    StatusField("ACTIVE", "active", "bool"),
    StatusField("TIME_ZONE", "time_zone", "text", length=64),
)

# `department.get` rows; PARENT and UF_HEAD are 0 or absent when there is none.
DEPARTMENT_FIELDS: tuple[StatusField, ...] = (
    StatusField("ID", "department_id", "int", low=1, high=MAX_ID),
    StatusField("NAME", "name", "text", length=255),
    StatusField("PARENT", "parent_id", "int", low=0, high=MAX_ID),
    StatusField("UF_HEAD", "head_user_id", "int", low=0, high=MAX_ID),
)

# `timeman.record.list` items (REST 3.0); `state` is an object whose `status` is read as "state.status".
RECORD_FIELDS: tuple[StatusField, ...] = (
    StatusField("id", "record_id", "int", low=1, high=MAX_ID),
    StatusField("userId", "user_id", "int", low=1, high=MAX_ID),
    StatusField("startTime", "start_time", "timestamp"),
    StatusField("endTime", "end_time", "timestamp"),
    StatusField("duration", "duration_seconds", "int", low=0, high=MAX_DURATION),
    StatusField("breakLength", "break_seconds", "int", low=0, high=MAX_DURATION),
    StatusField("state.status", "status", "text", length=32),
    StatusField("isApproved", "approved", "bool"),
)
