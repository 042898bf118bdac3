"""Daemons for in-process tests: a Runtime of the test's own engine and spool, without signals.

`open_runtime` makes its engine from the config's URL and routes signals; a test hands the
daemon the engine its fixtures built and a spool in tmp_path instead, and stops it itself.
"""

from __future__ import annotations

from sqlalchemy import Engine

from poller import clock as clocks
from poller.clients import make_clients
from poller.config import Config
from poller.daemon.metrics import Metrics
from poller.daemon.scheduler import Daemon
from poller.daemon.shutdown import Shutdown
from poller.runtime import Runtime, grace_seconds
from poller.spool.queue import Spool
from poller.spool.tokenstore import TokenStore, tokens_path


def runtime_for(
    config: Config,
    engine: Engine,
    spool: Spool,
    *,
    clock: clocks.Clock = clocks.SYSTEM_CLOCK,
    metrics: Metrics | None = None,
    tokens: TokenStore | None = None,
) -> Runtime:
    """A Runtime as `open_runtime` makes one: clients stop on its shutdown's event, refreshed
    OAuth pairs go to `tokens` (default: the database, else a file beside the spool)."""
    stop = Shutdown(grace_seconds(config))
    tokens = tokens if tokens is not None else TokenStore(engine, tokens_path(spool.path))
    clients = make_clients(config, engine, clock=clock, metrics=metrics, stop=stop.event, tokens=tokens)
    return Runtime(config, engine, spool, tokens, stop, tuple(clients), metrics)


def make_daemon(
    config: Config,
    engine: Engine,
    spool: Spool,
    *,
    clock: clocks.Clock = clocks.SYSTEM_CLOCK,
    metrics: Metrics | None = None,
    tokens: TokenStore | None = None,
    replica: str | None = None,
) -> Daemon:
    """A Daemon on `runtime_for(...)`, not started; its clients are `daemon.clients`."""
    runtime = runtime_for(config, engine, spool, clock=clock, metrics=metrics, tokens=tokens)
    return Daemon(runtime, replica=replica)
