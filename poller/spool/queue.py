"""Keep what the database could not take (it is down or locked) and write it when it is back.

Each entry is one portal's cycle: its snapshots and error rows. Entries wait in memory, in
order, and in a JSON-lines file, so that a restart loses none of them:

- The file is appended to, never rewritten each cycle: a line `{"seq": 7, ...}` when an
  entry is kept, a marker `{"done": 7}` once the database has it. It is rewritten only when
  it has grown past COMPACT_BYTES and twice what still waits, and removed once nothing waits.
- Replaying is idempotent (the storage package skips snapshots and error rows it already
  holds), so a crash between a commit and its marker doubles nothing.
- An entry the database refuses for its data goes to `<spool>.dead.jsonl`, a line that cannot
  be read to `<spool>.unreadable`: neither holds the queue back or stops a start.
- `<spool>.lock` is held (flock) while the spool is open: a second poller refuses to start.
- A file that cannot be written (disk full, read-only, a directory) leaves the spool in
  memory, said once in the log and by `memory_only`; the file is tried again every
  RETRY_SECONDS and polling goes on meanwhile.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from poller import storage
from poller.spool.files import SpoolLocked, append_to, replace_file, sibling, take_lock, why
from poller.spool.lines import SpoolEntry, done_line, entry_line, read_line

if TYPE_CHECKING:
    from poller.daemon.metrics import Metrics

__all__ = ["DEFAULT_MAX_ROWS", "Spool", "SpoolEntry", "SpoolLocked", "sibling"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 200_000
COMPACT_BYTES = 8 * 1024 * 1024
RETRY_SECONDS = 60.0


@dataclass
class _Waiting:
    entry: SpoolEntry
    size: int  # bytes of its line in the spool file; 0 while it is in memory only


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
        self.unreadable = 0
        self.dead_lettered = 0
        self.dropped = 0
        self._monotonic = monotonic
        self._waiting: dict[int, _Waiting] = {}
        self._rows = 0
        self._next_seq = 1
        self._lock = threading.RLock()
        self._flushing = threading.Lock()
        self._outage_since: datetime | None = None
        self._memory_only = False
        self._retry_at = 0.0
        self._file_bytes = 0  # the spool file's size as written by this process
        self._live_bytes = 0  # of which lines of entries still waiting
        self._held: weakref.finalize[[int], Spool] | None = None  # closes the lock file's descriptor
        if path is not None:
            self._open(path)

    # -- state ---------------------------------------------------------------------------

    @property
    def snapshots(self) -> int:
        with self._lock:
            return sum(len(w.entry.snapshots) for w in self._waiting.values())

    @property
    def rows(self) -> int:
        """Snapshots and error rows waiting."""
        return self._rows

    @property
    def memory_only(self) -> bool:
        """True while the spool file cannot be written: what waits is lost if the poller stops."""
        return self._memory_only

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def close(self) -> None:
        """Let another process take the spool (the lock also goes when this object does)."""
        if self._held is not None:
            self._held()

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
                where = f" and {self.path}" if self.path and not self._memory_only else ""
                logger.error(
                    "database unavailable (%s): keeping snapshots in memory%s until it is back", reason, where
                )
            seq = self._next_seq
            self._next_seq += 1
            self._waiting[seq] = _Waiting(entry, 0)
            self._rows += entry.rows
            if self.path is not None:
                if not self._memory_only:
                    self._append_entry(seq)
                elif self._monotonic() >= self._retry_at:
                    self._try_file_again()
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
                    self._dead_letter(seq, entry, _describe(exc), exc)
                else:
                    if saved.refused:
                        self._dead_letter_refused(seq, entry, saved.refused)
                    written += saved.snapshots
                replayed = True
                self._finish(seq)
            with self._lock:
                if replayed and not self._waiting:
                    since = self._outage_since
                    logger.info(
                        "database available again: %d kept snapshots written (outage since %s)",
                        written,
                        f"{since:%Y-%m-%d %H:%M:%S} UTC" if since else "start",
                    )
                    self._outage_since = None
            return written
        finally:
            self._flushing.release()

    def _head(self) -> tuple[int, SpoolEntry] | None:
        with self._lock:
            for seq, waiting in self._waiting.items():
                return seq, waiting.entry
            return None

    def _finish(self, seq: int) -> None:
        """Forget a written (or dead-lettered, or dropped) entry, and mark it so in the file."""
        with self._lock:
            waiting = self._waiting.pop(seq, None)
            if waiting is None:  # dropped while it was being written
                return
            self._rows -= waiting.entry.rows
            self._live_bytes -= waiting.size
            if self.path is None:
                return
            if self._memory_only:
                if not self._waiting and self._monotonic() >= self._retry_at:
                    self._try_file_again()
                return
            try:
                if not self._waiting:
                    self._compact()
                elif waiting.size:
                    self._append(done_line(seq), sync=False)
                    if self._file_bytes > COMPACT_BYTES and self._file_bytes > 2 * self._live_bytes:
                        self._compact()
            except OSError as exc:
                self._go_memory_only(exc)

    def _drop_beyond_limit(self) -> None:
        rows = snapshots = 0
        while self._rows > self.max_rows and len(self._waiting) > 1:
            seq, waiting = next(iter(self._waiting.items()))
            rows += waiting.entry.rows
            snapshots += len(waiting.entry.snapshots)
            self._finish(seq)
        if rows:
            self.dropped += rows
            logger.error(
                "spool full (%d rows): the %d oldest kept snapshots were dropped", self.max_rows, snapshots
            )

    # -- the dead-letter file ------------------------------------------------------------

    def _dead_letter_refused(
        self, seq: int, entry: SpoolEntry, refused: tuple[storage.ErrorRow, ...]
    ) -> None:
        """Keep the snapshots the database refused (their BAD_VALUE rows are stored already)."""
        keys = {(row.user_id, row.occurred_at) for row in refused}
        rows = tuple(s for s in entry.snapshots if (s.user_id, s.polled_at) in keys)
        reasons = sorted({row.message for row in refused})
        dead = SpoolEntry(entry.run_id, rows, ())
        self._dead_letter(seq, dead, "; ".join(reasons)[:300], None)

    def _dead_letter(self, seq: int, entry: SpoolEntry, reason: str, exc: BaseException | None) -> None:
        """Append `entry` to `<spool>.dead.jsonl` (as a spool line, with why), log and count it."""
        rows_of = entry.snapshots or entry.errors
        portal = rows_of[0].portal if rows_of else "?"
        rows = entry.rows
        target = sibling(self.path, ".dead.jsonl") if self.path is not None else None
        kept_in = "is lost: the spool has no file"
        if target is not None:
            try:
                line = entry_line(seq, entry, dead_at=datetime.now(UTC).isoformat(), reason=reason)
                append_to(target, line, sync=True)
                kept_in = f"moved to {target}"
            except (OSError, ValueError, RecursionError) as error:
                kept_in = f"is lost: {target} cannot be written ({why(error)})"
        expected = storage.DatabaseFailure | ValueError | OverflowError
        unexpected = exc is not None and not isinstance(exc, expected)
        logger.error(
            "portal %s: the database refused %d kept rows (%s); the entry %s",
            portal,
            rows,
            reason,
            kept_in,
            exc_info=exc if unexpected else None,  # not a database answer: a bug to see whole
        )
        self.dead_lettered += rows
        if self.metrics is not None:
            self.metrics.count_quarantined(rows, "rejected")

    # -- the spool file ------------------------------------------------------------------

    def _open(self, path: Path) -> None:
        """Lock the file, read what waits in it, set unreadable lines aside, compact it.

        Only another poller holding the lock stops this; a file that cannot be locked,
        read or written leaves the spool in memory.
        """
        problem: OSError | None = None
        try:
            self._hold_lock(path)
        except OSError as exc:
            problem = exc
        unread = False
        try:
            needs_rewrite = self._load(path)
        except OSError as exc:
            problem, unread = problem or exc, True
        else:
            try:
                if problem is None and needs_rewrite:
                    self._compact()
            except OSError as exc:
                problem = exc
        if problem is not None:
            self._go_memory_only(problem)
        if unread:  # never replace a file that could not be read: memory only until a restart
            self._retry_at = math.inf
        else:
            self._file_bytes = self._live_bytes = sum(w.size for w in self._waiting.values())
        if self._waiting:
            self._outage_since = datetime.now(UTC)
            logger.warning("spool %s holds %d snapshots from before the restart", path, self.snapshots)
        self._drop_beyond_limit()

    def _hold_lock(self, path: Path) -> None:
        self._held = weakref.finalize(self, os.close, take_lock(path))

    def _load(self, path: Path) -> bool:
        """Read waiting entries; return whether the file needs rewriting (markers, bad lines)."""
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        done: set[int] = set()
        unreadable: list[bytes] = []
        needs_rewrite = False
        seqs: list[int] = []
        loaded: list[tuple[int | None, SpoolEntry, int]] = []
        with path.open("rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    needs_rewrite = True  # a torn last line: never append after it
                if not raw.strip():
                    needs_rewrite = True
                    continue
                try:
                    seq, entry = read_line(raw)
                except Exception:  # whatever is wrong with one line costs that line only
                    unreadable.append(raw if raw.endswith(b"\n") else raw + b"\n")
                    continue
                if entry is None:
                    assert seq is not None
                    done.add(seq)
                    needs_rewrite = True
                    continue
                if seq is None:
                    needs_rewrite = True  # written by an older version: numbered now
                else:
                    seqs.append(seq)
                loaded.append((seq, entry, len(raw)))
        self._next_seq = max(seqs, default=0) + 1
        for seq, entry, size in loaded:
            if seq is None:
                seq = self._next_seq
                self._next_seq += 1
            if seq in done or seq in self._waiting:
                continue
            self._waiting[seq] = _Waiting(entry, size)
            self._rows += entry.rows
        if unreadable:
            target = sibling(path, ".unreadable")
            self.unreadable += len(unreadable)
            if self.metrics is not None:
                self.metrics.count_quarantined(len(unreadable), "unreadable")
            try:
                append_to(target, b"".join(unreadable), sync=True)  # before the rewrite drops them
            except OSError as exc:
                logger.error(
                    "spool %s: %d unreadable lines skipped; %s cannot be written (%s)",
                    path,
                    len(unreadable),
                    target,
                    why(exc),
                )
                raise
            logger.error("spool %s: %d unreadable lines moved to %s", path, len(unreadable), target)
            needs_rewrite = True
        return needs_rewrite

    def _append_entry(self, seq: int) -> None:
        waiting = self._waiting[seq]
        try:
            line = entry_line(seq, waiting.entry)
        except (ValueError, RecursionError) as exc:
            logger.error(
                "spool: a kept cycle cannot be written to the file (%s); it waits in memory only", exc
            )
            return
        try:
            self._append(line, sync=True)
        except OSError as exc:
            self._go_memory_only(exc)
            return
        waiting.size = len(line)
        self._live_bytes += len(line)

    def _append(self, line: bytes, *, sync: bool) -> None:
        assert self.path is not None
        append_to(self.path, line, sync=sync)
        self._file_bytes += len(line)

    def _compact(self) -> None:
        """Rewrite the file with only the entries still waiting; remove it when none waits."""
        assert self.path is not None

        def lines() -> Iterator[bytes]:
            for seq, waiting in self._waiting.items():
                try:
                    line = entry_line(seq, waiting.entry)
                except (ValueError, RecursionError):
                    line = b""  # logged when it was kept: it waits in memory only
                waiting.size = len(line)
                if line:
                    yield line

        replace_file(self.path, lines())
        self._file_bytes = self._live_bytes = sum(w.size for w in self._waiting.values())

    def _go_memory_only(self, exc: OSError) -> None:
        self._retry_at = self._monotonic() + RETRY_SECONDS
        if self._memory_only:
            return
        self._memory_only = True
        logger.error(
            "spool %s cannot be written (%s): cycles waiting for the database are kept in memory "
            "only and are lost if the poller stops; polling goes on",
            self.path,
            why(exc),
        )
        if self.metrics is not None:
            self.metrics.set_spool_in_memory(True)

    def _try_file_again(self) -> None:
        """Leave memory-only mode if the file can be locked and written now."""
        assert self.path is not None
        try:
            if self._held is None or not self._held.alive:
                self._hold_lock(self.path)
            self._compact()
        except (OSError, SpoolLocked):
            self._retry_at = self._monotonic() + RETRY_SECONDS
            return
        self._memory_only = False
        logger.warning("spool %s can be written again: %d waiting rows are in it", self.path, self._rows)
        if self.metrics is not None:
            self.metrics.set_spool_in_memory(False)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, storage.DatabaseFailure):
        return storage.describe_db_error(exc)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
