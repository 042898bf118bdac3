"""The runtime: what a command or the daemon works with, opened once from the config and closed once.

`open_runtime(config, ...)` is the one place that turns a config into live resources: the
engine, the spool (locked: one poller per spool file), the token store, the stop
(`Shutdown`, routed from SIGTERM and Ctrl-C when asked), the portals' clients and the
metrics. Commands open it, hand it down (`poll_once`, the daemon, backfill, check) and
never build these themselves, so `config` enters here and afterwards only goes down.

Closing (leaving the `with`) releases in reverse order: the clients' HTTP sessions, the
lock-wait setting, the spool's lock, and the engine's connections. Signal handlers are
not given back: see `poller.daemon.shutdown` (a signal after the work is a graceful stop,
never a KeyboardInterrupt mid-exit); `shutdown.work_ended` is set instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Literal

import requests
from sqlalchemy import Engine

from poller import clock as clocks
from poller import storage
from poller.bitrix import PortalClient
from poller.clients import make_clients
from poller.config import Config
from poller.daemon import shutdown as signals
from poller.daemon.metrics import Metrics
from poller.spool.queue import Spool
from poller.spool.tokenstore import TokenStore, tokens_path
from poller.storage import maintenance
from poller.storage.engine import shorten_lock_waits

# What opening asks of the database's schema:
# "at head"  - it must be at the newest revision already (a missing SQLite file is refused);
# "upgrade"  - it is brought to the newest revision first (`poll --migrate`);
# "as found" - nothing is asked: the daemon waits for a database that is down or behind.
Schema = Literal["at head", "upgrade", "as found"]


@dataclass(frozen=True)
class Runtime:
    """The live resources of one command or daemon, made from `config`.

    `spool` None: the command keeps nothing for later (backfill, check). `shutdown.event`
    is every client's stop: set, a failed request is not retried. `metrics` None: no
    metrics wanted, or no `[metrics] port`.
    """

    config: Config
    engine: Engine
    spool: Spool | None
    tokens: TokenStore
    shutdown: signals.Shutdown
    clients: tuple[PortalClient, ...]
    metrics: Metrics | None

    @property
    def stop(self) -> threading.Event:
        """Set by the first SIGTERM or Ctrl-C (or by whoever stops the work)."""
        return self.shutdown.event


def grace_seconds(config: Config) -> float:
    """How long a graceful stop may take: every request ends within its read timeout."""
    return config.http.read_timeout_seconds + signals.EXTRA_GRACE_SECONDS


@contextmanager
def open_runtime(
    config: Config,
    *,
    schema: Schema = "at head",
    spool: bool = True,
    handle_signals: bool = True,
    metrics: bool = False,
    short_lock_waits: bool = False,
    clock: clocks.Clock = clocks.SYSTEM_CLOCK,
    session: requests.Session | None = None,
) -> Iterator[Runtime]:
    """Open the runtime of `config`; close everything it opened when the block ends.

    1. The engine, its schema as `schema` asks; database errors in the block (and from
       opening) come out as one StorageError naming the database.
    2. With `spool`, the spool at `[spool] path` (SpoolLocked when another poller holds it).
    3. `short_lock_waits`: SQLite waits `[database] lock_wait_seconds` for a lock (PostgreSQL: a
       statement deadline), so a locked database sends rows to the spool instead of waiting.
    4. The stop; `handle_signals` routes SIGTERM and Ctrl-C to it (main thread only).
    5. The token store (the database, else a file beside the spool); the pairs kept in the
       file are written to the database when the schema is known to be ready.
    6. One client per portal from the newest stored pair. `clock` and `session` are for tests.
    """
    with ExitStack() as stack:
        engine = stack.enter_context(_database(config.database_url, schema))
        counters = Metrics(p.name for p in config.portals) if metrics and config.metrics.port else None
        spooled = (
            stack.enter_context(Spool(config.spool_path, config.spool_max_rows, metrics=counters))
            if spool
            else None
        )
        if short_lock_waits:
            stack.callback(shorten_lock_waits(engine, config.lock_wait_seconds))
        grace = grace_seconds(config)
        stop = stack.enter_context(signals.on_signals(grace)) if handle_signals else signals.Shutdown(grace)
        tokens = TokenStore(engine, tokens_path(config.spool_path))
        if schema != "as found":
            tokens.replay()
        clients = make_clients(
            config, engine, session, clock=clock, metrics=counters, stop=stop.event, tokens=tokens
        )
        if session is None:  # sessions it made are its to close; a session handed in is the caller's
            for client in clients:
                stack.callback(client.transport.session.close)
        yield Runtime(config, engine, spooled, tokens, stop, tuple(clients), counters)


@contextmanager
def _database(url: str, schema: Schema) -> Iterator[Engine]:
    """An engine on `url` with its schema as `schema` asks; disposed of at the end."""
    if schema != "as found":
        with maintenance.open_database(url, migrate=schema == "upgrade") as engine:
            yield engine
        return
    engine = storage.make_engine(url)
    with maintenance.database_errors(engine):
        maintenance.check_sqlite_directory(engine)
        yield engine
