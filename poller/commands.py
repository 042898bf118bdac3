"""The commands of `timeman-poller` as plain functions: the CLI parses, calls one, prints.

Each function's docstring is its command's help text. A function returns a result object
and never prints; what a user can fix is raised as a PollerError (ConfigError for the config
or an argument, StorageError for the database, BitrixError for a portal), which the CLI
shows as one line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from poller import storage
from poller.bitrix import get_timekeeping_status
from poller.check import CheckReport, check_config
from poller.config import Config, config_path
from poller.config import load_config as read_config_file
from poller.config.example import WrittenExample, write_example
from poller.config.paths import database_url
from poller.daemon.scheduler import Daemon
from poller.demo import run_demo
from poller.emulator import Emulator, EmulatorSettings
from poller.errors import ConfigError
from poller.history import retention
from poller.history.reports import closed_timesheet as closed_timesheet  # the CLI calls them here
from poller.history.reports import compliance as compliance
from poller.history.reports import report as report
from poller.history.reports import timesheet as timesheet
from poller.poll.backfill import BackfillReport, Progress
from poller.poll.backfill import backfill as backfill_portals
from poller.poll.cycle import PollReport, poll_once
from poller.poll.housekeeping import PortalChores
from poller.poll.recent import ErrorInfo as ErrorInfo  # callers import them from here
from poller.poll.recent import RunInfo as RunInfo
from poller.poll.recent import StatusInfo, read_status
from poller.runtime import Schema, open_runtime
from poller.storage import maintenance

logger = logging.getLogger(__name__)


def load_config(path: str | Path | None = None, *, portal_secrets: bool = True) -> Config:
    """Read the config file: `path`, else $TIMEMAN_POLLER_CONFIG, else ./config.toml.

    With `portal_secrets` False, portal settings taken from unset environment variables
    stay as written: for commands that only read the database.
    """
    found = config_path(str(path) if path is not None else None)
    config = read_config_file(found, portal_secrets=portal_secrets)
    if found.stat().st_mode & 0o077 and _holds_secrets(found, config):
        logger.warning(
            "config file %s can be read by other users; it holds secrets: chmod 600 %s", found, found
        )
    return config


def database_only(url: str) -> Config:
    """A config of just a database (`--database URL`), for commands that only read it.

    Checked as the config's [database] url is: a relative SQLite path is the working
    directory's, its directory must exist, `postgres://` gets psycopg 3.
    """
    return Config(database_url=database_url(url, "--database", None), spool_path=None)


def _holds_secrets(path: Path, config: Config) -> bool:
    """Whether the file itself holds a secret (not only `${NAME}` references to one)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return bool(config.secrets())
    return any(secret in text and "${" not in secret for secret in config.secrets())


# -- db upgrade ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeResult:
    """What `db upgrade` did: `before` is None when the database had no schema yet."""

    database: str
    before: str | None
    after: str

    @property
    def outcome(self) -> Literal["created", "upgraded", "up to date"]:
        if self.before is None:
            return "created"
        return "up to date" if self.before == self.after else "upgraded"


def init(path: Path = Path("config.toml"), force: bool = False) -> WrittenExample:
    """Write the example config, every key documented, to PATH (default ./config.toml).

    After a plain `pip install` there is no checkout to copy config.example.toml from: this
    writes the same file, readable by its owner only. An existing file is kept unless --force.
    """
    return write_example(path, force=force)


def db_upgrade(config: Config) -> UpgradeResult:
    """Create or upgrade the database schema to the newest revision."""
    engine = storage.make_engine(config.database_url)
    with maintenance.database_errors(engine):
        maintenance.check_sqlite_directory(engine)
        before = maintenance.get_schema_revision(engine)
        storage.upgrade_database(engine)
        after = maintenance.get_schema_revision(engine) or maintenance.get_head_revision()
    return UpgradeResult(maintenance.describe_database(engine), before, after)


# -- poll and run ----------------------------------------------------------------------------


def poll(config: Config, migrate: bool = False) -> PollReport:
    """Poll every configured portal and user once (for cron and systemd timers).

    Like `run`, it refreshes each portal's user directory when due ([directory]
    refresh_hours; `users = "all"` takes its ids from it) and runs the daily reconcile when
    due ([reconcile]); when each last ran is kept in the database. Exit code 0 when every
    user was stored, 1 when any user or portal failed (each failure is a row in
    poll_errors), 2 for a configuration error. The database must be at the newest schema
    revision (`db upgrade` first, or `poll --migrate`). Ctrl-C (or SIGTERM) stops in every
    phase: what came is stored, the cycle is recorded as interrupted, exit code 130; a
    second Ctrl-C stops at once.
    """
    schema: Schema = "upgrade" if migrate else "at head"
    # short_lock_waits: a SQLite file another writer holds sends the rows to the spool after 5 s.
    with open_runtime(config, schema=schema, short_lock_waits=True) as rt:
        chores = PortalChores(rt.config, rt.engine, rt.stop)
        return poll_once(
            rt.clients, rt.engine, mode=rt.config.storage_mode, spool=rt.spool, stop=rt.stop, chores=chores
        )


def run(config: Config, migrate: bool = True) -> None:
    """Run the daemon: upgrade the database, then poll each portal on its schedule.

    A database that is down at start is waited for: cycles go to the spool and the schema
    upgrade is tried again every cycle. SIGTERM or a first Ctrl-C lets the cycles store what
    they fetched and exits 0 (130 after Ctrl-C) within [http] read_timeout_seconds + 10 s;
    a second Ctrl-C stops at once.
    """
    # The spool is locked (one daemon); the daemon waits for the database and handles signals.
    with open_runtime(config, schema="as found", metrics=True, handle_signals=False) as runtime:
        Daemon(runtime, migrate=migrate).run()


# -- status ------------------------------------------------------------------------------------


def status(config: Config, runs: int = 10, *, now: datetime | None = None) -> StatusInfo:
    """Show the last poll cycles and the errors of the last day, from the database.

    Exit code 0 when the newest cycle stored every user, 1 otherwise.
    """
    since = (now or datetime.now(UTC)) - timedelta(hours=24)
    with maintenance.open_database(config.database_url) as engine:
        return read_status(engine, config, runs, since)


# -- prune -------------------------------------------------------------------------------


def prune(
    config: Config, older_than: timedelta, *, dry_run: bool = False, now: datetime | None = None
) -> retention.PruneResult:
    """Delete history older than --older-than (e.g. 800d): snapshots, workday records and
    revisions, poll runs and poll errors; never inside [retention] keep_days (default 730).

    Each user's newest snapshot and the newest poll run are kept whatever their age, and so
    are the workdays. An age inside the floor is refused (exit 2); --dry-run counts what would
    go and deletes nothing (inside the floor: what pruning at the floor would delete, and what
    the floor protects, exit 2).
    """
    now = now or datetime.now(UTC)
    cutoff = retention.cutoff_before(now, older_than)  # a bad age first, before the database
    with maintenance.open_database(config.database_url) as engine:
        return retention.prune(engine, now, cutoff, config.retention.keep_days, dry_run=dry_run)


# -- check -----------------------------------------------------------------------------------


def check(config: Config) -> CheckReport:
    """Check a config before deploying it: the database, and each portal's reach, credentials,
    scopes (timeman, user, department), right to read other users, and REST 3.0 records.

    About five requests per portal. Exit code 0 when nothing stops polling (warnings name
    features that will not work, such as backfill without REST 3.0), 1 otherwise; with
    --strict, warnings count too.
    """
    return check_config(config)


# -- commands that need no config ------------------------------------------------------------


def get_status(url: str, userid: int | str | None = None, token: str | None = None) -> dict[str, Any]:
    """Call timeman.status once and print the JSON answer (OpenIntegrations' GetTimekeepingStatus).

    --url is an incoming-webhook URL, or with --token the portal's address.
    """
    return get_timekeeping_status(url, userid, token)


def start_emulator(settings: EmulatorSettings, host: str = "127.0.0.1", port: int = 8765) -> Emulator:
    """Serve an emulated Bitrix24 portal until interrupted (for trying the poller without one)."""
    try:
        return Emulator(settings).start(host, port)
    except OSError as exc:
        raise ConfigError(f"--port {port}: cannot listen on {host}: {exc.strerror or exc}") from None


# The demo validates its own options; its docstring is the command's help.
demo = run_demo


# -- backfill --------------------------------------------------------------------------------


def backfill(
    config: Config,
    since: date,
    until: date | None = None,
    *,
    portals: Sequence[str] = (),
    users: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Copy the portals' own work time records (timeman.record.list) into workday_records.

    Reads every user of each portal (or --users) from --since to --until (local dates;
    default today), 50 users per REST 3.0 batch request, within the portal's rate limit:
    the days polling missed get the portal's own figures. Finished users are remembered, so
    after Ctrl-C or a crash the same command resumes; a re-run stores nothing twice. Needs
    REST 3.0 and the right to read work time records. Exit code 0 when every user was read,
    1 when a user or portal failed, 130 when interrupted (Ctrl-C stops after the request in
    flight; a second Ctrl-C at once).
    """
    until = until or datetime.now(UTC).date()
    with open_runtime(config, spool=False) as rt:
        return backfill_portals(
            rt.config,
            rt.engine,
            rt.clients,
            since=since,
            until=until,
            portals=portals,
            users=users,
            progress=progress,
            stop=rt.stop,
        )
