"""Keep what the database refused (it is down or locked) and write it when it is back.

Each entry is one portal's cycle: its snapshots and error rows. Entries are kept in memory
and appended to a JSON-lines file, so a restart does not lose them; they are written back
in order. A replayed snapshot that did reach the database is ignored there by the unique
constraint on (portal, user_id, polled_at).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from poller import storage
from poller.status import parse_status

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 200_000


@dataclass(frozen=True)
class SpoolEntry:
    run_id: int | None
    snapshots: tuple[storage.SnapshotRow, ...]
    errors: tuple[storage.ErrorRow, ...]

    @property
    def rows(self) -> int:
        return len(self.snapshots) + len(self.errors)


class Spool:
    """Cycles waiting for the database, oldest first; at most `max_rows` rows are kept."""

    def __init__(self, path: Path | None = None, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.path = path
        self.max_rows = max_rows
        self._entries: deque[SpoolEntry] = deque()
        self._lock = threading.RLock()
        self._outage_since: datetime | None = None
        if path is not None and path.exists():
            self._load(path)

    @property
    def snapshots(self) -> int:
        with self._lock:
            return sum(len(entry.snapshots) for entry in self._entries)

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._entries)

    def add(self, entry: SpoolEntry, reason: str) -> None:
        """Keep `entry`; log the outage once, when it starts."""
        with self._lock:
            if self._outage_since is None:
                self._outage_since = datetime.now(UTC)
                where = f" and {self.path}" if self.path else ""
                logger.error(
                    "database unavailable (%s): keeping snapshots in memory%s until it is back", reason, where
                )
            self._entries.append(entry)
            self._drop_beyond_limit()
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(_encode(entry)) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())

    def note_outage(self, reason: str) -> None:
        """Record that the database failed without anything to keep (logged once)."""
        with self._lock:
            if self._outage_since is None:
                self._outage_since = datetime.now(UTC)
                logger.error("database unavailable (%s)", reason)

    def note_available(self) -> None:
        with self._lock:
            if self._outage_since is not None and not self._entries:
                logger.info("database available again")
                self._outage_since = None

    def flush(self, engine: Engine, mode: storage.StorageMode) -> int:
        """Write the kept cycles in order; return how many snapshots went. Stops at a failure."""
        written = 0
        with self._lock:
            if not self._entries:
                return 0
            while self._entries:
                entry = self._entries[0]
                try:
                    storage.save_portal_cycle(engine, entry.run_id, entry.snapshots, entry.errors, mode)
                except SQLAlchemyError:
                    break
                self._entries.popleft()
                written += len(entry.snapshots)
            self._rewrite()
            if not self._entries:
                logger.info(
                    "database available again: %d kept snapshots written (outage since %s)",
                    written,
                    f"{self._outage_since:%Y-%m-%d %H:%M:%S} UTC" if self._outage_since else "start",
                )
                self._outage_since = None
        return written

    def _drop_beyond_limit(self) -> None:
        dropped = 0
        while self._entries and sum(e.rows for e in self._entries) > self.max_rows and len(self._entries) > 1:
            dropped += len(self._entries.popleft().snapshots)
        if dropped:
            logger.error(
                "spool full (%d rows): the %d oldest kept snapshots were dropped", self.max_rows, dropped
            )
            self._rewrite()

    def _rewrite(self) -> None:
        if self.path is None:
            return
        if not self._entries:
            self.path.unlink(missing_ok=True)
            return
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            for entry in self._entries:
                handle.write(json.dumps(_encode(entry)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)

    def _load(self, path: Path) -> None:
        kept = 0
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    entry = _decode(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    logger.error("spool %s line %d is damaged and skipped", path, number)
                    continue
                self._entries.append(entry)
                kept += len(entry.snapshots)
        if self._entries:
            self._outage_since = datetime.now(UTC)
            logger.warning("spool %s holds %d snapshots from before the restart", path, kept)


def _encode(entry: SpoolEntry) -> dict[str, Any]:
    return {
        "run_id": entry.run_id,
        "snapshots": [
            {
                "portal": s.portal,
                "user_id": s.user_id,
                "polled_at": s.polled_at.isoformat(),
                "raw": s.parsed.raw,
            }
            for s in entry.snapshots
        ],
        "errors": [
            {
                "portal": e.portal,
                "user_id": e.user_id,
                "occurred_at": e.occurred_at.isoformat(),
                "code": e.code,
                "http_status": e.http_status,
                "message": e.message,
            }
            for e in entry.errors
        ],
    }


def _decode(data: dict[str, Any]) -> SpoolEntry:
    snapshots: Sequence[storage.SnapshotRow] = [
        storage.SnapshotRow(
            s["portal"], int(s["user_id"]), datetime.fromisoformat(s["polled_at"]), _reparse(s["raw"])
        )
        for s in data["snapshots"]
    ]
    errors = [
        storage.ErrorRow(
            e["portal"],
            e["user_id"],
            datetime.fromisoformat(e["occurred_at"]),
            e["code"],
            e["http_status"],
            e["message"],
        )
        for e in data["errors"]
    ]
    return SpoolEntry(data["run_id"], tuple(snapshots), tuple(errors))


def _reparse(raw: Any) -> Any:
    unparsed = isinstance(raw, dict) and set(raw) == {"_unparsed"}
    return parse_status(raw["_unparsed"] if unparsed else raw)
