"""The cyclic garbage collector held off while a write turns thousands of answers into rows.

A write of 500 users makes some 10 objects per answer (tuples, texts) and frees them when it
returns; none forms a reference cycle. The collector, counting those allocations, runs dozens
of young collections per cycle, and now and then a full one that walks every object the
process holds (about 0.1 s under `run` with a directory of 10,000 users, inside the write that
happened to trigger it). Held off for the write, it collects the rare cycle a write leaves
afterwards. Threads (portals written side by side) share one count: the collector comes back
when the last of them is done, and is left alone where it was off already.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holding = 0  # writes under way that hold the collector off
_disabled_here = False  # whether those writes turned it off (it was on when the first began)


@contextmanager
def collector_held_off() -> Iterator[None]:
    """Run the body with the cyclic collector off (reference counting frees as always)."""
    global _holding, _disabled_here
    with _lock:
        if _holding == 0:
            _disabled_here = gc.isenabled()
            gc.disable()
        _holding += 1
    try:
        yield
    finally:
        with _lock:
            _holding -= 1
            if _holding == 0 and _disabled_here:
                gc.enable()
