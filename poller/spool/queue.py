"""Keep what the database could not take (it is down or locked) and write it when it is back.

Each entry is one portal's cycle: its snapshots and error rows. Entries wait in memory, in
order (poller.spool.pending), and in a JSON-lines file (poller.spool.journal), so that a
restart loses none of them:

- Replaying is idempotent (the storage package skips snapshots and error rows it already
  holds), so a crash between a commit and its marker doubles nothing.
- An entry the database refuses for its data goes to `<spool>.dead.jsonl`
  (poller.spool.dead_letters), a line that cannot be read to `<spool>.unreadable`: neither
  holds the queue back or stops a start.
- A file that cannot be written leaves the spool in memory, said once in the log and by
  `memory_only`; polling goes on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from poller import storage
from poller.spool.dead_letters import dead_letter, describe, refused_part
from poller.spool.files import SpoolLocked, sibling
from poller.spool.journal import Journal
from poller.spool.lines import SpoolEntry
from poller.spool.pending import Pending

if TYPE_CHECKING:
    from poller.daemon.metrics import Metrics

__all__ = ["DEFAULT_MAX_ROWS", "Spool", "SpoolEntry", "SpoolLocked", "sibling"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 200_000


class Spool:
    """Cycles waiting for the database, oldest first; at most `max_rows` rows are kept.

    `path` None keeps them in memory only. Raises SpoolLocked when another process holds
    `path`. Counters for the metrics and `status`: `unreadable` (lines moved aside at start),
    `dead_lettered` and `dropped` (rows).
    """

    def __init__(
        self,
        path: Path | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        *,
        metrics: Metrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self.metrics = metrics
        self.dead_lettered = 0
        self.dropped = 0
        self._pending = Pending()
        self._lock = threading.RLock()
        self._flushing = threading.Lock()
        self._outage_since: datetime | None = None
        self._journal: Journal | None = None
        if path is not None:
            self._journal = Journal(path, metrics, monotonic)
            self._journal.open(self._pending)
            if self._pending:
                self._outage_since = datetime.now(UTC)
                logger.warning("spool %s holds %d snapshots from before the restart", path, self.snapshots)
            self._drop_beyond_limit()

    # -- state ---------------------------------------------------------------------------

    @property
    def snapshots(self) -> int:
        with self._lock:
            return self._pending.snapshots

    @property
    def rows(self) -> int:
        """Snapshots and error rows waiting."""
        return self._pending.rows

    @property
    def unreadable(self) -> int:
        """Lines of the spool file moved aside at start."""
        return self._journal.unreadable if self._journal is not None else 0

    @property
    def memory_only(self) -> bool:
        """True while the spool file cannot be written: what waits is lost if the poller stops."""
        return self._journal is not None and self._journal.memory_only

    def __bool__(self) -> bool:
        return bool(self._pending)

    def close(self) -> None:
        """Let another process take the spool (the lock also goes when this object does)."""
        if self._journal is not None:
            self._journal.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- keeping -------------------------------------------------------------------------

    def add(self, entry: SpoolEntry, reason: str) -> None:
        """Keep `entry` behind the others; log the outage once, when it starts."""
        with self._lock:
            if self._outage_since is None:
                self._outage_since = datetime.now(UTC)
                where = f" and {self.path}" if self.path and not self.memory_only else ""
                logger.error(
                    "database unavailable (%s): keeping snapshots in memory%s until it is back", reason, where
                )
            seq = self._pending.push(entry)
            if self._journal is not None:
                self._journal.kept(seq, self._pending)
            self._drop_beyond_limit()

    def note_outage(self, reason: str) -> None:
        """Record that the database failed without anything to keep (logged once)."""
        with self._lock:
            if self._outage_since is None:
                self._outage_since = datetime.now(UTC)
                logger.error("database unavailable (%s)", reason)

    # -- writing back --------------------------------------------------------------------

    def flush(self, engine: Engine, mode: storage.StorageMode) -> int:
        """Write the kept cycles in order; return how many snapshots went.

        Stops at the first entry the database cannot take now (it is still down); an entry
        it refuses for its data goes to the dead-letter file and the next one is tried.
        Returns 0 at once while another thread is flushing.
        """
        if not self._flushing.acquire(blocking=False):
            return 0
        try:
            written = 0
            replayed = False
            while (head := self._head()) is not None:
                seq, entry = head
                try:
                    saved = storage.save_portal_cycle(
                        engine, entry.run_id, entry.snapshots, entry.errors, mode
                    )
                except Exception as exc:
                    if isinstance(storage.classify(exc), storage.DatabaseUnavailable):
                        break
                    self._dead_letter(seq, entry, describe(exc), exc)
                else:
                    if saved.refused:
                        self._dead_letter(seq, *refused_part(entry, saved.refused), None)
                    written += saved.snapshots
                replayed = True
                self._finish(seq)
            with self._lock:
                if replayed and not self._pending:
                    self._outage_over(written)
            return written
        finally:
            self._flushing.release()

    def _outage_over(self, written: int) -> None:
        since = self._outage_since
        logger.info(
            "database available again: %d kept snapshots written (outage since %s)",
            written,
            f"{since:%Y-%m-%d %H:%M:%S} UTC" if since else "start",
        )
        self._outage_since = None

    def _head(self) -> tuple[int, SpoolEntry] | None:
        with self._lock:
            oldest = self._pending.oldest()
            return None if oldest is None else (oldest[0], oldest[1].entry)

    def _finish(self, seq: int) -> None:
        """Forget a written (or dead-lettered, or dropped) entry, and mark it so in the file."""
        with self._lock:
            waiting = self._pending.pop(seq)
            if waiting is None:  # dropped while it was being written
                return
            if self._journal is not None:
                self._journal.left(seq, waiting, self._pending)

    def _drop_beyond_limit(self) -> None:
        rows = snapshots = 0
        while self._pending.rows > self.max_rows and len(self._pending) > 1:
            oldest = self._pending.oldest()
            assert oldest is not None
            seq, waiting = oldest
            rows += waiting.entry.rows
            snapshots += len(waiting.entry.snapshots)
            self._finish(seq)
        if rows:
            self.dropped += rows
            logger.error(
                "spool full (%d rows): the %d oldest kept snapshots were dropped", self.max_rows, snapshots
            )

    def _dead_letter(self, seq: int, entry: SpoolEntry, reason: str, exc: BaseException | None) -> None:
        """Set `entry` aside in the dead-letter file and count its rows."""
        dead_letter(self.path, seq, entry, reason, exc)
        self.dead_lettered += entry.rows
        if self.metrics is not None:
            self.metrics.count_quarantined(entry.rows, "rejected")
