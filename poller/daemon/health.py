"""What /healthz says: whether every portal this replica holds stored a cycle recently enough.

Kept apart from the Prometheus series: health is judged from the last success and the moment
a portal was taken, both on the same clock, and only for the portals this replica polls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Health:
    """The last success and the ownership of each portal; thread-safe.

    `started_at`: a portal without a success is given `max_age_seconds` from this moment.
    """

    def __init__(self, portals: Iterable[str], started_at: float) -> None:
        self.portals = list(portals)
        self.started_at = started_at
        self.last_success: dict[str, float] = {}
        self._owned_since: dict[str, float | None] = {}  # None: released to another replica
        self._lock = threading.Lock()

    def succeeded(self, portal: str, now: float) -> None:
        """A cycle of `portal` reached the portal and stored its users at `now`."""
        with self._lock:
            self.last_success[portal] = now

    def owned(self, portal: str, owned: bool, now: float) -> None:
        """This replica took (True) or let go of (False) `portal`; a renewal keeps the first moment."""
        with self._lock:
            if not owned:
                self._owned_since[portal] = None
            elif self._owned_since.get(portal) is None:
                self._owned_since[portal] = now

    def report(self, max_age_seconds: float, now: float) -> tuple[bool, str]:
        """(healthy, one line): healthy when no held portal went `max_age_seconds` without a success.

        A portal whose ownership was never reported counts as held (a single daemon polls
        them all); a portal taken is given a full `max_age_seconds` from that moment.
        """
        stale = []
        with self._lock:
            for portal in self.portals:
                held_since = self._owned_since.get(portal, self.started_at)
                if held_since is None:
                    continue
                last = self.last_success.get(portal)
                since = held_since if last is None else max(last, held_since)
                if now - since > max_age_seconds:
                    state = "no successful cycle" if last is None else "last success"
                    stale.append(f"{portal}: {state} for {now - since:.0f} s")
        if stale:
            return False, "stale: " + "; ".join(stale)
        return True, "ok"
