"""A portal's cycles and its background norms refresh taking turns on one bucket.

The refresh sends nothing while a cycle runs, a cycle waits for the one refresh request in
flight (at most CYCLE_WAIT_SECONDS), and the refresh sends only while the bucket holds at most
YIELD_SLOTS requests, so a cycle finds the bucket nearly as empty as without it
(poller.poll.norms_refresh explains the rest).
"""

from __future__ import annotations

import threading

from poller.bitrix import PortalClient
from poller.clock import SystemClock
from poller.errors import Stopped
from poller.poll import norms_steps as steps

YIELD_SLOTS = 2
CYCLE_WAIT_SECONDS = 5.0  # a cycle waits this long at most for the refresh's request in flight


def stopping_pace(client: PortalClient) -> steps.Pace:
    """A pace that never waits (the bucket itself paces), and raises Stopped once the client's
    stop is set."""

    def pace() -> None:
        if client.stop is not None and client.stop.is_set():
            raise Stopped("stopped")

    return pace


class Turns:
    """One portal's cycles and its background refresh taking turns (see the module)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._cycles = 0  # cycles in flight
        self._sending = False  # a refresh request (and its save) in flight

    def cycle_starts(self) -> None:
        with self._condition:
            self._cycles += 1
            self._condition.wait_for(lambda: not self._sending, CYCLE_WAIT_SECONDS)

    def cycle_ends(self) -> None:
        with self._condition:
            self._cycles -= 1
            self._condition.notify_all()

    def refresh_ends(self) -> None:
        with self._condition:
            self._sending = False
            self._condition.notify_all()

    def pace(self, client: PortalClient, slots: int = YIELD_SLOTS) -> steps.Pace:
        """Before each refresh request: wait while a cycle runs and until the portal's bucket
        holds at most `slots` requests; raise Stopped once the client's stop is set."""
        stopping = stopping_pace(client)

        def pace() -> None:
            self.refresh_ends()  # the previous request and its save are over
            while True:
                stopping()
                with self._condition:
                    if self._cycles:
                        self._condition.wait(0.5)
                        continue
                    over = client.bucket.level - slots
                    if over <= 0:
                        self._sending = True
                        return
                wait = over / client.bucket.rate
                if client.stop is not None and isinstance(client.clock, SystemClock):
                    client.stop.wait(wait)  # a stop ends the wait at once
                else:
                    client.clock.sleep(wait)

        return pace
