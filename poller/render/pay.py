"""The pay categories of a timesheet (`report timesheet`): columns for a payroll import, JSON, a table.

regular + overtime + weekend + holiday hours add up to the worked hours; night hours count
within them (poller.compliance.pay). CSV and JSON name the columns the way a payroll import
maps them; the terminal shows them as a small table under the days.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from poller.render.tables import Column, fit_table, left_out_line

if TYPE_CHECKING:
    from poller.compliance.pay import PayCategories
    from poller.history.timesheet import Timesheet, TimesheetRow


# Pay categories for a payroll import (poller.compliance.pay): each column's PayCategories field.
PAY_COLUMNS = {
    "regular_hours": "regular",
    "overtime_hours": "overtime",
    "night_hours": "night",
    "weekend_hours": "weekend",
    "holiday_hours": "holiday",
}


def decimal_hours(seconds: int) -> float:
    """Hours to the hundredth: 29700 seconds are 8.25."""
    return round(seconds / 3600, 2)


def night_text(sheet: Timesheet) -> str | None:
    """The night window the night hours were measured in, `22:00-06:00`; None: no pay categories."""
    if sheet.night is None:
        return None
    return "-".join(bound.strftime("%H:%M") for bound in sheet.night)


def pay_json(pay: PayCategories | None) -> dict[str, Any]:
    """The pay categories in hours and seconds, and whether they rest on estimates; nulls: not computed."""
    found: dict[str, Any] = {}
    for column, name in PAY_COLUMNS.items():
        seconds = None if pay is None else getattr(pay, name)
        found[column] = None if seconds is None else decimal_hours(seconds)
        found[column.replace("_hours", "_seconds")] = seconds
    found["pay_estimated"] = None if pay is None else pay.estimated
    return found


def pay_cells(pay: PayCategories | None) -> list[str]:
    """The CSV's pay columns: decimal hours, then the estimate flag; empty: not computed."""
    if pay is None:
        return [""] * (len(PAY_COLUMNS) + 1)
    hours = [f"{decimal_hours(getattr(pay, name)):.2f}" for name in PAY_COLUMNS.values()]
    return [*hours, "true" if pay.estimated else "false"]


def pay_table(sheet: Timesheet, multi_portal: bool, width: int | None) -> str:
    """Per person the month's hours by pay category, a totals line, and what they mean."""
    columns = [
        *([Column("portal", keep=0)] if multi_portal else []),
        Column("user", keep=0, right=True),
        Column("name", 1, wrap=True),
        *(Column(name.removesuffix("_hours"), 2 + n, right=True) for n, name in enumerate(PAY_COLUMNS)),
    ]

    def cells(identity: list[str], pay: PayCategories | None) -> list[str]:
        hours = pay_cells(pay)[: len(PAY_COLUMNS)]
        return [*(identity if multi_portal else identity[1:]), *hours]

    def who(row: TimesheetRow) -> list[str]:
        return [row.portal, str(row.user_id), row.user_name or "-"]

    rows = [cells(who(row), sheet.pay_of(row)) for row in sheet.rows]
    fitted = fit_table(columns, rows, width, totals=cells(["", "", "total"], sheet.pay_totals()))
    estimated = any(pay.estimated for row in sheet.rows if (pay := sheet.pay_of(row)) is not None)
    legend = (
        f"pay categories in hours: regular + overtime + weekend + holiday = worked; night "
        f"({night_text(sheet)}, --night) is counted within them; overtime beyond each day's minimum "
        "duration (8 h when unknown)"
        + ("; night hours include breaks where only a day's span is known (estimated)" if estimated else "")
    )
    lines = [fitted.text, _fill(legend, width)]
    if fitted.left_out:
        lines.append(left_out_line([c.heading for c in fitted.left_out], width))
    return "\n".join(lines)


def _fill(text: str, width: int | None) -> str:
    """A legend line wrapped to the table's width (later lines indented); None: one line."""
    if width is None:
        return text
    return textwrap.fill(text, width, subsequent_indent="  ", break_on_hyphens=False)
