"""`check`: whether a config is ready to deploy, found by asking the database and each portal.

The database: reachable, and at which schema revision. Each portal, in order, stopping
when a step makes the next ones pointless: reachable; credentials accepted; the `timeman`
scope (timeman.status of the caller); the `user` and `department` scopes (one page of
`user.get` and `department.get`); the right to read other users (timeman.status of a user
who is not the caller); REST 3.0 and the right to read work time records (one
`timeman.record.list` item). About five requests per portal.

A "problem" stops polling; a "warning" costs a feature (names, departments, backfill and
reconcile) but polling works.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import requests
from sqlalchemy import Engine

from poller import storage
from poller.bitrix import PortalClient
from poller.config import Config, PortalConfig
from poller.errors import V3_PREFIX, BitrixError, StorageError
from poller.poll.cycle import make_clients
from poller.storage import maintenance

logger = logging.getLogger(__name__)

Outcome = Literal["ok", "warning", "problem", "skipped"]
DATABASE = "database"
DB_UPGRADE = "run `timeman-poller db upgrade` (`timeman-poller run` also does it when it starts)"


@dataclass(frozen=True)
class Finding:
    """The result of one check: what was checked where, what was found, what to do about it."""

    subject: str  # "database", or a portal's name
    check: str
    outcome: Outcome
    detail: str
    advice: str = ""


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
    if not _known_revision(revision):
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
    url = engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return False
    return not database.startswith("file:") and not Path(database).exists()


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory(str(storage.migrations_path())).get_revision(revision) is not None
    except Exception:  # alembic raises its own CommandError, or a KeyError, for an unknown id
        return False


# -- a portal --------------------------------------------------------------------------------


class _Stop(Exception):
    """A finding after which the portal's remaining checks are pointless."""


class PortalCheck:
    """The checks of one portal through its client, in order; `findings` collects them."""

    STEPS = (
        "reachable",
        "credentials",
        "scope timeman",
        "scope user",
        "scope department",
        "other users",
        "REST 3.0 records",
    )

    def __init__(self, client: PortalClient, *, reconcile_days: int = 0) -> None:
        self.client = client
        self.portal: PortalConfig = client.portal
        self.reconcile_days = reconcile_days
        self.findings: list[Finding] = []
        self.user_ids: list[int] = []

    def run(self) -> list[Finding]:
        try:
            self._caller_status()
            self._users()
            self._departments()
            other = self._other_users()
            self._records(other if other is not None else self.caller)
        except _Stop:
            done = {f.check for f in self.findings}
            for step in self.STEPS:
                if step not in done:
                    self._add(step, "skipped", "not tried after the problem above")
        return self.findings

    def _add(self, check: str, outcome: Outcome, detail: str, advice: str = "") -> None:
        self.findings.append(Finding(self.portal.name, check, outcome, detail, advice))

    @property
    def caller(self) -> int | None:
        """The webhook's user id (OAuth: unknown)."""
        path = self.portal.webhook_path
        if path is None:
            return None
        return int(path.strip("/").split("/")[1])

    def _caller_status(self) -> None:
        """timeman.status of the caller: reachable, credentials, timeman scope in one request."""
        token_before = self.client.access_token
        try:
            self.client.call("timeman.status", {})
        except BitrixError as exc:
            self._caller_failed(exc)
            raise _Stop from None
        host = self.portal.host
        self._add("reachable", "ok", f"{host} answers")
        if self.portal.uses_webhook:
            self._add("credentials", "ok", f"webhook of user {self.caller} accepted")
        else:
            refreshed = " (refreshed and stored)" if self.client.access_token != token_before else ""
            self._add("credentials", "ok", f"OAuth access token accepted{refreshed}")
        self._add("scope timeman", "ok", "timeman.status answers")

    def _caller_failed(self, exc: BitrixError) -> None:
        code = exc.code.upper()
        if exc.http_status is None:
            self._add("reachable", "problem", exc.message, _reach_advice(exc))
            return
        if code == "REDIRECT":
            self._add("reachable", "problem", exc.message, "put the portal's new address in the config")
            return
        self._add("reachable", "ok", f"{self.portal.host} answers")
        if code in {"NO_AUTH_FOUND", "INVALID_TOKEN", "AUTHORIZATION_ERROR", "INVALID_CREDENTIALS"}:
            self._add("credentials", "problem", exc.message, self._credentials_advice())
        elif code in {"EXPIRED_TOKEN", "INVALID_GRANT", "INVALID_CLIENT", "PAYMENT_REQUIRED"}:
            self._add("credentials", "problem", exc.message, self._oauth_advice(code))
        elif code == "INSUFFICIENT_SCOPE" or code == V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION":
            self._add("credentials", "ok", "accepted")
            self._add("scope timeman", "problem", exc.message, self._scope_advice("timeman (Work time)"))
        elif code == "ERROR_METHOD_NOT_FOUND":
            self._add("credentials", "ok", "accepted")
            advice = "turn on the Work time (timeman) tool on the portal; its plan must include it"
            self._add("scope timeman", "problem", f"{exc.message} (no timeman.status)", advice)
        else:
            advice = "try again later" if exc.retryable else "see the portal's message"
            self._add("credentials", "problem", exc.message, advice)

    def _users(self) -> None:
        try:
            body = self.client.call("user.get", {"SORT": "ID", "ORDER": "ASC", "start": 0})
        except BitrixError as exc:
            if _is_scope_error(exc):
                needed = self.portal.users == "all"
                self._add(
                    "scope user",
                    "problem" if needed else "warning",
                    exc.message,
                    self._scope_advice("user (Users)")
                    + ('; users = "all" lists users with it' if needed else "; without it no names are kept"),
                )
            else:
                self._add("scope user", "warning", exc.message, "see the portal's message")
            return
        rows = body.get("result")
        rows = rows if isinstance(rows, list) else []
        self.user_ids = [int(r["ID"]) for r in rows if isinstance(r, dict) and str(r.get("ID", "")).isdigit()]
        self._add("scope user", "ok", "user.get answers")

    def _departments(self) -> None:
        try:
            self.client.call("department.get", {"start": 0})
        except BitrixError as exc:
            if _is_scope_error(exc):
                advice = (
                    self._scope_advice("department (Departments)")
                    + "; without it reports show no departments"
                )
                self._add("scope department", "warning", exc.message, advice)
            else:
                self._add("scope department", "warning", exc.message, "see the portal's message")
            return
        self._add("scope department", "ok", "department.get answers")

    def _other_users(self) -> int | None:
        """Read the status of up to two users other than the caller; return one that answered.

        With OAuth the caller is unknown: two different users, both answered, prove the right.
        """
        configured = list(self.portal.users) if self.portal.users != "all" else []
        if configured and self.caller is not None and set(configured) == {self.caller}:
            self._add("other users", "ok", "not needed: only the webhook's own user is polled")
            return self.caller
        others = [u for u in dict.fromkeys(configured or self.user_ids) if u != self.caller]
        answered: list[int] = []
        for user_id in others[: 2 if self.caller is None else 1]:
            try:
                self.client.call("timeman.status", {"USER_ID": user_id})
            except BitrixError as exc:
                if exc.per_user:
                    continue  # an unknown user says nothing about the right
                if exc.code.upper() in {"NO_ACCESS_TO_USER", "ACCESS_DENIED"}:
                    advice = (
                        "make the webhook's or app's user a work time administrator "
                        "(rights to manage all employees' work time)"
                    )
                    self._add("other users", "problem", exc.message, advice)
                    return None
                self._add("other users", "warning", exc.message, "see the portal's message")
                return None
            answered.append(user_id)
        if not answered:
            self._add("other users", "skipped", "no user other than the caller found to try")
            return self.caller
        self._add("other users", "ok", f"status of user {answered[0]} read")
        return answered[0]

    def _records(self, user_id: int | None) -> None:
        if user_id is None:
            self._add("REST 3.0 records", "skipped", "no user to ask about")
            return
        query = {"filter": [["userId", user_id]], "select": ["id"], "pagination": {"page": 1, "limit": 1}}
        try:
            self.client.call_v3("timeman.record.list", query)
        except BitrixError as exc:
            code = exc.code.upper()
            if exc.http_status == 404 or code in {
                "ERROR_METHOD_NOT_FOUND",
                V3_PREFIX + "UNKNOWNMETHODEXCEPTION",
            }:
                detail = f"no REST 3.0 timeman.record.list ({exc.message})"
                advice = "backfill and reconcile need a Bitrix24 build with REST 3.0"
            elif exc.http_status == 403 or code == V3_PREFIX + "ACCESSDENIEDEXCEPTION":
                detail = exc.message
                advice = "give the webhook's or app's user the right to read all work time records"
            else:
                detail, advice = exc.message, "see the portal's message"
            if self.reconcile_days:
                advice += "; or set [reconcile] days = 0"
            self._add("REST 3.0 records", "warning", detail, advice)
            return
        self._add("REST 3.0 records", "ok", f"timeman.record.list answers for user {user_id}")

    def _credentials_advice(self) -> str:
        if self.portal.uses_webhook:
            return "the webhook URL's secret or user id is wrong, or the webhook was deleted: copy it again"
        return "the access token is not valid: authorize the application again and update the tokens"

    def _oauth_advice(self, code: str) -> str:
        if code == "PAYMENT_REQUIRED":
            return "renew the application's subscription"
        if code == "INVALID_CLIENT":
            return "check client_id and client_secret"
        if code == "EXPIRED_TOKEN":
            return "set refresh_token, client_id and client_secret, and run `timeman-poller db upgrade` first"
        return "authorize the application again and put the new tokens in the config"

    def _scope_advice(self, scope: str) -> str:
        holder = "webhook" if self.portal.uses_webhook else "application"
        return f"add the {scope} scope to the {holder}"


def _reach_advice(exc: BitrixError) -> str:
    text = exc.message.lower()
    if "name not resolved" in text:
        return "check the portal's address in the config"
    if "tls" in text:
        return "check the address's scheme and port (https://), or [http] ca_bundle"
    return "check the address, and that this machine reaches it (firewall, proxy)"


def _is_scope_error(exc: BitrixError) -> bool:
    return exc.code.upper() in {"INSUFFICIENT_SCOPE", V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION"}


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
        with maintenance.open_database(config.database_url) as engine:
            findings = check_portals(make_clients(checked, engine), config.reconcile.days)
    else:
        clients = [
            PortalClient(replace(portal, refresh_token=None), requests.Session(), checked.http)
            for portal in config.portals
        ]
        findings = check_portals(clients, config.reconcile.days)
    return CheckReport((database, *findings))


def check_portals(clients: Sequence[PortalClient], reconcile_days: int = 0) -> list[Finding]:
    """Run every portal's checks, several portals at a time; findings in the clients' order."""
    from concurrent.futures import ThreadPoolExecutor

    if not clients:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(clients))) as pool:
        per_portal = list(pool.map(lambda c: PortalCheck(c, reconcile_days=reconcile_days).run(), clients))
    return [finding for findings in per_portal for finding in findings]
