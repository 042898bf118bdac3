"""Read a spool file at start: the entries still waiting, and the lines that cannot be read.

Whatever is wrong with one line costs that line only; the caller sets those lines aside.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from poller.spool.lines import SpoolEntry, read_line


@dataclass
class SpoolFile:
    """What a spool file holds.

    `entries`: (seq, entry, bytes of its line) still waiting, in file order, each numbered
    (lines of the previous version get numbers after the highest). `needs_rewrite`: markers,
    blank, torn, unnumbered or unreadable lines are in it, so it should be compacted.
    """

    entries: list[tuple[int, SpoolEntry, int]] = field(default_factory=list)
    next_seq: int = 1
    unreadable: list[bytes] = field(default_factory=list)
    needs_rewrite: bool = False


def read_spool_file(path: Path) -> SpoolFile:
    """Read `path` (none there: nothing waits); raise OSError when it is not a regular file."""
    found = SpoolFile()
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return found
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    done: set[int] = set()
    loaded: list[tuple[int | None, SpoolEntry, int]] = []
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                found.needs_rewrite = True  # a torn last line: never append after it
            if not raw.strip():
                found.needs_rewrite = True
                continue
            try:
                seq, entry = read_line(raw)
            except Exception:  # whatever is wrong with one line costs that line only
                found.unreadable.append(raw if raw.endswith(b"\n") else raw + b"\n")
                found.needs_rewrite = True
                continue
            if entry is None:
                assert seq is not None
                done.add(seq)
                found.needs_rewrite = True
            else:
                found.needs_rewrite |= seq is None  # written by an older version: numbered now
                loaded.append((seq, entry, len(raw)))
    found.next_seq = max((seq for seq, _, _ in loaded if seq is not None), default=0) + 1
    numbered: set[int] = set()
    for seq, entry, size in loaded:
        if seq is None:
            seq = found.next_seq
            found.next_seq += 1
        if seq in done or seq in numbered:
            continue
        numbered.add(seq)
        found.entries.append((seq, entry, size))
    return found
