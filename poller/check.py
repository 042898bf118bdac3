"""`check`: whether a config is ready to deploy, found by asking the database and each portal.

The database: reachable, and at which schema revision. Then each portal's checks in order
(poller.check_portal: reach, credentials, scopes, other users, REST 3.0 records, and the
norms refresh's methods: poller.check_norms), about nine requests per portal.

A "problem" stops polling; a "warning" costs a feature (names, departments, backfill and
reconcile, norms, schedules, the calendar and absences) but polling works.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.check_portal import Finding as Finding  # callers import it from here
from poller.check_portal import PortalCheck
from poller.clients import make_clients_from_config
from poller.config import Config
from poller.errors import StorageError
from poller.runtime import open_runtime
from poller.storage import maintenance

logger = logging.getLogger(__name__)

DATABASE = "database"
DB_UPGRADE = "run `timeman-poller db upgrade` (`timeman-poller run` also does it when it starts)"


@dataclass(frozen=True)
class CheckReport:
    """Every finding, the database's first, then each portal's in config order."""

    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Nothing stops polling (warnings allowed)."""
        return not any(f.outcome == "problem" for f in self.findings)

    @property
    def clean(self) -> bool:
        """No problem and no warning."""
        return self.ok and not any(f.outcome == "warning" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "clean": self.clean, "findings": [asdict(f) for f in self.findings]}


# -- the database ----------------------------------------------------------------------------


def check_database(url: str) -> tuple[Finding, bool]:
    """Check the database at `url`; True when it is at the newest revision (usable for tokens).

    A missing or old schema is a warning, as `run` upgrades it when it starts; a database
    that cannot be reached, or whose schema is newer than this poller, is a problem.
    """
    engine = storage.make_engine(url)
    where = maintenance.describe_database(engine)
    head = maintenance.get_head_revision()
    try:
        with maintenance.database_errors(engine):
            maintenance.check_sqlite_directory(engine)
            if _sqlite_file_missing(engine):
                return Finding(
                    DATABASE, "schema", "warning", f"{where} does not exist yet", DB_UPGRADE
                ), False
            revision = maintenance.get_schema_revision(engine)
    except StorageError as exc:
        advice = "check [database] url, and that the database runs and lets this user in"
        return Finding(DATABASE, "connect", "problem", str(exc), advice), False
    if revision == head:
        return Finding(DATABASE, "schema", "ok", f"{where}: schema at revision {head}, the newest"), True
    if revision is None:
        return Finding(DATABASE, "schema", "warning", f"{where}: no schema yet", DB_UPGRADE), False
    if not storage.is_known_revision(revision):
        return Finding(
            DATABASE,
            "schema",
            "problem",
            f"{where}: schema at revision {revision}, which this poller does not know (newer?)",
            "use the timeman-poller version that wrote this schema, or a newer one",
        ), False
    detail = f"{where}: schema at revision {revision}, this poller needs {head}"
    return Finding(DATABASE, "schema", "warning", detail, DB_UPGRADE), False


def _sqlite_file_missing(engine: Engine) -> bool:
    """A SQLite file not created yet (connecting would create an empty one: not for a check)."""
    path = storage.sqlite_file(engine.url)
    return path is not None and not path.exists()


# -- everything ------------------------------------------------------------------------------


def check_config(config: Config) -> CheckReport:
    """Check the database, then every portal (eight at a time), with one retry per request.

    Portals use the OAuth tokens the daemon stored, and store a pair they refresh, when the
    database is at the newest revision; otherwise they use the config's tokens and never
    refresh them (a refresh spends the refresh token the daemon will need).
    """
    database, usable = check_database(config.database_url)
    checked = replace(config, http=replace(config.http, max_retries=min(config.http.max_retries, 1)))
    if usable:
        with open_runtime(checked, spool=False, handle_signals=False) as runtime:
            findings = check_portals(runtime.clients, config.reconcile.days)
    else:
        findings = check_portals(make_clients_from_config(checked), config.reconcile.days)
    return CheckReport((database, *findings))


def check_portals(clients: Sequence[PortalClient], reconcile_days: int = 0) -> list[Finding]:
    """Run every portal's checks, several portals at a time; findings in the clients' order."""
    if not clients:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(clients))) as pool:
        per_portal = list(pool.map(lambda c: PortalCheck(c, reconcile_days=reconcile_days).run(), clients))
    return [finding for findings in per_portal for finding in findings]
