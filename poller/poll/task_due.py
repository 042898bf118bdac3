"""When a portal's periodic task (the directory refresh, the norms refresh) is next due.

The database decides (portal_tasks): due when never done, `refresh_hours` after the last
success, and after a failure again after RETRY_SECONDS (or refresh_hours, if shorter), so
`run`, every replica and `poll` under a timer agree. Between two looks at the database the
next look is kept in memory on the client's monotonic clock (`Looks`), so a cycle every
second costs no query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from poller import storage
from poller.storage.tasks import TaskState

RETRY_SECONDS = 900.0  # a failed task is tried again after this long (or refresh_hours, if shorter)


def due_at(
    state: TaskState, now: datetime, refresh_hours: float, done_also: datetime | None = None
) -> datetime | None:
    """When the task is next due (`now` or earlier: due); None when it is off (refresh_hours 0).
    `done_also`: another sign of the last success (the newest stored user, for the directory)."""
    if refresh_hours <= 0:
        return None
    every = timedelta(hours=refresh_hours)
    done = max(filter(None, (state.last_done_at, done_also)), default=None)
    due = now if done is None else done + every
    tried = state.last_tried_at
    if tried is not None and (done is None or tried > done):
        due = max(due, tried + min(every, timedelta(seconds=RETRY_SECONDS)))
    return due


class Looks:
    """Per portal, when to look at the database for the task again (monotonic seconds)."""

    def __init__(self, refresh_hours: float) -> None:
        self.refresh_hours = refresh_hours
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_due(
        self, portal: str, mono: float, now: datetime, read_due: Callable[[], datetime | None]
    ) -> bool:
        """Whether the task is due now. `read_due` asks the database; an unreadable database
        means not now, looked at again after the retry wait at most."""
        with self._lock:
            if self.refresh_hours <= 0 or mono < self._next.get(portal, mono):
                return False
            self._next[portal] = mono + RETRY_SECONDS  # no second look while this one runs
        try:
            due = read_due()
        except storage.DatabaseFailure:
            self.again_soon(portal, mono)
            raise
        if due is None or due > now:
            self.again_at(portal, mono + ((due - now).total_seconds() if due else RETRY_SECONDS))
            return False
        self.again_soon(portal, mono)
        return True

    def again_soon(self, portal: str, mono: float) -> None:
        """Look again after the retry wait at most (a task that runs, stopped or failed to store)."""
        self.again_at(portal, mono + min(RETRY_SECONDS, self.refresh_hours * 3600))

    def again_at(self, portal: str, mono: float) -> None:
        with self._lock:
            self._next[portal] = mono
