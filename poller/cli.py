"""The `timeman-poller` command line: parse, call a function of `poller.commands`, print.

Errors of ours are caught here once and shown as one line (JSON with `--log-format json`);
exit codes: 0 success, 1 a user, portal or database failed, 2 a configuration or usage
error. The global options `-c`, `--log-level` and `--log-format` go before or after the
command.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn

from poller import __version__, commands
from poller.backfill import ProgressDisplay
from poller.config import Config
from poller.emulator.settings import FAULT_KINDS
from poller.errors import ConfigError, PollerError
from poller.logs import LOG_LEVELS, PROGRAM, RedactingFilter, fatal_line, installed
from poller.report import REPORT_NAMES, TIMESHEET, render, render_check, render_timesheet

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
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


class CommandLine:
    """The parser, and one method per command that parses its options, calls and prints."""

    def __init__(self) -> None:
        self.parser = self.build_parser()
        self.redactor = RedactingFilter()

    def main(self, argv: Sequence[str]) -> int:
        log_format = "json" if _option_value(argv, "--log-format") == "json" else "text"
        try:
            args = self.parser.parse_args(argv)
        except UsageError as exc:
            if log_format == "json":
                print(fatal_line(f"{exc.parser.prog}: {exc.message}", "json"), file=sys.stderr)
            else:
                exc.parser.print_usage(sys.stderr)
                print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
            return EXIT_USAGE
        except SystemExit as exc:  # --help and --version print and "exit" 0
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        with installed(args.log_level, args.log_format) as redactor:
            self.redactor = redactor
            handler: Handler = args.handler
            try:
                code = handler(args)
                sys.stdout.flush()  # a closed pipe shows here, not at exit
                return code
            except BrokenPipeError:
                _silence_stdout()
                return EXIT_OK
            except ConfigError as exc:
                return self._fail(exc, args.log_format, EXIT_USAGE)
            except PollerError as exc:
                return self._fail(exc, args.log_format, EXIT_FAILED)
            except KeyboardInterrupt:
                return EXIT_INTERRUPTED
            except Exception:
                # A bug: log the traceback through the redacting handler, not bare to stderr.
                logger.critical("unexpected error; please report this as a bug", exc_info=True)
                return EXIT_FAILED

    def _fail(self, exc: PollerError, log_format: str, code: int) -> int:
        line = fatal_line(self.redactor.redact(str(exc)), "json" if log_format == "json" else "text")
        print(line, file=sys.stderr)
        return code

    def _config(self, args: argparse.Namespace, *, portal_secrets: bool = True) -> Config:
        """The config file's; `--database URL` (report, status, prune) needs no file at all."""
        url = getattr(args, "database_url", None)
        if url is not None:
            return commands.database_only(url)
        config = commands.load_config(args.config, portal_secrets=portal_secrets)
        self.redactor.add(config.secrets())
        return config

    # -- the commands ----------------------------------------------------------------------

    def db_upgrade(self, args: argparse.Namespace) -> int:
        print(commands.db_upgrade(self._config(args, portal_secrets=False)).summary())
        return EXIT_OK

    def poll(self, args: argparse.Namespace) -> int:
        report = commands.poll(self._config(args), migrate=args.migrate)
        logger.info("cycle: %s", report.summary())
        if report.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if report.ok else EXIT_FAILED

    def run(self, args: argparse.Namespace) -> int:
        commands.run(self._config(args), migrate=args.migrate)
        return EXIT_OK

    def status(self, args: argparse.Namespace) -> int:
        info = commands.status(self._config(args, portal_secrets=False), args.runs)
        if args.format == "json":
            print(json.dumps(info.to_json(), indent=2, ensure_ascii=False))
        else:
            print(info.summary())
        return EXIT_OK if info.ok else EXIT_FAILED

    def report(self, args: argparse.Namespace) -> int:
        if args.report == TIMESHEET:
            return self._timesheet(args)
        if args.month is not None or args.department is not None:
            raise ConfigError("--month and --department: only for `report timesheet`")
        rows = commands.report(
            self._config(args, portal_secrets=False),
            args.report,
            date_from=args.date_from,
            date_to=args.date_to,
            portals=args.portal or (),
            users=args.user or (),
        )
        print(render(args.report, rows, args.format, table_width()))
        return EXIT_OK

    def _timesheet(self, args: argparse.Namespace) -> int:
        if args.month is None:
            raise ConfigError("report timesheet: --month is required (YYYY-MM)")
        if args.date_from is not None or args.date_to is not None:
            raise ConfigError("report timesheet: give --month, not --from/--to")
        sheet = commands.timesheet(
            self._config(args, portal_secrets=False),
            args.month,
            portals=args.portal or (),
            department=args.department,
            users=args.user or (),
        )
        print(render_timesheet(sheet, args.format, table_width()))
        return EXIT_OK

    def check(self, args: argparse.Namespace) -> int:
        report = commands.check(self._config(args))
        if args.format == "json":
            print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        else:
            print(render_check(report, table_width()))
        return EXIT_OK if (report.clean if args.strict else report.ok) else EXIT_FAILED

    def prune(self, args: argparse.Namespace) -> int:
        result = commands.prune(
            self._config(args, portal_secrets=False), args.older_than, dry_run=args.dry_run
        )
        print(result.summary())
        return EXIT_OK

    def get_status(self, args: argparse.Namespace) -> int:
        self.redactor.add([args.token or ""])  # a webhook secret is redacted as part of any URL
        answer = commands.get_status(args.url, args.userid, args.token)
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return EXIT_OK

    def emulator(self, args: argparse.Namespace) -> int:
        from poller.emulator import EmulatorSettings

        settings = EmulatorSettings(
            users=args.users,
            speed=args.speed,
            rate=args.rate,
            burst=args.burst,
            token_lifetime=args.token_lifetime,
            **{f"fault_{kind}": getattr(args, f"fault_{kind}") for kind in FAULT_KINDS},
        )
        if args.secret:
            settings.webhook_secret = args.secret
        if args.token:
            settings.access_token = args.token
        emulator = commands.start_emulator(settings, args.host, args.port)  # fails before the banner
        try:
            base = emulator.base_url
            print(f"Emulated Bitrix24 portal with {args.users} users (clock x{args.speed:g})")
            print(f'  webhook_url   = "{emulator.webhook_url}"')
            print(f'  domain        = "{base}"  access_token = "{settings.access_token}"')
            print(f'  refresh_token = "{settings.refresh_token}"  client_id = "{settings.client_id}"')
            print(f'  client_secret = "{settings.client_secret}"  oauth_url = "{emulator.oauth_url}"')
            print("Press Ctrl+C to stop.", flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()
        return EXIT_OK

    def demo(self, args: argparse.Namespace) -> int:
        result = commands.demo(
            Path(args.database),
            duration=args.duration,
            interval=args.interval,
            users=args.users,
            speed=args.speed,
            progress=lambda line: print(line, flush=True),
        )
        print(f"\n{result.latest_table}\n\n{result.next_steps()}")
        return EXIT_OK if result.ok else EXIT_FAILED

    def backfill(self, args: argparse.Namespace) -> int:
        with ProgressDisplay(sys.stderr) as progress:
            report = commands.backfill(
                self._config(args),
                args.since,
                args.until,
                portals=args.portal or (),
                users=args.users,
                progress=progress,
            )
        print(report.summary())
        if report.interrupted:
            done = sum(p.skipped + p.done for p in report.portals)
            asked = sum(p.users for p in report.portals)
            again = [PROGRAM, "backfill", f"--since {report.date_from}", f"--until {report.date_to}"]
            again += [f"--portal {name}" for name in args.portal or ()]
            again += [f"--users {','.join(map(str, args.users))}"] if args.users else []
            print(f"interrupted: {done:,} of {asked:,} users done; to resume: {' '.join(again)}")
            return EXIT_INTERRUPTED
        return EXIT_OK if report.ok else EXIT_FAILED

    # -- the parser ------------------------------------------------------------------------

    def build_parser(self) -> argparse.ArgumentParser:
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

        db = subparsers.add_parser(
            "db", help="database schema commands", description="Database schema commands."
        )
        _add_global_options(db, top=False)
        db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
        add("upgrade", commands.db_upgrade, self.db_upgrade, into=db_commands)

        poll = add("poll", commands.poll, self.poll)
        poll.add_argument("--migrate", action="store_true", help="upgrade the database schema first")
        poll.add_argument(
            "--no-migrate", dest="migrate", action="store_false", help="do not upgrade the schema (default)"
        )
        poll.set_defaults(migrate=False)
        run = add("run", commands.run, self.run)
        run.add_argument(
            "--no-migrate",
            dest="migrate",
            action="store_false",
            help="do not upgrade the database schema first",
        )
        run.set_defaults(migrate=True)

        report = add("report", commands.report, self.report)
        report.add_argument("report", nargs="?", default="workdays", choices=list(REPORT_NAMES))
        report.add_argument("--month", type=_month, metavar="YYYY-MM", help="timesheet: the month")
        report.add_argument(
            "--department", metavar="NAME", help="timesheet: only this department (name, any case)"
        )
        report.add_argument("--from", dest="date_from", type=_date, help="first local work date, YYYY-MM-DD")
        report.add_argument("--to", dest="date_to", type=_date, help="last local work date, YYYY-MM-DD")
        report.add_argument("--portal", action="append", help="only this portal (repeatable)")
        report.add_argument(
            "--user", action="append", type=_positive_int, help="only this user id (repeatable)"
        )
        report.add_argument("--format", choices=["table", "csv", "json"], default="table")
        _add_database_option(report)

        status = add("status", commands.status, self.status)
        status.add_argument("--runs", type=_positive_int, default=10, help="cycles to show (default 10)")
        status.add_argument("--format", choices=["text", "json"], default="text")
        _add_database_option(status)

        prune = add("prune", commands.prune, self.prune)
        prune.add_argument("--older-than", required=True, type=_age, help="age such as 400d, 12w or 36h")
        prune.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
        )
        _add_database_option(prune)

        check = add("check", commands.check, self.check)
        check.add_argument("--format", choices=["table", "json"], default="table")
        check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")

        get_status = add("get-status", commands.get_status, self.get_status)
        get_status.add_argument(
            "--url", required=True, help="incoming-webhook URL, or the portal address with --token"
        )
        get_status.add_argument("--userid", help="user id (default: the webhook's or token's own user)")
        get_status.add_argument("--token", help="OAuth access token; then --url is the portal's address")

        emulator = add("emulator", commands.start_emulator, self.emulator)
        emulator.add_argument("--host", default="127.0.0.1")
        emulator.add_argument("--port", type=_port, default=8765, help="0 picks a free port (default 8765)")
        emulator.add_argument("--users", type=_positive_int, default=25, help="simulated users (default 25)")
        emulator.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
        emulator.add_argument("--secret", help="webhook secret (default: random)")
        emulator.add_argument("--token", help="OAuth access token (default: random)")
        emulator.add_argument(
            "--rate", type=float, default=2.0, help="leaky-bucket drain per second; 0 = no limit"
        )
        emulator.add_argument(
            "--burst", type=_positive_int, default=50, help="leaky-bucket size (default 50)"
        )
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

        demo = add("demo", commands.demo, self.demo)
        demo.add_argument("--database", default="timeman-demo.sqlite3", help="SQLite file to write")
        demo.add_argument("--duration", type=float, default=20.0, help="seconds to poll (default 20)")
        demo.add_argument("--interval", type=float, default=5.0, help="seconds between cycles (default 5)")
        demo.add_argument("--users", type=_positive_int, default=25, help="simulated users (default 25)")
        demo.add_argument("--speed", type=float, default=600.0, help="simulated seconds per real second")

        backfill = add("backfill", commands.backfill, self.backfill)
        backfill.add_argument("--since", required=True, type=_date, help="first local date, YYYY-MM-DD")
        backfill.add_argument("--until", type=_date, help="last local date, YYYY-MM-DD (default today)")
        backfill.add_argument("--portal", action="append", help="only this portal (repeatable)")
        backfill.add_argument("--users", type=_user_ids, help="only these user ids, comma-separated: 1,5,7")
        return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line (`sys.argv[1:]` by default) and return its exit code."""
    return CommandLine().main(sys.argv[1:] if argv is None else list(argv))


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


def table_width() -> int | None:
    """The terminal's width for tables ($COLUMNS first); None (no limit) when stdout is not a
    terminal and $COLUMNS is not set: a file or a pipe gets every column."""
    if not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        return None
    columns = shutil.get_terminal_size(fallback=(0, 0)).columns
    return columns if columns > 0 else None


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so that the flush at exit stays quiet.

    The way the Python docs advise (signal module, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout is not a file (in-process)
        pass


def _option_value(argv: Sequence[str], option: str) -> str | None:
    """The value of `option` in `argv`, read before parsing (to print a usage error as JSON)."""
    for index, word in enumerate(argv):
        if word == option and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(option + "="):
            return word.partition("=")[2]
    return None


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


def _database_url(text: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(text)
    except ArgumentError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a database URL (sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"
        ) from None
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
