"""The spool's file: the queue in memory (poller.spool.pending) written down so a restart loses nothing.

- Appended to, never rewritten each cycle: a line `{"seq": 7, ...}` when an entry is kept,
  a marker `{"done": 7}` once the database has it. It is rewritten only when it has grown
  past COMPACT_BYTES and twice what still waits, and removed once nothing waits.
- A line that cannot be read at start goes to `<spool>.unreadable` and costs that line only.
- `<spool>.lock` is held (flock) while the file is open: a second poller refuses to start.
- A file that cannot be written (disk full, read-only, a directory) puts the journal in
  memory-only mode, said once in the log and by the metrics; the file is tried again every
  RETRY_SECONDS, and never again before a restart when it could not even be read.
"""

from __future__ import annotations

import logging
import math
import os
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from poller.spool.files import SpoolLocked, append_to, replace_file, sibling, take_lock, why
from poller.spool.lines import done_line, entry_line
from poller.spool.pending import Pending, Waiting
from poller.spool.reader import read_spool_file

if TYPE_CHECKING:
    from poller.daemon.metrics import Metrics

logger = logging.getLogger(__name__)

COMPACT_BYTES = 8 * 1024 * 1024
RETRY_SECONDS = 60.0


class Journal:
    """The file behind a spool's `Pending` queue; every method is called under the spool's lock."""

    def __init__(self, path: Path, metrics: Metrics | None, monotonic: Callable[[], float]) -> None:
        self.path = path
        self.metrics = metrics
        self.memory_only = False  # True while the file cannot be written
        self.unreadable = 0  # lines set aside at start
        self._monotonic = monotonic
        self._retry_at = 0.0
        self._file_bytes = 0  # the file's size as written by this process
        self._live_bytes = 0  # of which lines of entries still waiting
        self._held: weakref.finalize[[int], Journal] | None = None  # closes the lock's descriptor

    def close(self) -> None:
        """Let another process take the file (the lock also goes when this object does)."""
        if self._held is not None:
            self._held()

    def open(self, pending: Pending) -> None:
        """Lock the file, queue what waits in it, set unreadable lines aside, compact it.

        Only another poller holding the lock stops this (SpoolLocked); a file that cannot be
        locked, read or written leaves the spool in memory.
        """
        problem: OSError | None = None
        try:
            self._hold_lock()
        except OSError as exc:
            problem = exc
        unread = False
        try:
            needs_rewrite = self._load(pending)
        except OSError as exc:
            problem, unread = problem or exc, True
        else:
            try:
                if problem is None and needs_rewrite:
                    self._compact(pending)
            except OSError as exc:
                problem = exc
        if problem is not None:
            self._go_memory_only(problem)
        if unread:  # never replace a file that could not be read: memory only until a restart
            self._retry_at = math.inf
        else:
            self._file_bytes = self._live_bytes = pending.size

    def kept(self, seq: int, pending: Pending) -> None:
        """Write down entry `seq`, just queued (or, in memory-only mode, try the file again)."""
        if not self.memory_only:
            self._append_entry(seq, pending[seq])
        elif self._monotonic() >= self._retry_at:
            self._try_file_again(pending)

    def left(self, seq: int, waiting: Waiting, pending: Pending) -> None:
        """Mark entry `seq` gone from the queue: a marker, or a compaction once it is small."""
        self._live_bytes -= waiting.size
        if self.memory_only:
            if not pending and self._monotonic() >= self._retry_at:
                self._try_file_again(pending)
            return
        try:
            if not pending:
                self._compact(pending)
            elif waiting.size:
                self._append(done_line(seq), sync=False)
                if self._file_bytes > COMPACT_BYTES and self._file_bytes > 2 * self._live_bytes:
                    self._compact(pending)
        except OSError as exc:
            self._go_memory_only(exc)

    def _hold_lock(self) -> None:
        self._held = weakref.finalize(self, os.close, take_lock(self.path))

    def _load(self, pending: Pending) -> bool:
        """Queue the waiting entries; return whether the file needs rewriting."""
        found = read_spool_file(self.path)
        for seq, entry, size in found.entries:
            pending.push(entry, seq=seq, size=size)
        pending.next_seq = found.next_seq
        if found.unreadable:
            self._set_aside(found.unreadable)
        return found.needs_rewrite

    def _set_aside(self, lines: list[bytes]) -> None:
        """Keep unreadable lines in `<spool>.unreadable` before a rewrite drops them."""
        target = sibling(self.path, ".unreadable")
        self.unreadable += len(lines)
        if self.metrics is not None:
            self.metrics.count_quarantined(len(lines), "unreadable")
        try:
            append_to(target, b"".join(lines), sync=True)
        except OSError as exc:
            logger.error(
                "spool %s: %d unreadable lines skipped; %s cannot be written (%s)",
                self.path,
                len(lines),
                target,
                why(exc),
            )
            raise
        logger.error("spool %s: %d unreadable lines moved to %s", self.path, len(lines), target)

    def _append_entry(self, seq: int, waiting: Waiting) -> None:
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
        append_to(self.path, line, sync=sync)
        self._file_bytes += len(line)

    def _compact(self, pending: Pending) -> None:
        """Rewrite the file with only the entries still waiting; remove it when none waits."""

        def lines() -> Iterator[bytes]:
            for seq, waiting in pending.items():
                try:
                    line = entry_line(seq, waiting.entry)
                except (ValueError, RecursionError):
                    line = b""  # logged when it was kept: it waits in memory only
                waiting.size = len(line)
                if line:
                    yield line

        replace_file(self.path, lines())
        self._file_bytes = self._live_bytes = pending.size

    def _go_memory_only(self, exc: OSError) -> None:
        self._retry_at = self._monotonic() + RETRY_SECONDS
        if self.memory_only:
            return
        self.memory_only = True
        logger.error(
            "spool %s cannot be written (%s): cycles waiting for the database are kept in memory "
            "only and are lost if the poller stops; polling goes on",
            self.path,
            why(exc),
        )
        if self.metrics is not None:
            self.metrics.set_spool_in_memory(True)

    def _try_file_again(self, pending: Pending) -> None:
        """Leave memory-only mode if the file can be locked and written now."""
        try:
            if self._held is None or not self._held.alive:
                self._hold_lock()
            self._compact(pending)
        except (OSError, SpoolLocked):
            self._retry_at = self._monotonic() + RETRY_SECONDS
            return
        self.memory_only = False
        logger.warning("spool %s can be written again: %d waiting rows are in it", self.path, pending.rows)
        if self.metrics is not None:
            self.metrics.set_spool_in_memory(False)
