"""Format reports as a terminal table that fits, CSV or JSON.

A table never runs past the terminal (poller.tables): text columns (names) wrap, and when
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

from sqlalchemy import Table

from poller import views
from poller.tables import Column, fit_table, left_out_line
from poller.timesheet import Day, Timesheet, Totals

if TYPE_CHECKING:
    from poller.check import CheckReport

REPORTS: dict[str, Table] = {
    "workdays": views.workdays,
    "latest": views.latest_status,
    "daily": views.daily_worktime,
}
TIMESHEET = "timesheet"
CORRECTIONS = "corrections"  # poller.corrections
REPORT_NAMES = (*REPORTS, TIMESHEET, CORRECTIONS)

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


def hours_minutes(seconds: int) -> str:
    """`8:05` for 29100 seconds; negative values keep their sign."""
    sign = "-" if seconds < 0 else ""
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


# -- the timesheet ---------------------------------------------------------------------------

TIMESHEET_TOTALS = (
    "worked_hours", "break_hours", "days_worked", "days_pending_approval", "days_estimated",
    "days_corrected", "days_corrected_after_close",
)  # fmt: skip
# Marks after a day's hours: corrected after it was stored; corrected after the month's close.
CORRECTED, CORRECTED_AFTER_CLOSE = "*", "!"


def render_timesheet(sheet: Timesheet, output_format: str, width: int | None = None) -> str:
    """Render a timesheet as "table" (at most `width` wide), "csv" or "json"."""
    if output_format == "json":
        return json.dumps(timesheet_json(sheet), indent=2, ensure_ascii=False)
    if output_format == "csv":
        return _timesheet_csv(sheet)
    return _timesheet_table(sheet, width)


def decimal_hours(seconds: int) -> float:
    """Hours to the hundredth: 29700 seconds are 8.25."""
    return round(seconds / 3600, 2)


def _totals_json(totals: Totals) -> dict[str, Any]:
    return {
        "worked_hours": decimal_hours(totals.worked_seconds),
        "break_hours": decimal_hours(totals.break_seconds),
        "worked_seconds": totals.worked_seconds,
        "break_seconds": totals.break_seconds,
        "days_worked": totals.days,
        "days_pending_approval": totals.days_pending_approval,
        "days_estimated": totals.days_estimated,
        "days_corrected": totals.days_corrected,
        "days_corrected_after_close": totals.days_corrected_after_close,
    }


def _day_json(day: Day) -> dict[str, Any]:
    return {
        "worked_hours": decimal_hours(day.worked_seconds),
        "worked_seconds": day.worked_seconds,
        "break_seconds": day.break_seconds,
        "estimate": day.estimate,
        "pending_approval": day.pending_approval,
        "corrections": day.corrections,
        "corrections_after_close": day.corrections_after_close,
    }


def timesheet_json(sheet: Timesheet) -> dict[str, Any]:
    """The timesheet as JSON types: days by ISO date (only days worked), hours and seconds."""
    return {
        "month": f"{sheet.month:%Y-%m}",
        "as_closed": sheet.as_closed,
        "dates": [d.isoformat() for d in sheet.dates],
        "rows": [
            {
                "portal": row.portal,
                "user_id": row.user_id,
                "user_name": row.user_name,
                "department": row.department,
                "days": {d.isoformat(): _day_json(day) for d, day in sorted(row.days.items())},
                **_totals_json(row.totals),
            }
            for row in sheet.rows
        ],
        "totals": {
            "days": {d.isoformat(): _day_json(day) for d, day in sorted(sheet.day_totals().items())},
            **_totals_json(sheet.totals),
        },
    }


def _timesheet_csv(sheet: Timesheet) -> str:
    """One line per person, one column per date (decimal hours, empty: no work), then totals."""

    def line(identity: list[Any], days: dict[date, Day], totals: Totals) -> list[Any]:
        hours = [f"{decimal_hours(days[d].worked_seconds):.2f}" if d in days else "" for d in sheet.dates]
        sums = [
            f"{decimal_hours(totals.worked_seconds):.2f}",
            f"{decimal_hours(totals.break_seconds):.2f}",
            totals.days,
            totals.days_pending_approval,
            totals.days_estimated,
            totals.days_corrected,
            totals.days_corrected_after_close,
        ]
        return [*identity, *hours, *sums]

    header = ["portal", "user_id", "user_name", "department", *(d.isoformat() for d in sheet.dates)]
    lines = [
        line([row.portal, row.user_id, row.user_name, row.department], dict(row.days), row.totals)
        for row in sheet.rows
    ]
    lines.append(line(["", "", "total", ""], sheet.day_totals(), sheet.totals))
    return _csv([*header, *TIMESHEET_TOTALS], lines)


def _timesheet_table(sheet: Timesheet, width: int | None) -> str:
    """Identity, one column per day, then the totals; days go first when the terminal is narrow."""
    if not sheet.rows:
        return f"timesheet {sheet.month:%Y-%m}: no workdays (with the filters given)"
    multi_portal = len({row.portal for row in sheet.rows}) > 1
    identity = [Column("portal", keep=100), Column("user", keep=0, right=True), Column("name", 1, wrap=True)]
    identity.append(Column("department", keep=99, wrap=True))
    day_columns = [Column(str(d.day), keep=10 + n, right=True) for n, d in enumerate(sheet.dates)]
    sums = [
        Column("worked", 2, right=True),
        Column("breaks", 6, right=True),
        Column("days", 3, right=True),
        Column("pending", 4, right=True),
        Column("estimated", 5, right=True),
    ]
    corrected = sheet.totals.days_corrected > 0
    if corrected:
        sums.append(Column("corrected", 7, right=True))
    columns = [*identity, *day_columns, *sums]

    def cells(identity_cells: list[str], days: dict[date, Day], totals: Totals) -> list[str]:
        day_cells = [_timesheet_day(days.get(d)) for d in sheet.dates]
        sum_cells = [
            f"{decimal_hours(totals.worked_seconds):.2f}",
            f"{decimal_hours(totals.break_seconds):.2f}",
            str(totals.days),
            str(totals.days_pending_approval),
            str(totals.days_estimated),
            *([str(totals.days_corrected)] if corrected else []),
        ]
        return [*identity_cells, *day_cells, *sum_cells]

    rows = [
        cells(
            [row.portal, str(row.user_id), row.user_name or "-", row.department or "-"],
            dict(row.days),
            row.totals,
        )
        for row in sheet.rows
    ]
    totals = cells(["", "", "total", ""], sheet.day_totals(), sheet.totals)
    if not multi_portal:  # one portal: say it once below instead of on every line
        columns, rows, totals = columns[1:], [r[1:] for r in rows], totals[1:]
    fitted = fit_table(columns, rows, width, totals=totals)
    portals = sorted({row.portal for row in sheet.rows})
    where = f" on portal {portals[0]}" if len(portals) == 1 else ""
    people = f"{len(sheet.rows)} {'person' if len(sheet.rows) == 1 else 'people'}"
    closed = f", {sheet.as_closed}" if sheet.as_closed else ""
    lines = [
        f"timesheet {sheet.month:%Y-%m}{where} (local work dates{closed})",
        fitted.text,
        f"{people}; hours in decimals; ~ marks an estimate (day still open, or known from polls only)",
    ]
    if corrected:
        lines.append(
            f"{CORRECTED} corrected after it was stored, {CORRECTED_AFTER_CLOSE} after the month was closed: "
            f"`report corrections --month {sheet.month:%Y-%m}` lists what changed"
        )
    if fitted.left_out:
        days = [c for c in fitted.left_out if any(c is d for d in day_columns)]
        others = [c.heading for c in fitted.left_out if not any(c is d for d in day_columns)]
        lines.append(left_out_line([*_day_ranges(days), *others], width))
    return "\n".join(lines)


def _timesheet_day(day: Day | None) -> str:
    if day is None:
        return ""
    mark = CORRECTED_AFTER_CLOSE if day.corrections_after_close else CORRECTED if day.corrections else ""
    return f"{'~' if day.estimate else ''}{decimal_hours(day.worked_seconds):.2f}{mark}"


def _day_ranges(columns: Sequence[Column]) -> list[str]:
    """`days 12-31` for the day columns left out (consecutive days as one range)."""
    numbers = sorted(int(c.heading) for c in columns)
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and ranges[-1][-1] == number - 1:
            ranges[-1].append(number)
        else:
            ranges.append([number])
    return [f"day {r[0]}" if len(r) == 1 else f"days {r[0]}-{r[-1]}" for r in ranges]


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
