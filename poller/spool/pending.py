"""The spool's queue in memory: entries by sequence number, oldest first, and their rows.

The spool file mirrors it (poller.spool.journal); this is the order entries are written back in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from poller.spool.lines import SpoolEntry


@dataclass
class Waiting:
    """An entry in the queue, and the bytes of its line in the spool file (0: in memory only)."""

    entry: SpoolEntry
    size: int = 0


class Pending:
    """Entries waiting for the database, oldest first; not thread-safe (the spool locks)."""

    def __init__(self) -> None:
        self._waiting: dict[int, Waiting] = {}
        self.rows = 0  # snapshots and error rows of every waiting entry
        self.next_seq = 1

    def push(self, entry: SpoolEntry, *, seq: int | None = None, size: int = 0) -> int:
        """Put `entry` last under `seq` (default: the next number); return its number."""
        if seq is None:
            seq = self.next_seq
        self.next_seq = max(self.next_seq, seq + 1)
        self._waiting[seq] = Waiting(entry, size)
        self.rows += entry.rows
        return seq

    def __contains__(self, seq: int) -> bool:
        return seq in self._waiting

    def __getitem__(self, seq: int) -> Waiting:
        return self._waiting[seq]

    def oldest(self) -> tuple[int, Waiting] | None:
        for seq, waiting in self._waiting.items():
            return seq, waiting
        return None

    def pop(self, seq: int) -> Waiting | None:
        """Take entry `seq` out; None when it left already (dropped while it was written)."""
        waiting = self._waiting.pop(seq, None)
        if waiting is not None:
            self.rows -= waiting.entry.rows
        return waiting

    def items(self) -> Iterator[tuple[int, Waiting]]:
        return iter(list(self._waiting.items()))

    @property
    def snapshots(self) -> int:
        return sum(len(w.entry.snapshots) for w in self._waiting.values())

    @property
    def size(self) -> int:
        """Bytes of the waiting entries' lines in the spool file."""
        return sum(w.size for w in self._waiting.values())

    def __len__(self) -> int:
        return len(self._waiting)

    def __bool__(self) -> bool:
        return bool(self._waiting)
