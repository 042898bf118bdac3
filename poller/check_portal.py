"""The checks of one portal for `check`, in order, stopping when a step makes the next ones pointless.

Reachable; credentials accepted; the `timeman` scope (timeman.status of the caller); the
`user` and `department` scopes (one page of `user.get` and `department.get`); the right to
read other users (timeman.status of a user who is not the caller); REST 3.0 and the right
to read work time records (one `timeman.record.list` item); then what the norms refresh reads
(poller.check_norms: timeman.settings, the configured schedules, the `calendar` scope and
absences). About nine requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poller.bitrix import PortalClient
from poller.check_norms import STEPS as NORM_STEPS
from poller.check_norms import check_norm_methods
from poller.config import PortalConfig
from poller.errors import V3_PREFIX, BitrixError

Outcome = Literal["ok", "warning", "problem", "skipped"]


@dataclass(frozen=True)
class Finding:
    """The result of one check: what was checked where, what was found, what to do about it."""

    subject: str  # "database", or a portal's name
    check: str
    outcome: Outcome
    detail: str
    advice: str = ""


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
        *NORM_STEPS,
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
            holder = "webhook" if self.portal.uses_webhook else "application"
            for found in check_norm_methods(self.client, other if other is not None else self.caller, holder):
                self._add(*found)  # type: ignore[arg-type]
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
            self._add("credentials", "problem", exc.message, _oauth_advice(code))
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

    def _scope_advice(self, scope: str) -> str:
        holder = "webhook" if self.portal.uses_webhook else "application"
        return f"add the {scope} scope to the {holder}"


def _oauth_advice(code: str) -> str:
    if code == "PAYMENT_REQUIRED":
        return "renew the application's subscription"
    if code == "INVALID_CLIENT":
        return "check client_id and client_secret"
    if code == "EXPIRED_TOKEN":
        return "set refresh_token, client_id and client_secret, and run `timeman-poller db upgrade` first"
    return "authorize the application again and put the new tokens in the config"


def _reach_advice(exc: BitrixError) -> str:
    text = exc.message.lower()
    if "name not resolved" in text:
        return "check the portal's address in the config"
    if "tls" in text:
        return "check the address's scheme and port (https://), or [http] ca_bundle"
    return "check the address, and that this machine reaches it (firewall, proxy)"


def _is_scope_error(exc: BitrixError) -> bool:
    return exc.code.upper() in {"INSUFFICIENT_SCOPE", V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION"}
