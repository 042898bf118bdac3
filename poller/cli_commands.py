"""The commands of the command line: each a function of `poller.commands` and how its result shows.

A command's options come from the signatures of its function and of its `show` (what to
print: `--format`, `--strict`), its help from the function's docstring. `show` gets `call`,
the function with every option it takes bound, and prints the result through
`poller.render`; what it returns is the exit code.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from poller import commands
from poller.compliance.pay import NIGHT
from poller.config import Config
from poller.emulator.settings import EmulatorSettings
from poller.errors import ConfigError
from poller.history import closing, corrections
from poller.render.backfill import backfill_summary
from poller.render.closing import close_json, close_line, verify_json, verify_summary
from poller.render.compliance import render_compliance
from poller.render.corrections import render_corrections
from poller.render.demo import demo_ending, demo_line
from poller.render.progress import ProgressDisplay
from poller.render.report import render, render_check
from poller.render.results import (
    REPLAY,
    emulator_banner,
    init_line,
    json_text,
    prune_summary,
    resume_line,
    terminal_width,
    upgrade_line,
)
from poller.render.status import status_json, status_summary
from poller.render.timesheet import render_timesheet
from poller.views import COMPLIANCE, CORRECTIONS, TIMESHEET

logger = logging.getLogger("poller.cli")  # the command line's lines, as they always were

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

Call = Callable[..., Any]


@dataclass(frozen=True)
class Command:
    """A command: its name ("db upgrade"), its function, and the `show` that prints its result.

    `portal_secrets` False: the command only reads the database, so unset portal variables
    may stay as written; `database_option`: `--database URL` may replace the config file.
    """

    name: str
    function: Callable[..., Any]
    show: Callable[..., int]
    portal_secrets: bool = True
    database_option: bool = False

    @property
    def help(self) -> str:
        return inspect.getdoc(self.function) or ""


def show_init(call: Call) -> int:
    print(init_line(call()))
    return EXIT_OK


def show_upgrade(call: Call) -> int:
    print(upgrade_line(call()))
    return EXIT_OK


def show_poll(call: Call) -> int:
    report = call()
    logger.info("cycle: %s", report.log_line())
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def show_run(call: Call) -> int:
    call()
    return EXIT_OK


def show_status(call: Call, output_format: Literal["text", "json"] = "text") -> int:
    info = call()
    print(json_text(status_json(info)) if output_format == "json" else status_summary(info))
    return EXIT_OK if info.ok else EXIT_FAILED


def show_report(
    call: Call,
    config: Config,
    name: str = "workdays",
    *,
    month: date | None = None,
    department: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    portals: Sequence[str] = (),
    users: Sequence[int] = (),
    as_closed: bool = False,
    rules: str | None = None,
    night: tuple[time, time] | None = None,
    output_format: Literal["table", "csv", "json"] = "table",
) -> int:
    """workdays, latest and daily through `call`; a timesheet, corrections and compliance are their own."""
    if rules is not None and name != COMPLIANCE:
        raise ConfigError("--rules: only for `report compliance`")
    if night is not None and name != TIMESHEET:
        raise ConfigError("--night: only for `report timesheet`")
    if name == COMPLIANCE:
        if month is None or date_from is not None or date_to is not None:
            raise ConfigError("report compliance: give --month YYYY-MM (not --from/--to)")
        if as_closed:
            raise ConfigError("--as-closed: only for `report timesheet`")
        found = commands.compliance(
            config, month, rules=rules or "eu", portals=portals, department=department, users=users
        )
        print(render_compliance(found, output_format, terminal_width()))
        return EXIT_OK if found.ok else EXIT_FAILED  # exit 1 on findings: a timer can alert on it
    if name == TIMESHEET:
        if date_from is not None or date_to is not None:
            raise ConfigError("report timesheet: give --month, not --from/--to")
        month = month or date.today().replace(day=1)  # by default the month this machine is in
        if as_closed:
            sheet = commands.closed_timesheet(
                config, month, portals=portals, department=department, users=users, night=night or NIGHT
            )
        else:
            sheet = commands.timesheet(
                config, month, portals=portals, department=department, users=users, night=night or NIGHT
            )
        print(render_timesheet(sheet, output_format, terminal_width()))
    elif name == CORRECTIONS:
        if month is None:
            raise ConfigError("report corrections: --month is required (YYYY-MM)")
        if date_from is not None or date_to is not None or department is not None:
            raise ConfigError(
                "report corrections: give --month (and --portal, --user), not --from/--to/--department"
            )
        rows = corrections.corrections(config, month, portals=portals, users=users)
        print(render_corrections(rows, output_format, terminal_width()))
    elif as_closed:
        raise ConfigError("--as-closed: only for `report timesheet`")
    elif month is not None or department is not None:
        raise ConfigError("--month and --department: only for `report timesheet`")
    else:
        print(render(name, call(), output_format, terminal_width()))
    return EXIT_OK


def show_check(call: Call, output_format: Literal["table", "json"] = "table", strict: bool = False) -> int:
    report = call()
    print(json_text(report.to_json()) if output_format == "json" else render_check(report, terminal_width()))
    return EXIT_OK if (report.clean if strict else report.ok) else EXIT_FAILED


def show_close(call: Call, output_format: Literal["text", "json"] = "text") -> int:
    done = call()
    if output_format == "json":
        print(json_text(close_json(done)))
    else:
        print("\n".join(close_line(close) for close in done))
    return EXIT_OK


def show_verify(call: Call, output_format: Literal["text", "json"] = "text") -> int:
    found = call()
    if output_format == "json":
        print(json_text([verify_json(result) for result in found]))
    else:
        print("\n".join(verify_summary(result) for result in found))
    return EXIT_OK if all(result.ok for result in found) else EXIT_FAILED


def show_prune(call: Call) -> int:
    result = call()
    print(prune_summary(result))
    if result.refused is not None:  # a dry run inside the retention floor: exit 2 after the counts
        raise ConfigError(result.refused)
    return EXIT_OK


def show_answer(call: Call) -> int:
    print(json_text(call()))
    return EXIT_OK


def serve(call: Call, settings: EmulatorSettings) -> int:
    """Start the emulator (on a busy port it fails before the banner), then wait for Ctrl-C."""
    replayed(settings, datetime.now(UTC))  # the same object `call` holds
    emulator = call()
    try:
        print(emulator_banner(emulator, settings), flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return EXIT_OK


def replayed(settings: EmulatorSettings, now: datetime) -> EmulatorSettings:
    """The world of `emulator --speed N` on a clock never ahead of `now` (a poller's real time).

    N > 1 starts it a day (REPLAY) back and runs it N times faster until it reaches now, then
    on real time: a world that ran ahead would open days in the poller's future (0 worked).
    """
    settings.catch_up = True
    if settings.speed > 1:
        settings.start = now - REPLAY
    return settings


def show_demo(call: Call) -> int:
    result = call(progress=lambda event: print(demo_line(event), flush=True))
    print(demo_ending(result))
    return EXIT_OK if result.ok else EXIT_FAILED


def show_backfill(call: Call, portals: Sequence[str] = (), users: Sequence[int] | None = None) -> int:
    with ProgressDisplay(sys.stderr) as progress:
        report = call(progress=progress)
    print(backfill_summary(report))
    if report.interrupted:
        print(resume_line(report, portals, users))
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


COMMANDS = (
    Command("init", commands.init, show_init, portal_secrets=False),
    Command("db upgrade", commands.db_upgrade, show_upgrade, portal_secrets=False),
    Command("poll", commands.poll, show_poll),
    Command("run", commands.run, show_run),
    Command("report", commands.report, show_report, portal_secrets=False, database_option=True),
    Command("close", closing.close_month, show_close, portal_secrets=False, database_option=True),
    Command("verify", closing.verify_month, show_verify, portal_secrets=False, database_option=True),
    Command("status", commands.status, show_status, portal_secrets=False, database_option=True),
    Command("prune", commands.prune, show_prune, portal_secrets=False, database_option=True),
    Command("check", commands.check, show_check),
    Command("get-status", commands.get_status, show_answer),
    Command("emulator", commands.start_emulator, serve),
    Command("demo", commands.demo, show_demo),
    Command("backfill", commands.backfill, show_backfill),
)
GROUPS = {"db": "Database schema commands."}  # a command named "db upgrade" is `upgrade` under `db`
