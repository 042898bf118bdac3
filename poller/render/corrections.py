"""`report corrections` as a terminal table that fits, CSV or JSON.

Tables fit the terminal like the other reports (poller.render.tables); CSV and JSON carry
every column of poller.views.CORRECTION_COLUMNS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from poller.render.durations import hours_minutes
from poller.render.report import HEADINGS, csv_rows, json_values, table_cell
from poller.render.tables import Column, fit_table, left_out_line
from poller.views import CORRECTION_COLUMNS as COLUMNS

TABLE_COLUMNS = (
    "portal", "user_id", "user_name", "work_date", "source", "field", "old_value", "new_value",
    "old_seen_at", "changed_at", "after_close", "record_id",
)  # fmt: skip
KEEP_ORDER = (
    "user_id", "work_date", "field", "old_value", "new_value", "changed_at", "after_close", "source",
    "user_name", "old_seen_at", "record_id", "portal",
)  # fmt: skip
_HEADINGS = {
    **HEADINGS,
    "old_value": "was",
    "new_value": "became",
    "old_seen_at": "was seen (UTC)",
    "changed_at": "changed (UTC)",
    "after_close": "after close",
}
_INSTANT = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d):\d\d\.\d{6}Z$")


def render_corrections(rows: Sequence[dict[str, Any]], output_format: str, width: int | None = None) -> str:
    """Render corrections as "table" (at most `width` wide), "csv" or "json"."""
    if output_format == "json":
        return json.dumps([json_values(row) for row in rows], indent=2, ensure_ascii=False)
    if output_format == "csv":
        return csv_rows(COLUMNS, [[row[name] for name in COLUMNS] for row in rows])
    columns = [
        Column(_HEADINGS.get(name, name.replace("_", " ")), KEEP_ORDER.index(name), wrap=name == "user_name")
        for name in TABLE_COLUMNS
    ]
    cells = [[_cell(name, row) for name in TABLE_COLUMNS] for row in rows]
    fitted = fit_table(columns, cells, width)
    count = f"{len(rows)} correction{'s' * (len(rows) != 1)}"
    after = sum(bool(row["after_close"]) for row in rows)
    lines = [fitted.text, count + (f", {after} after the month was closed" if after else "")]
    if fitted.left_out:
        lines.append(left_out_line([c.heading for c in fitted.left_out], width))
    return "\n".join(lines)


def _cell(name: str, row: dict[str, Any]) -> str:
    value = row[name]
    if name in ("old_value", "new_value"):
        if value is None:
            return "-"
        if row["field"].endswith("_seconds") and value.lstrip("-").isdigit():
            return hours_minutes(int(value))
        instant = _INSTANT.match(value)
        return f"{instant[1]} {instant[2]}" if instant else value
    return table_cell(name, value)
