"""A timesheet as a terminal table that fits, CSV or JSON (`report timesheet`).

At a narrow terminal the days that have work go first (in date order), then the totals; days
nobody worked are the first left out, and a footer counts them. With several portals the
portal column stays: without it two people with the same user id could not be told apart.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from poller.render.pay import PAY_COLUMNS, decimal_hours, night_text, pay_cells, pay_json, pay_table
from poller.render.report import csv_rows
from poller.render.tables import Column, fit_table, left_out_line

if TYPE_CHECKING:
    from poller.compliance.pay import PayCategories
    from poller.history.timesheet import Day, Timesheet, Totals


TIMESHEET_TOTALS = (
    "worked_hours", "break_hours", "days_worked", "days_pending_approval", "days_estimated",
    "days_corrected", "days_corrected_after_close",
)  # fmt: skip
# Marks after a day's hours: corrected after it was stored; corrected after the month's close.
CORRECTED, CORRECTED_AFTER_CLOSE = "*", "!"
# What `~` marks: a day whose worked time is not the portal's own DURATION (poller.storage.workday_rules).
ESTIMATE_LEGEND = "~ marks an estimate (the day was not closed when last seen: hours counted up to then)"
DAY_WITH_WORK, DAY_WITHOUT_WORK = 10, 50  # a day column's `keep`: its rank, plus its index


def render_timesheet(sheet: Timesheet, output_format: str, width: int | None = None) -> str:
    """Render a timesheet as "table" (at most `width` wide), "csv" or "json"."""
    if output_format == "json":
        return json.dumps(timesheet_json(sheet), indent=2, ensure_ascii=False)
    if output_format == "csv":
        return _timesheet_csv(sheet)
    return _timesheet_table(sheet, width)


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
                **pay_json(sheet.pay_of(row)),
            }
            for row in sheet.rows
        ],
        "totals": {
            "days": {d.isoformat(): _day_json(day) for d, day in sorted(sheet.day_totals().items())},
            **_totals_json(sheet.totals),
            **pay_json(sheet.pay_totals()),
        },
        "night": night_text(sheet),
    }


def _timesheet_csv(sheet: Timesheet) -> str:
    """One line per person, one column per date (decimal hours, empty: no work), then totals."""

    def line(
        identity: list[Any], days: dict[date, Day], totals: Totals, pay: PayCategories | None
    ) -> list[Any]:
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
        return [*identity, *hours, *sums, *pay_cells(pay)]

    header = ["portal", "user_id", "user_name", "department", *(d.isoformat() for d in sheet.dates)]
    lines = [
        line(
            [row.portal, row.user_id, row.user_name, row.department],
            dict(row.days),
            row.totals,
            sheet.pay_of(row),
        )
        for row in sheet.rows
    ]
    lines.append(line(["", "", "total", ""], sheet.day_totals(), sheet.totals, sheet.pay_totals()))
    return csv_rows([*header, *TIMESHEET_TOTALS, *PAY_COLUMNS, "pay_estimated"], lines)


def _timesheet_table(sheet: Timesheet, width: int | None) -> str:
    """Identity, one column per day, then the totals; days with work go first when narrow."""
    if not sheet.rows:
        return f"timesheet {sheet.month:%Y-%m}: no workdays (with the filters given)"
    portals = sorted({row.portal for row in sheet.rows})
    multi_portal = len(portals) > 1
    identity = [
        Column("portal", keep=0 if multi_portal else 100),
        Column("user", keep=0, right=True),
        Column("name", 1, wrap=True),
        Column("department", keep=99, wrap=True),
    ]
    worked_dates = set(sheet.day_totals())
    day_columns = [
        Column(str(d.day), keep=(DAY_WITH_WORK if d in worked_dates else DAY_WITHOUT_WORK) + n, right=True)
        for n, d in enumerate(sheet.dates)
    ]
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
    where = f" on portal {portals[0]}" if not multi_portal else f" on {len(portals)} portals"
    people = f"{len(sheet.rows)} {'person' if len(sheet.rows) == 1 else 'people'}"
    closed = f", {sheet.as_closed}" if sheet.as_closed else ""
    lines = [
        f"timesheet {sheet.month:%Y-%m}{where} (local work dates{closed})",
        fitted.text,
        _fill(f"{people}; hours in decimals; {ESTIMATE_LEGEND}", width),
    ]
    if corrected:
        lines.append(
            _fill(
                f"{CORRECTED} corrected after it was stored, {CORRECTED_AFTER_CLOSE} after the month was "
                f"closed: `report corrections --month {sheet.month:%Y-%m}` lists what changed",
                width,
            )
        )
    if fitted.left_out:
        lines.append(left_out_line(_left_out_headings(fitted.left_out, day_columns, sheet), width))
    if sheet.pay is not None:
        lines += ["", pay_table(sheet, multi_portal, width)]
    return "\n".join(lines)


def _fill(text: str, width: int | None) -> str:
    """A legend line wrapped like the table above it (later lines indented); None: one line."""
    if width is None:
        return text
    return textwrap.fill(text, width, subsequent_indent="  ", break_on_hyphens=False)


def _left_out_headings(
    left_out: Sequence[Column], day_columns: Sequence[Column], sheet: Timesheet
) -> list[str]:
    """The footer's names: the days with work by number, then the other columns, then how
    many days nobody worked (their hours are all empty: a count says enough)."""
    worked = {str(d.day) for d in sheet.day_totals()}
    days = [c for c in left_out if any(c is d for d in day_columns)]
    others = [c.heading for c in left_out if not any(c is d for d in day_columns)]
    empty = [c for c in days if c.heading not in worked]
    names = [*_day_ranges([c for c in days if c.heading in worked]), *others]
    if empty:
        names.append(f"{len(empty)} {'day' if len(empty) == 1 else 'days'} without work")
    return names


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
