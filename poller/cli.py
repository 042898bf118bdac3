"""The `timeman-poller` command line: parse, call a function of `poller.commands`, print.

Errors of ours are caught here once and shown as one line (JSON with `--log-format json`);
exit codes: 0 success, 1 a user, portal or database failed, 2 a configuration or usage
error. The global options `-c`, `--log-level` and `--log-format` go before or after the
command. The commands: poller.cli_commands; their options, declared once:
poller.cli_options; the parser built from both: poller.cli_parser.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import io
import logging
import os
import sys
from collections.abc import Sequence

from poller import commands
from poller.cli_commands import COMMANDS, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Command
from poller.cli_parser import UsageError, accepted, arguments, build_parser, given
from poller.config import Config
from poller.errors import ConfigError, PollerError
from poller.logs import RedactingFilter, fatal_line, installed

logger = logging.getLogger(__name__)


@functools.cache  # the same for every call of main in a process; parsing leaves it as it was
def _parser(commands: tuple[Command, ...]) -> argparse.ArgumentParser:
    return build_parser(commands)


class CommandLine:
    """The parser of every command; `main` parses, calls the command, and turns errors into exit codes."""

    def __init__(self) -> None:
        self.parser = _parser(tuple(COMMANDS))
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
            try:
                code = self.run(args.handler, args)
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

    def run(self, command: Command, args: argparse.Namespace) -> int:
        """Call `command` with the options given and let its `show` print the result."""
        values = given(command, args)
        secrets = (getattr(args, a.name, None) for a in arguments(command) if a.option.secret)
        self.redactor.add(str(secret) for secret in secrets if secret)  # a webhook URL's is redacted as a URL
        if "config" in inspect.signature(command.function).parameters:
            values["config"] = self._config(args, values.pop("database_url", None), command.portal_secrets)
        call = functools.partial(command.function, **accepted(command.function, values))
        return command.show(call, **accepted(command.show, values))

    def _config(self, args: argparse.Namespace, url: str | None, portal_secrets: bool) -> Config:
        """The config file's; `--database URL` (report, status, prune) needs no file at all."""
        if url is not None:
            return commands.database_only(url)
        config = commands.load_config(args.config, portal_secrets=portal_secrets)
        self.redactor.add(config.secrets())
        return config


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line (`sys.argv[1:]` by default) and return its exit code."""
    return CommandLine().main(sys.argv[1:] if argv is None else list(argv))


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
