"""Every command-line option, declared once: flags, the check that types its value, and its help.

An option is keyed by the name of the parameter it fills. `poller.cli_parser` reads each
command function's signature and gives the command one option per parameter, from here;
the parameter's default is the option's, and one without a default makes it required. A
name whose meaning differs between commands is keyed `command.name` for the odd ones out
(`backfill.users` is a list of user ids, the emulator's `users` a count).
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from poller import cli_types
from poller.emulator.settings import FAULT_KINDS, EmulatorSettings
from poller.logs import LOG_LEVELS
from poller.views import REPORT_NAMES

NO_DEFAULT: Any = inspect.Parameter.empty


def night_window(text: str) -> tuple[time, time]:
    """`22:00-06:00` as its two local times; a window may cross midnight, not be empty."""
    start, _, end = text.partition("-")
    try:
        bounds = (time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a night window (HH:MM-HH:MM)") from None
    if bounds[0] == bounds[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: the night window is empty")
    return bounds  # a parameter without a default: a required option


@dataclass(frozen=True)
class Option:
    """One option: its flags (a single name without dashes: a positional) and what it means.

    A parameter whose default is True or False is a switch: `flags` turn it on, `off` (a
    flag and its help) turns it off. `default` is for the global options only: a command's
    defaults are its function's, declared there once.
    """

    flags: tuple[str, ...]
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: Sequence[str] | None = None
    repeatable: bool = False  # --portal a --portal b: a list
    off: tuple[str, str] | None = None
    default: Any = NO_DEFAULT
    secret: bool = False  # redacted from logs and error lines once given

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")


@dataclass(frozen=True)
class Fields:
    """A parameter built from options of its own: `kind(**fields given)` (the emulator's settings)."""

    kind: type
    names: tuple[str, ...]
    defaults: dict[str, str] = field(default_factory=dict)  # shown for fields made by a factory


FAULTS = tuple(f"fault_{kind}" for kind in FAULT_KINDS)

OPTIONS: dict[str, Option | Fields] = {
    # -- the database and the config file
    "path": Option(("path",), "where to write the config (default ./config.toml)", type=Path, metavar="PATH"),
    "force": Option(("--force",), "replace an existing file"),
    "migrate": Option(
        ("--migrate",),
        "upgrade the database schema first",
        off=("--no-migrate", "do not upgrade the database schema first"),
    ),
    "database_url": Option(
        ("--database",),
        "read this database URL instead of the config file's (no config file needed)",
        type=cli_types.database_url,
        metavar="URL",
    ),
    # -- which rows
    "report.name": Option(("report",), "the report to print", choices=REPORT_NAMES),
    "month": Option(("--month",), "the month", type=cli_types.month, metavar="YYYY-MM"),
    "report.month": Option(
        ("--month",),
        "timesheet (default: this month), corrections, compliance: the month",
        type=cli_types.month,
        metavar="YYYY-MM",
    ),
    "department": Option(
        ("--department",), "timesheet, compliance: only this department (name, any case)", metavar="NAME"
    ),
    "rules": Option(
        ("--rules",),
        "compliance: the rule pack, eu (default: EU 2003/88), de (ArbZG), ru (TK RF) or a TOML file's path",
        metavar="PACK",
    ),
    "night": Option(
        ("--night",),
        "timesheet: the night window of night_hours, local time (default 22:00-06:00)",
        type=night_window,
        metavar="HH:MM-HH:MM",
    ),
    "date_from": Option(("--from",), "first local work date, YYYY-MM-DD", type=cli_types.iso_date),
    "date_to": Option(("--to",), "last local work date, YYYY-MM-DD", type=cli_types.iso_date),
    "portals": Option(("--portal",), "only this portal (repeatable)", metavar="NAME", repeatable=True),
    "report.users": Option(
        ("--user",),
        "only this user id (repeatable)",
        type=cli_types.positive_int,
        metavar="ID",
        repeatable=True,
    ),
    "backfill.users": Option(
        ("--users",), "only these user ids, comma-separated: 1,5,7", type=cli_types.user_ids
    ),
    "since": Option(("--since",), "first local date, YYYY-MM-DD", type=cli_types.iso_date),
    "until": Option(("--until",), "last local date, YYYY-MM-DD (default today)", type=cli_types.iso_date),
    "runs": Option(("--runs",), "cycles to show", type=cli_types.positive_int),
    # -- how the result is printed (the choices are the parameter's Literal)
    "output_format": Option(("--format",), "how to print the result"),
    "as_closed": Option(("--as-closed",), "timesheet: the figures the month's newest close froze"),
    "strict": Option(("--strict",), "exit 1 on warnings too"),
    # -- close, verify, prune
    "close.force": Option(("--force",), "close a closed month again (the earlier close is kept)"),
    "digest": Option(
        ("--digest",),
        "the digest `close` printed, kept elsewhere",
        type=cli_types.sha256_digest,
        metavar="SHA256",
    ),
    "older_than": Option(("--older-than",), "age such as 400d, 12w or 36h", type=cli_types.age),
    "dry_run": Option(("--dry-run",), "count what would be deleted; delete nothing"),
    # -- get-status
    "url": Option(("--url",), "incoming-webhook URL, or the portal address with --token"),
    "userid": Option(("--userid",), "user id (default: the webhook's or token's own user)"),
    "token": Option(("--token",), "OAuth access token; then --url is the portal's address", secret=True),
    # -- the emulator and the demo
    "host": Option(("--host",), "the address to listen on"),
    "port": Option(("--port",), "0 picks a free port", type=cli_types.port_number),
    "settings": Fields(
        EmulatorSettings,
        ("users", "speed", "webhook_secret", "access_token", "rate", "burst", "token_lifetime", *FAULTS),
        defaults={"webhook_secret": "random", "access_token": "random"},
    ),
    "users": Option(("--users",), "simulated users", type=cli_types.positive_int),
    "emulator.speed": Option(
        ("--speed",), "above 1: replay the last day this many times faster, then run on real time", type=float
    ),
    "demo.speed": Option(("--speed",), "simulated seconds per real second", type=float),
    "webhook_secret": Option(("--secret",), "webhook secret", secret=True),
    "access_token": Option(("--token",), "OAuth access token", secret=True),
    "rate": Option(("--rate",), "leaky-bucket drain per second; 0 = no limit", type=float),
    "burst": Option(("--burst",), "leaky-bucket size", type=cli_types.positive_int),
    "token_lifetime": Option(("--token-lifetime",), "access token lifetime, seconds", type=float),
    **{
        f"fault_{kind}": Option(
            (f"--fault-{kind}",), f"share of requests answered with fault '{kind}'", float
        )
        for kind in FAULT_KINDS
    },
    "demo.database": Option(("--database",), "SQLite file to write", type=Path),
    "duration": Option(("--duration",), "seconds to poll", type=float),
    "interval": Option(("--interval",), "seconds between cycles", type=float),
}

# Options every command takes, before or after its name; the default is the top parser's.
GLOBAL_OPTIONS: dict[str, Option] = {
    "config": Option(("-c", "--config"), "config file (default: $TIMEMAN_POLLER_CONFIG, else ./config.toml)"),
    "log_level": Option(("--log-level",), "default INFO", type=str.upper, choices=LOG_LEVELS, default="INFO"),
    "log_format": Option(
        ("--log-format",), "json: one object per line", choices=("text", "json"), default="text"
    ),
}

# Parameters the CLI fills itself (the config from -c or --database) or leaves to their default.
SUPPLIED = frozenset({"config", "now", "progress", "call"})


def option_for(command: str, name: str) -> Option | Fields:
    """The option of parameter `name` of `command`: `command.name` first, else `name`.

    A parameter declared nowhere is a bug in the declarations: KeyError names it.
    """
    found = OPTIONS.get(f"{command}.{name}") or OPTIONS.get(name)
    if found is None:
        raise KeyError(f"command {command!r}: parameter {name!r} has no option in poller.cli_options.OPTIONS")
    return found
