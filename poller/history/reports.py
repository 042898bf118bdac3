"""The reports of `report`: rows of a view, a month's timesheet with pay categories, a month's
compliance with a rule pack. Each opens the database at the newest schema, reads, and returns
data; poller.render words it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, time
from typing import Any

from sqlalchemy import Engine

from poller import storage, views
from poller.compliance import Month, load_pack
from poller.compliance.from_storage import ComplianceReport, find_stored_violations, stored_pay
from poller.compliance.pay import NIGHT, PayCategories
from poller.config import Config
from poller.errors import ConfigError
from poller.history import closing
from poller.history.timesheet import Timesheet, build_timesheet, month_dates
from poller.storage import closes, maintenance


def report(
    config: Config,
    name: str = "workdays",
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    portals: Sequence[str] = (),
    users: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Print a report: workdays (default), latest, daily, timesheet, corrections or compliance.

    workdays:  one row per workday (worked and break time; estimated while the day is open).
    latest:    each user's newest status.
    daily:     worked and break time per user and local date.
    timesheet: a month (--month YYYY-MM) for payroll: a line per person, hours per day,
               totals per person and for everyone (--as-closed: as its close froze it),
               and pay categories for a payroll import: regular, overtime, night (--night,
               default 22:00-06:00), weekend and holiday hours.
    corrections: a month (--month YYYY-MM): every change of a stored record or closed day,
               what it was and became, when, and whether it came after the month's close.
    compliance: a month (--month YYYY-MM) judged by a rule pack (--rules eu, the default;
               de, ru, or a TOML file): one row per violation (user, date or week, rule,
               figure, limit, estimated, source). Exit 0 with none, 1 with any, so a timer
               can alert; a bad --rules file is exit 2. Figures, not legal advice.

    Tables fit the terminal: names wrap, and columns that still do not fit are named in a
    footer line. --database URL reads that database without a config file.
    """
    if name not in views.REPORTS:
        raise ConfigError(f"report {name!r}: expected one of {', '.join(views.REPORT_NAMES)}")
    if date_from and date_to and date_from > date_to:
        raise ConfigError(f"--from {date_from} is after --to {date_to}")
    with maintenance.open_database(config.database_url) as engine:
        return storage.get_view_rows(
            engine, views.REPORTS[name], date_from=date_from, date_to=date_to, portals=portals, users=users
        )


def timesheet(
    config: Config,
    month: date,
    *,
    portals: Sequence[str] = (),
    department: str | None = None,
    users: Sequence[int] = (),
    night: tuple[time, time] = NIGHT,
) -> Timesheet:
    """A month of the `workdays` table per person, for `report timesheet --month YYYY-MM`.

    --department keeps the people whose department (the first one's name) matches,
    ignoring case. Each person's pay categories (regular, overtime, night, weekend, holiday)
    come with it: the kind of day from the portal's calendar and absences, night work inside
    `night` (local time), overtime as the attendance view counts it (over the schedule's shift,
    else the minimum duration; 8 h where the view has no basis).
    """
    first = month.replace(day=1)
    last = month_dates(first)[-1]
    with maintenance.open_database(config.database_url) as engine:
        rows = storage.get_view_rows(
            engine, views.workdays, date_from=first, date_to=last, portals=portals, users=users
        )
        return _with_pay(
            engine, build_timesheet(first, _of_department(rows, department)), first, night, closed=False
        )


def closed_timesheet(
    config: Config,
    month: date,
    *,
    portals: Sequence[str] = (),
    department: str | None = None,
    users: Sequence[int] = (),
    night: tuple[time, time] = NIGHT,
) -> Timesheet:
    """The month's timesheet as its newest close froze it (`--as-closed`), pay categories made
    from the frozen days and the calendar, absences and norms as stored at the close, so
    payroll sees again what it saw whatever changed since."""
    first = month.replace(day=1)
    with maintenance.open_database(config.database_url) as engine:
        rows, note = closing.closed_workdays(engine, first, portals)
        if users:
            rows = [row for row in rows if row["user_id"] in users]
        sheet = build_timesheet(first, _of_department(rows, department), as_closed=note)
        return _with_pay(engine, sheet, first, night, closed=True)


def _of_department(rows: list[dict[str, Any]], department: str | None) -> list[dict[str, Any]]:
    """The rows whose department (the first one's name) is `department` ignoring case, all of
    them for None: one rule for the plain and the closed timesheet, so `--department` keeps
    the same people with or without `--as-closed`."""
    if department is None:
        return rows
    wanted = department.casefold()
    return [row for row in rows if (row.get("department") or "").casefold() == wanted]


def _with_pay(
    engine: Engine, sheet: Timesheet, first: date, night: tuple[time, time], *, closed: bool
) -> Timesheet:
    """`sheet` with each person's pay categories, portal by portal; `closed`: from the days each
    portal's newest close of the month froze, judged by what was stored at that close."""
    month = Month.parse(f"{first:%Y-%m}")
    pay: dict[tuple[str, int], PayCategories] = {}
    for portal in sorted({row.portal for row in sheet.rows}):
        people = {row.user_id for row in sheet.rows if row.portal == portal}
        as_closed: dict[str, Any] = {}
        if closed:
            with engine.connect() as connection:
                close = closes.get_closes(connection, portal, first)[-1]
                as_closed = {
                    "frozen": closes.get_closed_workdays(connection, close),
                    "as_of": close.closed_at,
                }
        found = stored_pay(engine, portal, month, night=night, users=people, **as_closed)
        pay |= {(portal, user_id): part for user_id, part in found.items()}
    return replace(sheet, pay=pay, night=night)


def compliance(
    config: Config,
    month: date,
    *,
    rules: str = "eu",
    portals: Sequence[str] = (),
    department: str | None = None,
    users: Sequence[int] = (),
) -> ComplianceReport:
    """The violations of a month by a rule pack, for `report compliance --month YYYY-MM`.

    The pack is read first, so a bad file stops before the database is opened. Each portal
    (every portal with workdays in the month when none is named) is judged on its own.
    """
    pack = load_pack(rules)
    with maintenance.open_database(config.database_url) as engine:
        return find_stored_violations(
            engine,
            Month.parse(f"{month:%Y-%m}"),
            pack,
            portals=portals,
            users=list(users) or None,
            department=department,
        )
