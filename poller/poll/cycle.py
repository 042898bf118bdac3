"""One portal's poll cycle, and every portal once for the `poll` command.

`poll_portal` lists the portal's users, fetches their statuses ten batches at a time and
stores each part as it arrives, so memory does not grow with the portal and a crash loses
at most the part in flight. Its poll_runs row is opened first and closed last ('finished',
or 'interrupted' when a stop cut the cycle). A failing user, portal or database is recorded
and logged; with a spool, a database error never reaches the caller. Where each part goes
(`Route`) and the cycle's state while parts arrive are in portal_cycle.py; what a cycle did
is in outcomes.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from poller import clock as clocks
from poller import storage
from poller.bitrix import PortalClient, fetch_statuses
from poller.clients import make_clients as make_clients  # old callers; new code imports poller.clients
from poller.daemon.metrics import Metrics
from poller.poll.outcomes import PollReport as PollReport
from poller.poll.outcomes import PortalOutcome as PortalOutcome
from poller.poll.portal_cycle import Now, PortalCycle
from poller.poll.portal_cycle import Route as Route
from poller.poll.portal_cycle import route_for as route_for
from poller.spool.queue import Spool

if TYPE_CHECKING:
    from poller.poll.housekeeping import PortalChores


def poll_once(
    clients: Sequence[PortalClient],
    engine: Engine,
    clock: Now | None = None,
    mode: storage.StorageMode = "all",
    spool: Spool | None = None,
    *,
    stop: threading.Event | None = None,
    replica: str | None = None,
    metrics: Metrics | None = None,
    chores: PortalChores | None = None,
) -> PollReport:
    """Poll every portal once, each in its own thread; return when all are done or failed.

    1. Write what the spool kept from earlier cycles, if the database takes it now.
    2. Each portal: its `chores.before` (the directory when due), `poll_portal` (its own
       poll_runs row, parts stored as they arrive), its `chores.after` (the reconcile when due).
    3. Write what the spool kept during this cycle, if the database is back.
    `clock` None: each client's own clock. `stop` set cuts every portal's cycle after its
    batch in flight. An error a portal raised (with no spool: a database error) is raised
    once every portal is done.
    """
    now = clock or (clients[0].clock.now if clients else clocks.SYSTEM_CLOCK.now)
    started = now()
    if spool is not None:
        spool.flush(engine, mode)
    cycle = partial(
        poll_portal,
        engine=engine,
        clock=clock,
        mode=mode,
        spool=spool,
        stop=stop,
        replica=replica,
        metrics=metrics,
    )
    job = cycle if chores is None else partial(chores.around, cycle=cycle)
    with ThreadPoolExecutor(max_workers=max(1, len(clients)), thread_name_prefix="portal") as pool:
        futures = [pool.submit(job, client) for client in clients]
    outcomes = tuple(future.result() for future in futures)
    if spool is not None:
        spool.flush(engine, mode)
    return PollReport(started, now(), outcomes, stopped=stop is not None and stop.is_set())


def poll_portal(
    client: PortalClient,
    engine: Engine,
    clock: Now | None = None,
    mode: storage.StorageMode = "all",
    spool: Spool | None = None,
    *,
    stop: threading.Event | None = None,
    replica: str | None = None,
    metrics: Metrics | None = None,
    database_ready: bool = True,
) -> PortalOutcome:
    """Poll one portal: open its run, fetch and store its users part by part, close the run.

    `database_ready` False (the schema is not upgraded yet): no run row, every part goes to
    the spool. A cycle that begins while the spool holds rows (the database is away, or the
    daemon's database job is writing them back) has no run row and reads no directory, and
    once its run row could not be written the rest goes to the spool: a cycle waits for the
    database at most once. `clock` None: the client's clock.
    """
    now = clock or client.clock.now
    cycle = PortalCycle(client, engine, now, mode, spool, metrics, database_ready or spool is None)
    cycle.spool_waiting = bool(spool)
    began = time.monotonic()
    requests_before, limited_before = client.requests_sent, client.rate_limited
    started_at = now()
    cycle.open_run(started_at, replica)
    user_ids = cycle.list_users()
    not_polled: list[int] = []
    if user_ids:
        batch = fetch_statuses(client, user_ids, cycle.store, stop=stop)
        not_polled = batch.not_polled
    cycle.flush_portal_row()
    # Cut: users were left unasked, or the stop came while the last batches were in flight.
    interrupted = bool(not_polled) or (stop is not None and stop.is_set())
    outcome = PortalOutcome(
        portal=client.portal.name,
        users_ok=cycle.stored,
        users_failed=cycle.failed,
        portal_failed=cycle.portal_failed,
        requests=client.requests_sent - requests_before,
        error_codes=tuple(sorted(cycle.codes.items())),
        kept=cycle.kept,
        not_polled=len(not_polled),
        interrupted=interrupted,
        run_id=cycle.run_id,
        seconds=time.monotonic() - began,
        started_at=started_at,
        finished_at=now(),
    )
    cycle.close_run(outcome)
    if metrics is not None:
        metrics.cycle_finished(
            outcome.portal, outcome.seconds, succeeded=cycle.succeeded, outcome=outcome.run_outcome
        )
        for _ in range(client.rate_limited - limited_before):
            metrics.count_query_limit_exceeded(outcome.portal)
    return outcome
