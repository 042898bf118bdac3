"""Format the report views as a terminal table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any

from sqlalchemy import Table

from poller import views

REPORTS: dict[str, Table] = {
    "workdays": views.workdays,
    "latest": views.latest_status,
    "daily": views.daily_worktime,
}

# The columns a terminal table shows; CSV and JSON carry every column of the view.
TABLE_COLUMNS = {
    "workdays": [
        "portal", "user_id", "work_date", "status", "time_start", "time_finish",
        "worked_seconds", "leaks_seconds", "worked_is_estimate", "pending_approval",
    ],
    "latest": [
        "portal", "user_id", "status", "time_start", "duration_seconds", "time_leaks_seconds",
        "tz_offset", "last_seen_at",
    ],
    "daily": [
        "portal", "user_id", "work_date", "worked_seconds", "leaks_seconds", "workdays", "has_estimate",
    ],
}  # fmt: skip

HEADINGS = {
    "user_id": "user",
    "worked_seconds": "worked",
    "leaks_seconds": "breaks",
    "duration_seconds": "duration",
    "time_leaks_seconds": "breaks",
    "worked_is_estimate": "estimate",
    "pending_approval": "pending",
    "has_estimate": "estimate",
    "tz_offset": "tz",
    "last_seen_at": "last seen (UTC)",
    "time_start": "start (UTC)",
    "time_finish": "finish (UTC)",
}


def render(report: str, rows: Sequence[dict[str, Any]], output_format: str) -> str:
    """Render rows of `report` as "table", "csv" or "json"."""
    if output_format == "json":
        return json.dumps([{k: json_values(v) for k, v in row.items()} for row in rows], indent=2)
    if output_format == "csv":
        buffer = io.StringIO()
        columns = [c.name for c in REPORTS[report].columns]
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json_values(row.get(k)) for k in columns})
        return buffer.getvalue().rstrip("\n")
    return _table(report, rows)


def _table(report: str, rows: Sequence[dict[str, Any]]) -> str:
    columns = TABLE_COLUMNS[report]
    cells = [[HEADINGS.get(c, c.replace("_", " ")) for c in columns]]
    cells += [[_cell(column, row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    terminal = shutil.get_terminal_size((120, 24)).columns
    lines = [line[:terminal] for line in lines]
    lines.append(f"{len(rows)} rows" if len(rows) != 1 else "1 row")
    return "\n".join(lines)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if column.endswith("_seconds") and isinstance(value, int):
        return hours_minutes(value)
    if column == "tz_offset" and isinstance(value, int):
        return f"{value / 3600:+g}h"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def hours_minutes(seconds: int) -> str:
    """`8:05` for 29100 seconds; negative values keep their sign."""
    sign = "-" if seconds < 0 else ""
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


def json_values(value: Any) -> Any:
    """`value` with dates as ISO 8601 strings, durations as seconds, paths as text, in any
    dict, list or tuple within it: what `json.dumps` can write."""
    if isinstance(value, dict):
        return {key: json_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_values(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    return value
