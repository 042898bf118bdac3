"""The `timeman-poller` command line: thin wrappers over the package's functions.

Errors of ours are caught here once and shown as one line; exit codes: 0 success, 1 a
user, portal or database failed, 2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poller import __version__
from poller.errors import BitrixError, ConfigError, PollerError

if TYPE_CHECKING:
    from poller.config import Config

logger = logging.getLogger("poller")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class RedactingFilter(logging.Filter):
    """Replace known secrets in every log record, as a last line of defence."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            from poller.client import redact

            message = redact(record.getMessage(), self.secrets)
            record.msg, record.args = message, None
        return True


_REDACTOR = RedactingFilter()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_REDACTOR)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _load(args: argparse.Namespace) -> Config:
    from poller.config import config_path, load_config

    path = config_path(args.config)
    config = load_config(path)
    _REDACTOR.secrets = list(config.secrets())
    if config.secrets() and path.stat().st_mode & 0o077:
        logger.warning(
            "config file %s can be read by other users; it holds secrets: chmod 600 %s", path, path
        )
    return config


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create or upgrade the database schema to the newest revision."""
    from poller import storage

    config = _load(args)
    engine = storage.make_engine(config.database_url)
    storage.upgrade_database(engine)
    print(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")
    return EXIT_OK


def cmd_poll(args: argparse.Namespace) -> int:
    """Poll every configured portal and user once (for cron and systemd timers).

    Exit code 0 when every user was stored, 1 when any user or portal failed (each failure
    is a row in poll_errors), 2 for a configuration error.
    """
    from poller import storage
    from poller.daemon import make_clients, poll_once
    from poller.spool import Spool

    config = _load(args)
    engine = storage.make_engine(config.database_url)
    if args.migrate:
        storage.upgrade_database(engine)
    else:
        storage.check_schema(engine)
    spool = Spool(config.spool_path, config.spool_max_rows)
    report = poll_once(make_clients(config, engine), engine, mode=config.storage_mode, spool=spool)
    logger.info("cycle: %s", report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon: upgrade the database, then poll on the configured schedule.

    SIGTERM or SIGINT lets the current cycle finish and commit, then exits 0.
    """
    from poller import storage
    from poller.daemon import Daemon, make_clients
    from poller.metrics import Metrics

    config = _load(args)
    engine = storage.make_engine(config.database_url)
    if args.migrate:
        storage.upgrade_database(engine)
    metrics = Metrics(p.name for p in config.portals) if config.metrics.port else None
    Daemon(config, engine, make_clients(config, engine, metrics=metrics), metrics).run()
    return EXIT_OK


def cmd_get_status(args: argparse.Namespace) -> int:
    """Call timeman.status once and print the JSON answer (OpenIntegrations' GetTimekeepingStatus)."""
    from poller.client import get_timekeeping_status

    answer = get_timekeeping_status(args.url, args.userid, args.token)
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Print a report from the views: workdays (default), latest or daily.

    workdays: one row per workday (worked and break time; estimated while the day is open).
    latest:   each user's newest status.
    daily:    worked and break time per user and local date.
    """
    from poller import storage
    from poller.report import REPORTS, render

    config = _load(args)
    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise ConfigError(f"--from {args.date_from} is after --to {args.date_to}")
    engine = storage.make_engine(config.database_url)
    storage.check_schema(engine)
    rows = storage.get_view_rows(
        engine,
        REPORTS[args.report],
        date_from=args.date_from,
        date_to=args.date_to,
        portals=args.portal or (),
        users=args.user or (),
    )
    print(render(args.report, rows, args.format))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Show the last poll cycles and the errors of the last day, from the database.

    Exit code 0 when the newest cycle stored every user, 1 otherwise.
    """
    from datetime import UTC, datetime, timedelta

    from poller import storage
    from poller.models import UTCDateTime

    config = _load(args)
    engine = storage.make_engine(config.database_url)
    storage.check_schema(engine)
    runs = storage.get_recent_runs(engine, args.runs)
    now = datetime.now(UTC)
    print(f"last {len(runs)} cycles (UTC):")
    for run in runs:
        took = f"{(run.finished_at - run.started_at).total_seconds():.2f} s" if run.finished_at else "cut off"
        print(f"  #{run.id:<6} {run.started_at:%Y-%m-%d %H:%M:%S}  {run.users_ok:>6} ok  "
              f"{run.users_failed:>6} failed  {took}")  # fmt: skip
    if not runs:
        print("  none yet: run `timeman-poller poll` or `timeman-poller run`")
    errors = storage.get_error_summary(engine, now - timedelta(hours=24))
    print("errors in the last 24 hours:" if errors else "no errors in the last 24 hours")
    for row in errors:
        last = UTCDateTime().process_result_value(row["last_at"], engine.dialect) if row["last_at"] else None
        print(f"  {row['portal']}: {row['code']} x{row['count']} ({row['users']} users), "
              f"last {last:%Y-%m-%d %H:%M:%S}: {row['last_message']}")  # fmt: skip
    spool = config.spool_path
    if spool is not None and spool.exists():
        print(f"spool {spool} holds snapshots waiting for the database")
    newest = runs[0] if runs else None
    return EXIT_OK if newest and newest.finished_at and not newest.users_failed else EXIT_FAILED


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete snapshots older than --older-than (e.g. 400d), keeping each user's newest row."""
    from datetime import UTC, datetime

    from poller import storage

    config = _load(args)
    engine = storage.make_engine(config.database_url)
    storage.check_schema(engine)
    cutoff = datetime.now(UTC) - args.older_than
    deleted = storage.prune_snapshots(engine, cutoff)
    print(f"deleted {deleted} snapshots last seen before {cutoff:%Y-%m-%d %H:%M} UTC")
    return EXIT_OK


def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve an emulated Bitrix24 portal until interrupted (for trying the poller without one)."""
    from poller.emulator import Emulator, EmulatorSettings

    settings = EmulatorSettings(
        users=args.users,
        speed=args.speed,
        rate=args.rate,
        burst=args.burst,
        token_lifetime=args.token_lifetime,
        fault_500=args.fault_500,
        fault_html=args.fault_html,
        fault_drop=args.fault_drop,
        fault_slow=args.fault_slow,
        fault_truncated=args.fault_truncated,
        fault_huge=args.fault_huge,
    )
    if args.secret:
        settings.webhook_secret = args.secret
    if args.token:
        settings.access_token = args.token
    emulator = Emulator(settings)
    base = f"http://{args.host}:{args.port}"
    print(f"Emulated Bitrix24 portal with {args.users} users (clock x{args.speed:g})")
    print(f'  webhook_url   = "{base}/rest/{settings.webhook_user}/{settings.webhook_secret}/"')
    print(f'  domain        = "{base}"  access_token = "{settings.access_token}"')
    print(f'  refresh_token = "{settings.refresh_token}"  client_id = "{settings.client_id}"')
    print(f'  client_secret = "{settings.client_secret}"  oauth_url = "{base}/oauth/token/"')
    print("Press Ctrl+C to stop.", flush=True)
    try:
        emulator.serve_forever(args.host, args.port)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise ConfigError(f"--port {args.port}: cannot listen on {args.host}: {exc.strerror}") from None
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Poll an emulated portal into a SQLite file for a few seconds, then show the result."""
    from poller.demo import run_demo

    if args.duration <= 0 or args.interval <= 0:
        raise ConfigError("--duration and --interval: expected seconds > 0")
    return run_demo(
        Path(args.database),
        duration=args.duration,
        interval=args.interval,
        users=args.users,
        speed=args.speed,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="timeman-poller",
        description="Poll Bitrix24 timeman.status on a schedule and keep the history in SQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper
    )
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"], help="json: one object per line"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], **kwargs: Any
    ) -> argparse.ArgumentParser:
        doc = (handler.__doc__ or "").strip()
        sub = commands.add_parser(
            name,
            help=doc.splitlines()[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        sub.set_defaults(handler=handler)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "-c",
            "--config",
            help="config file (default: $TIMEMAN_POLLER_CONFIG, else ./config.toml)",
        )
        return sub

    db = commands.add_parser("db", help="database schema commands")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade", help=cmd_db_upgrade.__doc__, description=cmd_db_upgrade.__doc__
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)
    with_config(upgrade)

    for name, handler in (("poll", cmd_poll), ("run", cmd_run)):
        sub = with_config(add(name, handler))
        sub.add_argument(
            "--no-migrate",
            dest="migrate",
            action="store_false",
            help="do not upgrade the database schema first"
            + (" (default for poll)" if name == "poll" else ""),
        )
        if name == "poll":
            sub.add_argument(
                "--migrate", dest="migrate", action="store_true", help="upgrade the schema first"
            )
            sub.set_defaults(migrate=False)

    report = with_config(add("report", cmd_report))
    report.add_argument("report", nargs="?", default="workdays", choices=["workdays", "latest", "daily"])
    report.add_argument("--from", dest="date_from", type=_date, help="first local work date, YYYY-MM-DD")
    report.add_argument("--to", dest="date_to", type=_date, help="last local work date, YYYY-MM-DD")
    report.add_argument("--portal", action="append", help="only this portal (repeatable)")
    report.add_argument("--user", action="append", type=_positive_int, help="only this user id (repeatable)")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")

    status_command = with_config(add("status", cmd_status))
    status_command.add_argument("--runs", type=_positive_int, default=10, help="cycles to show (default 10)")

    prune = with_config(add("prune", cmd_prune))
    prune.add_argument("--older-than", required=True, type=_age, help="age such as 400d, 12w or 36h")

    status = add("get-status", cmd_get_status)
    status.add_argument(
        "--url", required=True, help="incoming-webhook URL, or the portal address with --token"
    )
    status.add_argument("--userid", help="user id (default: the webhook's or token's own user)")
    status.add_argument("--token", help="OAuth access token; then --url is the portal's address")

    emulator = add("emulator", cmd_emulator)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8765)
    emulator.add_argument("--users", type=_positive_int, default=25, help="simulated users (default 25)")
    emulator.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    emulator.add_argument("--secret", help="webhook secret (default: random)")
    emulator.add_argument("--token", help="OAuth access token (default: random)")
    emulator.add_argument(
        "--rate", type=float, default=2.0, help="leaky-bucket drain per second; 0 = no limit"
    )
    emulator.add_argument("--burst", type=_positive_int, default=50, help="leaky-bucket size (default 50)")
    emulator.add_argument(
        "--token-lifetime", type=float, default=3600.0, help="access token lifetime, seconds"
    )
    for kind in ("500", "html", "drop", "slow", "truncated", "huge"):
        emulator.add_argument(
            f"--fault-{kind}", type=float, default=0.0, help=f"share of requests answered with fault '{kind}'"
        )

    demo = add("demo", cmd_demo)
    demo.add_argument("--database", default="timeman-demo.sqlite3", help="SQLite file to write")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to poll (default 20)")
    demo.add_argument("--interval", type=float, default=5.0, help="seconds between cycles (default 5)")
    demo.add_argument("--users", type=_positive_int, default=25, help="simulated users (default 25)")
    demo.add_argument("--speed", type=float, default=600.0, help="simulated seconds per real second")
    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _age(text: str) -> timedelta:
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 400d, 12w or 36h")
    return timedelta(seconds=int(number) * units[unit])


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"timeman-poller: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BitrixError as exc:
        print(f"timeman-poller: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except PollerError as exc:
        print(f"timeman-poller: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
