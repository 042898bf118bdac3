"""A backfill's progress as the command line shows it: a bar on a terminal, else a log line now and then.

A leaf: the CLI hands a `ProgressDisplay` to the backfill as its `progress` callback, and
nothing in the poller imports this module back.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from poller.render.durations import hours_minutes
from poller.render.status import counted

if TYPE_CHECKING:
    from poller.poll.backfill import PortalBackfill

logger = logging.getLogger(__name__)


class ProgressDisplay:
    """Show a backfill's progress on `stream`: a rich bar on a terminal, else a log line now and then.

    Use as a context manager around the backfill and pass it as `progress`. The bar shows,
    per portal, users finished of those to read, records, and the time left; the log lines
    (every `interval` seconds, and at each portal's end) say the same in words.
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._live: Any = None
        self._tasks: dict[str, Any] = {}
        self._logged: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> ProgressDisplay:
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._live = Progress(
                TextColumn("backfill {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("users, {task.fields[records]:,} records, {task.fields[requests]:,} requests"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, state: PortalBackfill) -> None:
        processed = state.done + len(state.failed)
        if self._live is not None:
            task = self._tasks.get(state.portal)
            if task is None:
                task = self._live.add_task(state.portal, total=state.to_do, records=0, requests=0)
                self._tasks[state.portal] = task
            self._live.update(
                task,
                total=state.to_do,
                completed=processed,
                records=state.records,
                requests=state.requests,
            )
            return
        now = time.monotonic()
        started = self._started.setdefault(state.portal, now)
        last = self._logged.get(state.portal)
        if state.to_do == 0 or processed >= state.to_do or (last is not None and now - last < self.interval):
            return  # the summary line tells the end
        self._logged[state.portal] = now
        eta = ""
        if 0 < processed < state.to_do:
            left = (now - started) / processed * (state.to_do - processed)
            eta = f", about {hours_minutes(round(left))} (h:mm) left"
        logger.info(
            "backfill %s: %d of %d users, %d records, %s%s",
            state.portal,
            processed,
            state.to_do,
            state.records,
            counted(state.requests, "request"),
            eta,
        )
