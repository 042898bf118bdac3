"""A time limit on each PostgreSQL statement of the daemon: a database that stops answering is an
outage to poll through, not a wait.

TCP keepalives and the TCP user timeout (storage/engine.py) notice a host or a network that
vanishes. A server that still acknowledges every packet but answers nothing (a frozen process, a
stalled disk) they never notice: a cycle's write would wait for hours, and its portal stay
unpolled. Past the limit the statement's socket is shut down, so the statement fails as a lost
connection does; the pool opens a new connection next time, and the cycle keeps its rows in the
spool meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine

logger = logging.getLogger(__name__)

STATEMENT_SECONDS = 15.0  # a cycle's statements take milliseconds; a reconcile's, a few seconds
_ON_CURSOR = ("do_execute", "do_executemany", "do_execute_no_params")  # the rest take the connection
_WRAPPED = (*_ON_CURSOR, "do_commit", "do_rollback", "do_ping")
_UNLIMITED: ContextVar[bool] = ContextVar("statement_time_unlimited", default=False)


@contextlib.contextmanager
def no_time_limit() -> Iterator[None]:
    """Statements of this block (in this thread) may take as long as they need: a migration, or
    its wait for another replica's migration."""
    token = _UNLIMITED.set(True)
    try:
        yield
    finally:
        _UNLIMITED.reset(token)


class _Watch:
    """The statements in flight on an engine's connections, and the thread that ends the late
    ones (it runs while any is in flight, so an engine left alone leaves no thread behind)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int]] = {}  # id(DBAPI connection) -> (deadline, socket)
        self._watching = False

    @contextlib.contextmanager
    def arm(self, dbapi_connection: Any) -> Any:
        key = id(dbapi_connection)
        try:
            fd = int(dbapi_connection.fileno())
        except Exception:  # closed already: the call fails by itself
            fd = -1
        with self._lock:
            self._armed[key] = (time.monotonic() + self.seconds, fd)
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name="statement-deadline", daemon=True).start()
        try:
            yield
        finally:
            with self._lock:  # once disarmed, the socket is never shut (its number may be reused)
                self._armed.pop(key, None)

    def _watch(self) -> None:
        while True:
            time.sleep(min(0.5, self.seconds / 4))
            now = time.monotonic()
            with self._lock:
                late = [(key, fd) for key, (deadline, fd) in self._armed.items() if deadline <= now]
                for key, fd in late:
                    del self._armed[key]
                    if fd >= 0:
                        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
                            sock.shutdown(socket.SHUT_RDWR)
                idle = not self._armed
                if idle:
                    self._watching = False
            for _ in late:
                logger.warning(
                    "database: a statement got no answer for %g s: its connection is closed, the cycle "
                    "keeps its rows in the spool",
                    self.seconds,
                )
            if idle:
                return


def limit_statement_time(engine: Engine, seconds: float = STATEMENT_SECONDS) -> Callable[[], None]:
    """Fail `engine`'s statements (and commits, rollbacks, pings) unanswered for `seconds` as a
    lost connection; return the undo. PostgreSQL only (SQLite has its busy timeout)."""
    if engine.dialect.name != "postgresql":
        return lambda: None
    watch = _Watch(seconds)
    dialect: Any = engine.dialect
    dialect.timeman_statement_watch = watch  # for what bypasses the dialect: `guarded`

    def wrap(name: str) -> None:
        original = getattr(dialect, name)
        on_cursor = name in _ON_CURSOR

        def limited(target: Any, *args: Any, **kwargs: Any) -> Any:
            if _UNLIMITED.get():
                return original(target, *args, **kwargs)
            with watch.arm(target.connection if on_cursor else target):
                return original(target, *args, **kwargs)

        setattr(dialect, name, limited)

    for name in _WRAPPED:
        wrap(name)

    def undo() -> None:
        for name in (*_WRAPPED, "timeman_statement_watch"):
            with contextlib.suppress(AttributeError):
                delattr(dialect, name)

    return undo


@contextlib.contextmanager
def guarded(connection: Any) -> Iterator[None]:
    """Hold the driver work of this block (on a SQLAlchemy `connection`) to the engine's statement
    time limit, for calls that bypass the dialect, such as psycopg's COPY; nothing without a limit."""
    watch = getattr(connection.dialect, "timeman_statement_watch", None)
    if watch is None or _UNLIMITED.get():
        yield
        return
    with watch.arm(connection.connection.dbapi_connection):
        yield
