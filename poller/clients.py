"""The portals' clients, made once per command or daemon: limits, tokens and stop shared per portal.

A client lives as long as its command or daemon, so its bucket level, blocked methods and a
refreshed OAuth pair carry over from cycle to cycle; a refreshed pair is kept (database, else
the file beside the spool) before the client uses it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import requests
from sqlalchemy import Engine

from poller import clock as clocks
from poller.bitrix import PortalClient
from poller.config import Config, PortalConfig
from poller.daemon.metrics import Metrics
from poller.spool.tokenstore import TokenStore, TokenStoreError


def make_clients(
    config: Config,
    engine: Engine,
    session: requests.Session | None = None,
    *,
    clock: clocks.Clock = clocks.SYSTEM_CLOCK,
    metrics: Metrics | None = None,
    stop: threading.Event | None = None,
    tokens: TokenStore | None = None,
) -> list[PortalClient]:
    """One client per portal, starting from the newest stored OAuth pair when there is one.

    `clock` is the clients' waits and view of time (tests hand in a ManualClock shared
    with the emulator, so backoffs and operating-limit resets pass without sleeping);
    `stop` set means no more retries (shutting down); `tokens` keeps refreshed pairs (the
    database, else a file beside the spool); without it, the database only.
    """
    tokens = tokens if tokens is not None else TokenStore(engine, None)
    clients = []
    for portal in config.portals:
        client = PortalClient(
            portal,
            session or requests.Session(),  # one connection pool per portal thread
            config.http,
            on_tokens_refreshed=_token_saver(tokens, portal, clock, metrics),
            clock=clock,
            observe_latency=metrics.request_observer(portal.name) if metrics else None,
            observe_wait=metrics.rate_limit_observer(portal.name) if metrics else None,
            stop=stop,
        )
        if not portal.uses_webhook:
            stored = tokens.load(portal.name)
            if stored is not None:
                client.use_tokens(*stored)
        clients.append(client)
    return clients


def make_clients_from_config(config: Config) -> list[PortalClient]:
    """One client per portal with the config's own tokens, never refreshed and never stored.

    For `check` when the database cannot keep a pair: a refresh would spend the refresh
    token that the daemon will need.
    """
    return [
        PortalClient(replace(portal, refresh_token=None), requests.Session(), config.http)
        for portal in config.portals
    ]


def _token_saver(
    tokens: TokenStore, portal: PortalConfig, clock: clocks.Clock, metrics: Metrics | None
) -> Callable[[str, str], None]:
    """Keep a refreshed pair before the client uses it; a pair nowhere kept is counted and raised."""

    def save(access_token: str, refresh_token: str) -> None:
        try:
            tokens.save(portal.name, access_token, refresh_token, clock.now())
        except TokenStoreError:
            if metrics is not None:
                metrics.token_refreshed(portal.name, ok=False)
            raise
        if metrics is not None:
            metrics.token_refreshed(portal.name, ok=True)

    return save
