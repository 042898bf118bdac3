"""Stop on SIGTERM or Ctrl-C: the first lets the work in progress finish, the second stops at once.

The first signal says so on one line and sets an Event that the cycles check before each
batch; a watchdog ends the process if the work is not done within the grace period (every
request ends within `[http] read_timeout_seconds`, so that only happens when something else
hangs). A second signal ends the process at once with exit code 130 (or 128 + its number):
`os._exit`, because worker threads still inside a request would otherwise hold the
interpreter's exit, and a third Ctrl-C would print "Exception ignored" from their join.

The handlers stay installed until the process exits: a signal that comes after the work
ended (the summary is being printed, the database closed) is still a graceful stop, said on
one line, never a KeyboardInterrupt in the middle of the exit.

Python runs a signal handler in the main thread only, and only once that thread is back in
Python code. The kernel may deliver the signal to any thread: to a worker inside a request,
while the main thread waits (unwakeably) for the workers to end, and the stop would then be
seen only when the phase is over. So the handler that Python calls does nothing, and the
signals reach us another way: `signal.set_wakeup_fd` makes every signal, in whichever
thread it lands, write its number to a pipe, and a thread of ours (`_Relay`) reads it and
calls `Shutdown.handle` at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
EXTRA_GRACE_SECONDS = 8.0  # beyond the request deadline: the last writes and closing the runs


class Shutdown:
    """What the signals asked for: `event` is set by the first one, `signal_name` names it."""

    def __init__(
        self,
        grace_seconds: float,
        event: threading.Event | None = None,
        *,
        busy: Callable[[], str] = lambda: "",
        exit: Callable[[int], object] = os._exit,
    ) -> None:
        self.grace_seconds = grace_seconds
        self.event = event if event is not None else threading.Event()
        self.signal_name: str | None = None
        self._busy = busy
        self._exit = exit
        self._signum = 0
        self._watchdog: threading.Timer | None = None
        self.work_ended = False  # set when the block of `on_signals` is left

    @property
    def interrupted(self) -> bool:
        """Ctrl-C (SIGINT) asked to stop: the command ends with exit code 130."""
        return self._signum == signal.SIGINT

    def handle(self, signum: int, _frame: FrameType | None = None) -> None:
        """The signal handler: the first signal starts a graceful stop, the next one ends it."""
        if self._signum:
            self._stop_now(f"{signal.Signals(signum).name} again")
            return
        self._signum = signum
        self.signal_name = signal.Signals(signum).name
        # In this order: whoever sees the event can cancel the watchdog, and whoever reads
        # the line knows that the work has been told to stop.
        self._watchdog = threading.Timer(
            self.grace_seconds, self._stop_now, (f"not done within {self.grace_seconds:.0f} s",)
        )
        self._watchdog.daemon = True
        self._watchdog.start()
        self.event.set()
        if self.work_ended:
            logger.warning("%s received: the work had ended; exiting", self.signal_name)
        else:
            again = "Ctrl-C again" if signum == signal.SIGINT else f"another {self.signal_name}"
            logger.warning(
                "%s received: finishing the cycle; %s to stop now (stopping within %.0f s)",
                self.signal_name,
                again,
                self.grace_seconds,
            )

    def cancel(self) -> None:
        """The work ended in time: no watchdog."""
        if self._watchdog is not None:
            self._watchdog.cancel()

    def _stop_now(self, why: str) -> None:
        busy = self._busy()
        logger.error("stopping now (%s)%s", why, f": {busy}" if busy else "")
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):  # a broken stream must not keep the process alive
                handler.flush()
        self._exit(128 + (self._signum or signal.SIGINT))


class _Relay:
    """Read the signals' wakeup pipe in a thread of its own and hand each to `current`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # the C-level handler must never block
        self.current: Shutdown | None = None
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        threading.Thread(target=self._run, name="signals", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                received = os.read(self._read, 64)
            except OSError:
                return
            if not received:
                return  # closed: uninstalled
            for signum in received:
                current = self.current
                if current is not None and signum in SIGNALS:
                    current.handle(signum)

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        self.current = None
        os.close(self._write)  # the thread reads the end of the pipe and returns


_relay: _Relay | None = None


def _noted_by_the_relay(_signum: int, _frame: FrameType | None) -> None:
    """The handler Python calls (late, in the main thread): the relay has handled the signal."""


def uninstall() -> None:
    """Give SIGINT and SIGTERM back to Python's default handlers (tests that ran a command
    in-process, so that Ctrl-C stops pytest again)."""
    global _relay
    if threading.current_thread() is not threading.main_thread():
        return
    if _relay is not None:
        _relay.close()
        _relay = None
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def on_signals(
    grace_seconds: float,
    event: threading.Event | None = None,
    *,
    busy: Callable[[], str] = lambda: "",
) -> Iterator[Shutdown]:
    """Route SIGTERM and SIGINT to a new Shutdown (main thread only), for good.

    They are not given back when the block ends: the process is about to exit, and a signal
    then must not become a KeyboardInterrupt (see the module docstring). `busy` describes,
    for the line logged on a hard stop, what is cut (the portals mid-cycle). Outside the main
    thread (a test calling a command in a worker) nothing is installed.
    """
    global _relay
    shutdown = Shutdown(grace_seconds, event, busy=busy)
    if threading.current_thread() is not threading.main_thread():
        yield shutdown
        return
    if _relay is None:
        _relay = _Relay()
    _relay.current = shutdown
    for sig in SIGNALS:
        signal.signal(sig, _noted_by_the_relay)
    try:
        yield shutdown
    finally:
        shutdown.work_ended = True
        if shutdown.signal_name is not None:
            shutdown.cancel()
