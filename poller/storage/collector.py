"""Young garbage collections put off while a write turns thousands of answers into rows.

A write of 500 users holds some 10 objects per answer until it returns (tuples, texts), none
in a reference cycle. The collector counts live container objects: at its usual threshold it
ran dozens of young collections per cycle over them, and every few cycles a full one over
every object the process holds (about 0.1 s under `run` with a directory of 10,000 users,
inside the write that happened to trigger it). While a write is under way the young
generation's threshold is raised to WRITE_THRESHOLD: a write stays under it, and collections
go on above it, so garbage made meanwhile by other threads is still collected, also when
writes of several portals overlap for good (at most some 50,000 objects wait). The thresholds
come back when the last write ends, unless someone changed them meanwhile.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

WRITE_THRESHOLD = 50_000  # live container objects; a write of 3,000 answers holds 10,000 to 20,000

_lock = threading.RLock()  # reentrant: a collection under it may run code that writes
_writes = 0  # writes under way
_restore: tuple[int, int, int] | None = None  # the thresholds before the first of them
_raised: tuple[int, int, int] | None = None  # the thresholds set for them


@contextmanager
def young_collections_put_off() -> Iterator[None]:
    """Run the body with the young generation's threshold at WRITE_THRESHOLD."""
    global _writes, _restore, _raised
    with _lock:
        if _writes == 0:
            before = gc.get_threshold()
            if 0 < before[0] < WRITE_THRESHOLD:  # 0: automatic collection is off
                _restore, _raised = before, (WRITE_THRESHOLD, *before[1:])
                gc.set_threshold(*_raised)
        _writes += 1
    try:
        yield
    finally:
        with _lock:
            _writes -= 1
            if _writes == 0 and _restore is not None:
                if gc.get_threshold() == _raised:  # not changed by someone else meanwhile
                    gc.set_threshold(*_restore)
                _restore = _raised = None
