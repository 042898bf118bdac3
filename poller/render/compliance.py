"""`report compliance` as a terminal table that fits, CSV or JSON: one row per violation.

CSV and JSON carry figures and limits in seconds (`unit` says per what), for a script or a
spreadsheet; the table shows them as hours:minutes. A footer says which pack judged what, how
many findings rest on estimates, and that these are figures, not legal advice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from poller.render.durations import hours_minutes
from poller.render.report import csv_rows, json_values
from poller.render.tables import Column, fit_table, left_out_line

if TYPE_CHECKING:
    from poller.compliance.from_storage import ComplianceReport, Finding


COLUMNS = (
    "portal", "user_id", "user_name", "department", "date", "period", "rule", "figure", "limit",
    "unit", "estimated", "source",
)  # fmt: skip
# The table's columns: (heading, key, keep rank, wraps); the least needed are left out first.
TABLE = (
    ("user", "user_id", 0, False),
    ("name", "user_name", 5, True),
    ("date", "date", 1, False),
    ("period", "period", 8, False),
    ("rule", "rule", 2, False),
    ("figure", "figure", 3, False),
    ("limit", "limit", 4, False),
    ("estimated", "estimated", 6, False),
    ("source", "source", 7, True),
    ("portal", "portal", 9, False),
)
_PER = {"s": "", "s/week": "/week", "s/workday": "/workday"}


def finding_row(finding: Finding) -> dict[str, Any]:
    """One finding as the CSV and JSON name it; figures in seconds (an average to the hundredth)."""
    person, found = finding.person, finding.violation
    return {
        "portal": person.portal,
        "user_id": person.user_id,
        "user_name": person.user_name,
        "department": person.department,
        "date": found.on,
        "period": found.period,
        "rule": found.rule_id,
        "figure": _seconds(found.figure),
        "limit": _seconds(found.limit),
        "unit": found.unit,
        "estimated": found.estimated,
        "source": found.source,
    }


def _seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def render_compliance(report: ComplianceReport, output_format: str, width: int | None = None) -> str:
    """Render the findings as "table" (at most `width` wide), "csv" or "json"."""
    rows = [finding_row(finding) for finding in report.findings]
    if output_format == "json":
        return json.dumps([json_values(row) for row in rows], indent=2, ensure_ascii=False)
    if output_format == "csv":
        return csv_rows(COLUMNS, [[row[name] for name in COLUMNS] for row in rows])
    return _table(report, rows, width)


def summary_line(report: ComplianceReport) -> str:
    """One line: how many violations of which pack, in which month, how many estimated."""
    pack = f"{report.pack.name} ({report.pack.title})" if report.pack.title else report.pack.name
    where = ", ".join(report.portals) or "no portal with workdays"
    month = f"{report.month.first:%Y-%m}"
    people = f"{report.people} {'person' if report.people == 1 else 'people'}"
    if report.ok:
        return f"no violations of {pack} in {month} on {where}: {people} judged"
    count = len(report.findings)
    estimated = sum(f.violation.estimated for f in report.findings)
    users = len({(f.person.portal, f.person.user_id) for f in report.findings})
    line = f"{count} violation{'s' * (count != 1)} of {pack} in {month} on {where}"
    line += f": {users} of {people}"
    return line + (f", {estimated} estimated" if estimated else "")


def _table(report: ComplianceReport, rows: list[dict[str, Any]], width: int | None) -> str:
    if not rows:
        return summary_line(report)
    columns = [Column(heading, keep, wrap=wraps) for heading, _, keep, wraps in TABLE]
    units = {id(row): finding.violation.unit for row, finding in zip(rows, report.findings, strict=True)}
    cells = [[_cell(key, row, units[id(row)]) for _, key, _, _ in TABLE] for row in rows]
    fitted = fit_table(columns, cells, width)
    lines = [fitted.text, summary_line(report)]
    if any(row["estimated"] for row in rows):
        lines.append("estimated: the figure rests on polls or a day never closed; check it in Bitrix24")
    lines.append("figures against the pack's limits, not legal advice (docs/compliance.md)")
    if fitted.left_out:
        lines.append(left_out_line([c.heading for c in fitted.left_out], width))
    return "\n".join(lines)


def _cell(key: str, row: dict[str, Any], unit: str) -> str:
    value = row[key]
    if key in ("figure", "limit"):
        return hours_minutes(round(value)) + (_PER.get(unit, "") if key == "figure" else "")
    if key == "estimated":
        return "yes" if value else ""
    if value is None:
        return "-"
    return str(value)
