"""Keep a portal's refreshed OAuth pair durable before the poller uses it.

Bitrix24 spends the old refresh token the moment it hands out a new pair: a pair that is
used but not stored makes a person authorize the application again after the next restart.
So the pair goes to oauth_tokens, or, while the database cannot take it, to a JSON file
beside the spool (mode 0600, replaced atomically; one object per portal with updated_at)
that `replay` moves into the database once it is back. At start the newer pair wins.

No token reaches a log line or an error: database errors are described without their
parameters and with the pair's tokens redacted, and exceptions are not chained.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from poller import storage
from poller.errors import PollerError
from poller.redaction import redact
from poller.spool.files import replace_file
from poller.storage.tokens import StoredTokens, get_stored_tokens

logger = logging.getLogger(__name__)

TOKENS_SUFFIX = ".tokens.json"


class TokenStoreError(PollerError):
    """A refreshed OAuth pair could be stored neither in the database nor in the file."""


def tokens_path(spool_path: Path | None) -> Path | None:
    """Where refreshed pairs wait for the database: `<spool>.tokens.json`, None without a spool file."""
    return None if spool_path is None else spool_path.with_name(spool_path.name + TOKENS_SUFFIX)


class TokenStore:
    """The newest OAuth pair of each portal: in the database, or in `path` while it is down.

    One instance serves every portal of the daemon (their refreshes may come at once).
    """

    def __init__(self, engine: Engine, path: Path | None) -> None:
        self.engine = engine
        self.path = path
        self._lock = threading.Lock()
        self._kept: dict[str, StoredTokens] = self._read()

    def load(self, portal: str) -> tuple[str, str | None] | None:
        """The newest stored pair of `portal` (database or file, by updated_at), or None."""
        with self._lock:
            kept = self._kept.get(portal)
            try:
                stored = get_stored_tokens(self.engine, portal)
            except storage.DatabaseFailure as exc:
                logger.warning(
                    "portal %s: stored OAuth tokens unreadable (%s); %s",
                    portal,
                    self._describe(exc, kept),
                    f"using the pair kept in {self.path}" if kept else "using the config's",
                )
                stored = None
        newest = max((p for p in (stored, kept) if p is not None), key=lambda p: p.updated_at, default=None)
        if newest is None:
            return None
        if newest is kept and stored is not None:
            logger.info(
                "portal %s: the OAuth pair kept in %s is newer than the database's", portal, self.path
            )
        return newest.access_token, newest.refresh_token

    def save(self, portal: str, access_token: str, refresh_token: str | None, now: datetime) -> None:
        """Store a new pair before it is used: in the database, else in the file.

        Never raises for a database outage; raises TokenStoreError (one line, no token)
        only when neither the database nor the file can hold the pair.
        """
        pair = StoredTokens(access_token, refresh_token, now)
        with self._lock:
            try:
                storage.save_tokens(self.engine, portal, access_token, refresh_token, now)
            except storage.DatabaseFailure as exc:
                reason = self._describe(exc, pair)
                self._keep(portal, pair, reason)
                return
            if portal in self._kept:  # an older pair waiting in the file is stale now
                del self._kept[portal]
                self._write_quietly()

    def replay(self) -> int:
        """Move pairs kept in the file into the database; return how many were newer there.

        A pair older than the database's is dropped. Stops quietly while the database is
        still down. Cheap when nothing waits: the daemon may call it every cycle.
        """
        with self._lock:
            if not self._kept:
                return 0
            moved = settled = 0
            for portal, pair in list(self._kept.items()):
                try:
                    stored = get_stored_tokens(self.engine, portal)
                    if stored is None or stored.updated_at < pair.updated_at:
                        storage.save_tokens(
                            self.engine, portal, pair.access_token, pair.refresh_token, pair.updated_at
                        )
                        moved += 1
                except storage.DatabaseFailure:
                    break
                del self._kept[portal]
                settled += 1
            if settled:
                self._write_quietly()
            if moved:
                logger.info("%d refreshed OAuth pairs kept in %s written to the database", moved, self.path)
            return moved

    # -- the file ---------------------------------------------------------------------------

    def _keep(self, portal: str, pair: StoredTokens, reason: str) -> None:
        if self.path is None:
            raise TokenStoreError(
                f"portal {portal}: the refreshed OAuth tokens could not be stored: database: {reason}; "
                "no spool_path is configured to keep them beside"
            )
        self._kept[portal] = pair
        try:
            self._write()
        except OSError as exc:
            raise TokenStoreError(
                f"portal {portal}: the refreshed OAuth tokens could not be stored: database: {reason}; "
                f"{self.path}: {exc.strerror or type(exc).__name__}"
            ) from None
        logger.warning(
            "portal %s: the database cannot store the refreshed OAuth tokens (%s); "
            "kept in %s until it is back",
            portal,
            reason,
            self.path,
        )

    def _read(self) -> dict[str, StoredTokens]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
            return {portal: _pair(value) for portal, value in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # The exception text could quote a token: name its type only.
            logger.error("OAuth pairs kept in %s are unreadable (%s); ignored", self.path, type(exc).__name__)
            return {}

    def _write(self) -> None:
        """Replace the file with the kept pairs (remove it when none is kept)."""
        assert self.path is not None
        if not self._kept:
            self.path.unlink(missing_ok=True)
            return
        document = {
            portal: {
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
                "updated_at": pair.updated_at.isoformat(),
            }
            for portal, pair in self._kept.items()
        }
        replace_file(self.path, [json.dumps(document, indent=1).encode("utf-8")])

    def _write_quietly(self) -> None:
        """Rewrite the file after pairs left it; a failure only leaves stale pairs behind."""
        try:
            self._write()
        except OSError as exc:
            logger.warning("OAuth pairs kept in %s could not be updated (%s)", self.path, exc.strerror)

    def _describe(self, exc: storage.DatabaseFailure, *pairs: StoredTokens | None) -> str:
        secrets = [s for p in pairs if p is not None for s in (p.access_token, p.refresh_token)]
        for kept in self._kept.values():
            secrets += [kept.access_token, kept.refresh_token]
        return redact(storage.describe_db_error(exc), secrets)


def _pair(value: Any) -> StoredTokens:
    access, refresh, updated_at = value["access_token"], value["refresh_token"], value["updated_at"]
    if not isinstance(access, str) or not (refresh is None or isinstance(refresh, str)):
        raise TypeError("a token is not a string")
    moment = datetime.fromisoformat(updated_at)
    if moment.tzinfo is None:
        raise ValueError("updated_at without its offset")
    return StoredTokens(access, refresh, moment)
