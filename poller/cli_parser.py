"""The `timeman-poller` argument parser: each command's options, and the types that check them.

A command's help is the docstring of its function in `poller.commands`; its handler is the
`CommandLine` method that parses, calls and prints.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from poller import __version__, commands
from poller.emulator.settings import FAULT_KINDS
from poller.history import closing
from poller.logs import LOG_LEVELS, PROGRAM
from poller.render.report import REPORT_NAMES

if TYPE_CHECKING:
    from poller.cli import CommandLine

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """argparse found a bad command line; `parser` is the (sub)command it concerns."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """Raise usage errors instead of exiting, so that `main` can print them as JSON too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def build_parser(cli: CommandLine) -> argparse.ArgumentParser:
    """The parser of every command: its help is the command's docstring, its handler a method of `cli`."""
    parser = _Parser(
        prog=PROGRAM,
        description="Poll Bitrix24 timeman.status on a schedule and keep the history in SQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, function: Callable[..., Any], handler: Handler, into: Any = subparsers
    ) -> argparse.ArgumentParser:
        doc = inspect.getdoc(function) or ""
        sub: argparse.ArgumentParser = into.add_parser(
            name,
            help=doc.partition("\n")[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_global_options(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub

    db = subparsers.add_parser("db", help="database schema commands", description="Database schema commands.")
    _add_global_options(db, top=False)
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    add("upgrade", commands.db_upgrade, cli.db_upgrade, into=db_commands)

    poll = add("poll", commands.poll, cli.poll)
    poll.add_argument("--migrate", action="store_true", help="upgrade the database schema first")
    poll.add_argument(
        "--no-migrate", dest="migrate", action="store_false", help="do not upgrade the schema (default)"
    )
    poll.set_defaults(migrate=False)
    run = add("run", commands.run, cli.run)
    run.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        help="do not upgrade the database schema first",
    )
    run.set_defaults(migrate=True)

    report = add("report", commands.report, cli.report)
    report.add_argument("report", nargs="?", default="workdays", choices=list(REPORT_NAMES))
    report.add_argument(
        "--month",
        type=_month,
        metavar="YYYY-MM",
        help="timesheet (default: this month), corrections: the month",
    )
    report.add_argument(
        "--department", metavar="NAME", help="timesheet: only this department (name, any case)"
    )
    report.add_argument("--from", dest="date_from", type=_date, help="first local work date, YYYY-MM-DD")
    report.add_argument("--to", dest="date_to", type=_date, help="last local work date, YYYY-MM-DD")
    report.add_argument("--portal", action="append", help="only this portal (repeatable)")
    report.add_argument("--user", action="append", type=_positive_int, help="only this user id (repeatable)")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument(
        "--as-closed", action="store_true", help="timesheet: the figures the month's newest close froze"
    )
    _add_database_option(report)

    close = add("close", closing.close_month, cli.close)
    close.add_argument("--month", required=True, type=_month, metavar="YYYY-MM", help="the month to close")
    close.add_argument("--portal", action="append", help="only this portal (repeatable)")
    close.add_argument(
        "--force", action="store_true", help="close a closed month again (the earlier close is kept)"
    )
    close.add_argument("--format", choices=["text", "json"], default="text")
    _add_database_option(close)

    verify = add("verify", closing.verify_month, cli.verify)
    verify.add_argument("--month", required=True, type=_month, metavar="YYYY-MM", help="the closed month")
    verify.add_argument("--portal", action="append", help="only this portal (repeatable)")
    verify.add_argument(
        "--digest", type=_sha256, metavar="SHA256", help="the digest `close` printed, kept elsewhere"
    )
    verify.add_argument("--format", choices=["text", "json"], default="text")
    _add_database_option(verify)

    status = add("status", commands.status, cli.status)
    status.add_argument("--runs", type=_positive_int, default=10, help="cycles to show (default 10)")
    status.add_argument("--format", choices=["text", "json"], default="text")
    _add_database_option(status)

    prune = add("prune", commands.prune, cli.prune)
    prune.add_argument("--older-than", required=True, type=_age, help="age such as 400d, 12w or 36h")
    prune.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    _add_database_option(prune)

    check = add("check", commands.check, cli.check)
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")

    get_status = add("get-status", commands.get_status, cli.get_status)
    get_status.add_argument(
        "--url", required=True, help="incoming-webhook URL, or the portal address with --token"
    )
    get_status.add_argument("--userid", help="user id (default: the webhook's or token's own user)")
    get_status.add_argument("--token", help="OAuth access token; then --url is the portal's address")

    emulator = add("emulator", commands.start_emulator, cli.emulator)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=_port, default=8765, help="0 picks a free port (default 8765)")
    emulator.add_argument("--users", type=_positive_int, default=25, help="simulated users (default 25)")
    emulator.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="above 1: replay the last day this many times faster, then run on real time",
    )
    emulator.add_argument("--secret", help="webhook secret (default: random)")
    emulator.add_argument("--token", help="OAuth access token (default: random)")
    emulator.add_argument(
        "--rate", type=float, default=2.0, help="leaky-bucket drain per second; 0 = no limit"
    )
    emulator.add_argument("--burst", type=_positive_int, default=50, help="leaky-bucket size (default 50)")
    emulator.add_argument(
        "--token-lifetime", type=float, default=3600.0, help="access token lifetime, seconds"
    )
    for kind in FAULT_KINDS:
        emulator.add_argument(
            f"--fault-{kind}",
            type=float,
            default=0.0,
            help=f"share of requests answered with fault '{kind}'",
        )

    demo = add("demo", commands.demo, cli.demo)
    demo.add_argument("--database", default="timeman-demo.sqlite3", help="SQLite file to write")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to poll (default 20)")
    demo.add_argument("--interval", type=float, default=5.0, help="seconds between cycles (default 5)")
    demo.add_argument("--users", type=_positive_int, default=25, help="simulated users (default 25)")
    demo.add_argument("--speed", type=float, default=600.0, help="simulated seconds per real second")

    backfill = add("backfill", commands.backfill, cli.backfill)
    backfill.add_argument("--since", required=True, type=_date, help="first local date, YYYY-MM-DD")
    backfill.add_argument("--until", type=_date, help="last local date, YYYY-MM-DD (default today)")
    backfill.add_argument("--portal", action="append", help="only this portal (repeatable)")
    backfill.add_argument("--users", type=_user_ids, help="only these user ids, comma-separated: 1,5,7")
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after its name.

    After the command they default to SUPPRESS, so that a value given before it is not
    overwritten by the subcommand's default.
    """

    def default(value: str | None) -> Any:
        return value if top else argparse.SUPPRESS

    options = parser.add_argument_group("global options")
    options.add_argument(
        "-c",
        "--config",
        default=default(None),
        help="config file (default: $TIMEMAN_POLLER_CONFIG, else ./config.toml)",
    )
    options.add_argument(
        "--log-level", default=default("INFO"), choices=LOG_LEVELS, type=str.upper, help="default INFO"
    )
    options.add_argument(
        "--log-format", default=default("text"), choices=["text", "json"], help="json: one object per line"
    )


def _add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        dest="database_url",
        metavar="URL",
        type=_database_url,
        help="read this database URL instead of the config file's (no config file needed)",
    )


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _month(text: str) -> date:
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)") from None


def _sha256(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a SHA-256 digest (64 hexadecimal digits)")
    return value


def _database_url(text: str) -> str:
    from poller import storage

    if not storage.is_database_url(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a database URL (sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"
        )
    return text


def _age(text: str) -> timedelta:
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 400d, 12w or 36h")
    try:
        return timedelta(seconds=int(number) * units[unit])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is too long an age") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 0 to 65535")
    return value


def _user_ids(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of user ids such as 1,5,7")
    return tuple(int(part) for part in parts)
