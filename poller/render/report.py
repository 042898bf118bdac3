"""Format reports as a terminal table that fits, CSV or JSON.

A table never runs past the terminal (poller.render.tables): text columns (names) wrap, and when
even that is not enough the least needed columns are left out and a footer line names them.
CSV is for spreadsheets: ISO dates, booleans as true/false, timesheet hours as decimals.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from poller.render.durations import hours_minutes
from poller.render.tables import Column, fit_table, left_out_line
from poller.views import REPORTS

if TYPE_CHECKING:
    from poller.check import CheckReport


# The columns a terminal table shows, in order; CSV and JSON carry every column of the view.
# Columns a view does not have (yet) are skipped.
TABLE_COLUMNS = {
    "workdays": [
        "portal", "user_id", "user_name", "department", "work_date", "status", "time_start",
        "time_finish", "worked_seconds", "leaks_seconds", "worked_is_estimate", "pending_approval",
        "source", "corrections",
    ],
    "latest": [
        "portal", "user_id", "user_name", "department", "status", "stale_reason", "time_start",
        "duration_seconds", "time_leaks_seconds", "tz_offset", "last_seen_at",
    ],
    "daily": [
        "portal", "user_id", "user_name", "department", "work_date", "worked_seconds", "leaks_seconds",
        "workdays", "has_estimate",
    ],
}  # fmt: skip
# When the terminal is too narrow, columns are left out from the end of this order.
KEEP_ORDER = {
    "workdays": [
        "user_id", "work_date", "worked_seconds", "user_name", "status", "leaks_seconds",
        "worked_is_estimate", "pending_approval", "corrections", "time_start", "time_finish", "source",
        "department", "portal",
    ],
    "latest": [
        "user_id", "status", "stale_reason", "user_name", "time_start", "duration_seconds",
        "time_leaks_seconds", "last_seen_at", "tz_offset", "department", "portal",
    ],
    "daily": [
        "user_id", "work_date", "worked_seconds", "user_name", "leaks_seconds", "has_estimate", "workdays",
        "department", "portal",
    ],
}  # fmt: skip
WRAPPING = {"user_name", "department"}

HEADINGS = {
    "user_id": "user",
    "user_name": "name",
    "stale_reason": "stale",
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


# -- the view reports ------------------------------------------------------------------------


def render(report: str, rows: Sequence[dict[str, Any]], output_format: str, width: int | None = None) -> str:
    """Render rows of `report` as "table" (at most `width` wide), "csv" or "json"."""
    if output_format == "json":
        return json.dumps([{k: json_values(v) for k, v in row.items()} for row in rows], indent=2)
    if output_format == "csv":
        columns = [c.name for c in REPORTS[report].columns]
        return _csv(columns, [[row.get(k) for k in columns] for row in rows])
    return _table(report, rows, width)


def _table(report: str, rows: Sequence[dict[str, Any]], width: int | None) -> str:
    available = REPORTS[report].c
    keys = [key for key in TABLE_COLUMNS[report] if key in available]
    order = KEEP_ORDER[report]
    columns = [
        Column(
            HEADINGS.get(key, key.replace("_", " ")),
            keep=order.index(key),
            wrap=key in WRAPPING,
            right=key.endswith("_seconds"),
        )
        for key in keys
    ]
    cells = [[_cell(key, row.get(key)) for key in keys] for row in rows]
    fitted = fit_table(columns, cells, width)
    lines = [fitted.text, f"{len(rows)} rows" if len(rows) != 1 else "1 row"]
    if fitted.left_out:
        lines.append(left_out_line([c.heading for c in fitted.left_out], width))
    return "\n".join(lines)


def table_cell(column: str, value: Any) -> str:
    """A value as a terminal table shows it: `-` for none, h:mm for seconds, UTC minutes."""
    return _cell(column, value)


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


# -- check -----------------------------------------------------------------------------------

OUTCOME_LABELS = {"ok": "ok", "warning": "WARNING", "problem": "PROBLEM", "skipped": "skipped"}


def render_check(report: CheckReport, width: int | None = None) -> str:
    """The findings as a table, then one line of advice per problem or warning, then a verdict."""
    columns = [
        Column("where", keep=0),
        Column("check", keep=1),
        Column("result", keep=2),
        Column("found", keep=3, wrap=True),
    ]
    rows = [[f.subject, f.check, OUTCOME_LABELS[f.outcome], f.detail] for f in report.findings]
    fitted = fit_table(columns, rows, width)
    lines = [fitted.text]
    if fitted.left_out:
        lines.append(left_out_line([c.heading for c in fitted.left_out], width))
    advice = [f for f in report.findings if f.advice and f.outcome in ("problem", "warning")]
    if advice:
        lines.append("")
        lines.extend(f"{f.subject}, {f.check}: {f.advice}" for f in advice)
    problems = sum(f.outcome == "problem" for f in report.findings)
    warnings = sum(f.outcome == "warning" for f in report.findings)
    if report.clean:
        verdict = "all well"
    else:
        verdict = f"{problems} problem{'s' * (problems != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        if report.ok:
            verdict += ": polling works; the warnings name what will not"
    lines.append(verdict)
    return "\n".join(lines)


# -- plain values ----------------------------------------------------------------------------


def csv_rows(header: Sequence[str], lines: Sequence[Sequence[Any]]) -> str:
    """CSV text: `header`, then `lines` with spreadsheet values (csv_value)."""
    return _csv(header, lines)


def _csv(header: Sequence[str], lines: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[csv_value(value) for value in line] for line in lines])
    return buffer.getvalue().rstrip("\n")


def csv_value(value: Any) -> Any:
    """A value as a spreadsheet reads it: true/false, ISO 8601 dates, empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json_values(value)


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
