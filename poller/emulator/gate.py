"""A gate that holds chosen requests until the test lets them go: a cycle held open on purpose.

Tests that send a signal mid-phase (listing users, the directory refresh, a reconcile, a batch
of statuses) need the phase to be running when the signal comes. Slowing the portal down and
hoping is a race on a loaded machine; a gate is not: the test waits until a request is held,
signals, waits for the poller to say it saw the signal, then releases.
"""

from __future__ import annotations

import threading


class Gate:
    """Requests of the held methods wait in `wait_for` until `release()` (or the emulator stops).

    Methods are named as in the request path, lower case: "user.get", "department.get",
    "batch", "timeman.status"; REST 3.0 ones with "api/" before them ("api/batch").
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._methods: frozenset[str] = frozenset()
        self._passes = 0
        self._held = 0
        self._opened = 0  # how many times the gate was opened: a waiter leaves when it changes

    def hold(self, *methods: str, after: int = 0) -> None:
        """Hold requests of `methods` from now on, after letting `after` of them pass."""
        with self._condition:
            self._methods = frozenset(method.lower() for method in methods)
            self._passes = after

    def release(self) -> None:
        """Let every held request go, and hold none from now on."""
        with self._condition:
            self._methods = frozenset()
            self._opened += 1
            self._condition.notify_all()

    @property
    def held(self) -> int:
        """Requests waiting at the gate now."""
        with self._condition:
            return self._held

    def wait_held(self, count: int = 1, timeout: float = 30.0) -> bool:
        """Wait until `count` requests are held; False when `timeout` real seconds passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: self._held >= count, timeout)

    def wait_for(self, method: str) -> None:
        """Called with each request's method before it is answered: hold it if its method is held."""
        with self._condition:
            if method not in self._methods:
                return
            if self._passes > 0:
                self._passes -= 1
                return
            opened = self._opened
            self._held += 1
            self._condition.notify_all()
            try:
                self._condition.wait_for(lambda: self._opened != opened)
            finally:
                self._held -= 1
