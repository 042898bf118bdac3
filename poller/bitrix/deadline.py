"""A requests adapter whose exchanges end by a deadline, however slowly the server answers.

Per-read socket timeouts do not bound a server that sends one byte per second. The
transport opens a `Deadline` around each exchange; the adapter's connections hand their
socket to it just before waiting for the answer, and at the deadline the process's one
watchdog thread shuts that socket, which wakes any read still waiting. (A timer thread per
exchange cost more than a whole exchange with a local portal: ~1 ms of a ~1.8 ms round trip.)
Deadlines are real time: a test's ManualClock does not move while a socket waits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

logger = logging.getLogger(__name__)


class Deadline:
    """The moment an exchange must be over; past it, the socket of the exchange is shut."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds
        self._sock: socket.socket | None = None

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` at the deadline unless `cancel()` comes first (called once headers are due)."""
        self.cancel()
        self._sock = sock
        _watchdog().watch(self)

    def shorten_reads(self) -> None:
        """Let the next socket read wait no longer than the time left."""
        if self._sock is not None:
            with contextlib.suppress(OSError):  # already closed: the read will say so
                self._sock.settimeout(max(0.001, self.remaining()))

    def cancel(self) -> None:
        """Stop watching; once this returns, the watchdog does not shut the socket."""
        if self._sock is not None:
            _watchdog().forget(self)

    def cut(self) -> None:
        """Shut the watched socket (the watchdog's part, at the deadline). TLS inside TLS (an
        https:// proxy) hands urllib3's SSLTransport, whose socket is its `socket`."""
        sock = getattr(self._sock, "socket", self._sock)
        if sock is not None:
            with contextlib.suppress(OSError):  # under TLS too: wakes a blocked read
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that cuts each watched exchange at its deadline.

    It holds only the exchanges in flight (a handful: one per portal polled at once) and
    sleeps until the nearest deadline; a new exchange wakes it only when its deadline is
    nearer than the one it sleeps toward, so back-to-back exchanges wake no thread at all.
    Cuts happen under the lock, so a `forget` that returned is never followed by a cut.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watched: set[Deadline] = set()
        self._wake_at: float | None = None  # the deadline the thread sleeps toward; None: none
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self._changed:
            self._watched.add(deadline)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="deadline watchdog", daemon=True)
                self._thread.start()
            if self._wake_at is None or deadline.at < self._wake_at:
                self._changed.notify()

    def forget(self, deadline: Deadline) -> None:
        with self._changed:
            self._watched.discard(deadline)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for due in [d for d in self._watched if d.at <= now]:
                    self._watched.discard(due)
                    try:
                        due.cut()
                    except Exception:  # one exchange's socket must not end every later deadline
                        logger.exception("deadline watchdog: a socket could not be shut")
                self._wake_at = min((d.at for d in self._watched), default=None)
                wait = None if self._wake_at is None else min(self._wake_at - now, threading.TIMEOUT_MAX)
                self._changed.wait(wait)


_WATCHDOG: _Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()


def _watchdog() -> _Watchdog:
    """The process's watchdog, made at first use (and again in a forked child: see below)."""
    global _WATCHDOG
    with _WATCHDOG_LOCK:
        if _WATCHDOG is None:
            _WATCHDOG = _Watchdog()
        return _WATCHDOG


def _forget_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts a watchdog of its own."""
    global _WATCHDOG, _WATCHDOG_LOCK
    _WATCHDOG, _WATCHDOG_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


_ACTIVE: ContextVar[Deadline | None] = ContextVar("timeman_poller_deadline", default=None)


@contextlib.contextmanager
def deadline_for(seconds: float) -> Iterator[Deadline]:
    """Run one exchange under a Deadline of `seconds`; the watchdog is stopped on the way out."""
    deadline = Deadline(seconds)
    token = _ACTIVE.set(deadline)
    try:
        yield deadline
    finally:
        deadline.cancel()
        _ACTIVE.reset(token)


class _WatchedConnection(HTTPConnection):
    """Hands its socket to the running exchange's Deadline before waiting for the answer."""

    def getresponse(self) -> Any:
        deadline = _ACTIVE.get()
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        return super().getresponse()


class _WatchedTlsConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        deadline = _ACTIVE.get()
        if deadline is not None and self.sock is not None:
            deadline.watch(self.sock)
        return super().getresponse()


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections obey the Deadline of the exchange in progress."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}
