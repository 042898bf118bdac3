"""The `timeman-poller` command line: parse, call a function of `poller.commands`, print.

Errors of ours are caught here once and shown as one line (JSON with `--log-format json`);
exit codes: 0 success, 1 a user, portal or database failed, 2 a configuration or usage
error. The global options `-c`, `--log-level` and `--log-format` go before or after the
command. The parser and its option types: poller.cli_parser.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from poller import commands
from poller.cli_parser import Handler, UsageError, build_parser
from poller.config import Config
from poller.emulator.settings import FAULT_KINDS, EmulatorSettings
from poller.errors import ConfigError, PollerError
from poller.history import closing, corrections
from poller.logs import PROGRAM, RedactingFilter, fatal_line, installed
from poller.poll.backfill import ProgressDisplay
from poller.render.report import CORRECTIONS, TIMESHEET, render, render_check
from poller.render.timesheet import render_timesheet

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CommandLine:
    """The parser, and one method per command that parses its options, calls and prints."""

    def __init__(self) -> None:
        self.parser = build_parser(self)
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
        if args.report == CORRECTIONS:
            return self._corrections(args)
        if args.as_closed:
            raise ConfigError("--as-closed: only for `report timesheet`")
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
        if args.date_from is not None or args.date_to is not None:
            raise ConfigError("report timesheet: give --month, not --from/--to")
        timesheet = closing.closed_timesheet if args.as_closed else commands.timesheet
        sheet = timesheet(
            self._config(args, portal_secrets=False),
            args.month or date.today().replace(day=1),  # by default the month this machine is in
            portals=args.portal or (),
            department=args.department,
            users=args.user or (),
        )
        print(render_timesheet(sheet, args.format, table_width()))
        return EXIT_OK

    def _corrections(self, args: argparse.Namespace) -> int:
        if args.month is None:
            raise ConfigError("report corrections: --month is required (YYYY-MM)")
        if args.date_from is not None or args.date_to is not None or args.department is not None:
            raise ConfigError(
                "report corrections: give --month (and --portal, --user), not --from/--to/--department"
            )
        rows = corrections.corrections(
            self._config(args, portal_secrets=False),
            args.month,
            portals=args.portal or (),
            users=args.user or (),
        )
        print(corrections.render_corrections(rows, args.format, table_width()))
        return EXIT_OK

    def check(self, args: argparse.Namespace) -> int:
        report = commands.check(self._config(args))
        if args.format == "json":
            print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        else:
            print(render_check(report, table_width()))
        return EXIT_OK if (report.clean if args.strict else report.ok) else EXIT_FAILED

    def close(self, args: argparse.Namespace) -> int:
        done = closing.close_month(
            self._config(args, portal_secrets=False), args.month, portals=args.portal or (), again=args.force
        )
        if args.format == "json":
            print(json.dumps(closing.close_json(done), indent=2, ensure_ascii=False))
        else:
            print("\n".join(closing.close_summary(close) for close in done))
        return EXIT_OK

    def verify(self, args: argparse.Namespace) -> int:
        found = closing.verify_month(
            self._config(args, portal_secrets=False),
            args.month,
            portals=args.portal or (),
            digest=args.digest,
        )
        if args.format == "json":
            print(json.dumps([result.to_json() for result in found], indent=2, ensure_ascii=False))
        else:
            print("\n".join(result.summary() for result in found))
        return EXIT_OK if all(result.ok for result in found) else EXIT_FAILED

    def prune(self, args: argparse.Namespace) -> int:
        result = commands.prune(
            self._config(args, portal_secrets=False), args.older_than, dry_run=args.dry_run
        )
        print(result.summary())
        if result.refused is not None:  # a dry run inside the retention floor
            return self._fail(ConfigError(result.refused), args.log_format, EXIT_USAGE)
        return EXIT_OK

    def get_status(self, args: argparse.Namespace) -> int:
        self.redactor.add([args.token or ""])  # a webhook secret is redacted as part of any URL
        answer = commands.get_status(args.url, args.userid, args.token)
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return EXIT_OK

    def emulator(self, args: argparse.Namespace) -> int:
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
        replayed(settings, datetime.now(UTC))
        emulator = commands.start_emulator(settings, args.host, args.port)  # fails before the banner
        try:
            base = emulator.base_url
            print(f"Emulated Bitrix24 portal with {args.users} users ({clock_words(settings.speed)})")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line (`sys.argv[1:]` by default) and return its exit code."""
    return CommandLine().main(sys.argv[1:] if argv is None else list(argv))


REPLAY = timedelta(days=1)  # `emulator --speed N` (N > 1) replays this much of the past


def replayed(settings: EmulatorSettings, now: datetime) -> EmulatorSettings:
    """The world of `emulator --speed N` on a clock never ahead of `now` (a poller's real time).

    N > 1 starts it a day (REPLAY) back and runs it N times faster until it reaches now, then
    on real time: a world that ran ahead would open days in the poller's future (0 worked).
    """
    settings.catch_up = True
    if settings.speed > 1:
        settings.start = now - REPLAY
    return settings


def clock_words(speed: float) -> str:
    if speed <= 1:
        return "real time" if speed == 1 else f"clock x{speed:g}"
    minutes = REPLAY.total_seconds() / (speed - 1) / 60
    return f"the last day replayed x{speed:g} in {minutes:.0f} min, then real time"


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
