"""Requests a norms refresh costs: norms and absences of N users against the emulator's standard bucket.

One refresh (poller.poll.norms_refresh, as `poll` runs it after its cycle) of N users (default
5,000) with two configured schedules, on a fresh emulator that enforces a standard plan's
bucket (2 requests/s after a burst of 50), into a fresh scratch database (SQLite, and with
--postgres-server a PostgreSQL database made and dropped there). The emulator (in this
process) and the poller share a ManualClock unless `--clock real`: a bucket wait moves the
clock, so the bucket is measured exactly and the run takes seconds.

Printed per backend: the requests by method (expected: ceil(N/50) `batch` requests of
timeman.settings, ceil(N/50) calendar.accessibility.get, one calendar.settings.get, one
timeman.schedule.get per schedule), their total against that expectation, the portal seconds
(the clock's time the refresh took: the bucket's pace), the bucket's floor ((requests -
burst) / rate), the wall seconds, and QUERY_LIMIT_EXCEEDED answers (target 0).

`--beside-cycles` measures instead what the refresh does to the cycles beside it, as `run`
runs them: a cycle of the N users (ceil(N/50) timeman.status batches) alone, then the refresh
on its thread (taking turns with the cycles: poller.poll.norms_turns.Turns) while a cycle
starts every `--interval` seconds of the portal's clock; printed: the lone cycle's portal
seconds, the slowest and mean cycle beside the refresh, and the refresh's own seconds.

    $ python bench/norms_requests.py
    $ python bench/norms_requests.py --users 5000 \
          --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
    $ python bench/norms_requests.py --beside-cycles
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
import scratch

from poller import storage
from poller.bitrix import PortalClient
from poller.clock import SYSTEM_CLOCK, Clock, ManualClock
from poller.config import parse_config
from poller.emulator import Emulator, EmulatorSettings
from poller.poll.cycle import poll_portal
from poller.poll.norms_refresh import NormsRefresher
from poller.poll.norms_turns import stopping_pace

NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
RATE, BURST = 2.0, 50
SCHEDULES = [1, 4]


def refresh_once(users: int, database_url: str, real_clock: bool) -> dict[str, float]:
    """One refresh of `users` users on a fresh emulator and database; its figures."""
    clock: Clock = SYSTEM_CLOCK if real_clock else ManualClock(NOW)
    emulator = Emulator(EmulatorSettings(users=users, rate=RATE, burst=BURST, start=NOW), clock=clock).start()
    engine = storage.make_engine(database_url)
    try:
        storage.upgrade_database(engine)
        portal = {
            "name": "bench",
            "webhook_url": emulator.webhook_url,
            "users": list(range(1, users + 1)),
            "schedule_ids": SCHEDULES,
        }
        config = parse_config({"portals": [portal], "database": {"url": database_url}}, {})
        client = PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)
        started, wall = clock.monotonic(), time.perf_counter()
        result = NormsRefresher(config, engine).refresh(client, stopping_pace(client))
        wall = time.perf_counter() - wall
        today = clock.now().date()
        calls = emulator.stats.calls
        return {
            "settings batches": calls["batch"],
            "absences": calls["calendar.accessibility.get"],
            "calendar": calls["calendar.settings.get"],
            "schedules": calls["timeman.schedule.get"],
            "requests": emulator.stats.requests,
            "sent": result.requests,
            "query limit exceeded": emulator.stats.query_limit_exceeded,
            "portal seconds": clock.monotonic() - started,
            "wall seconds": wall,
            "norms stored": len(storage.get_norms(engine, "bench", today, today)),
            "absence days": len(
                storage.get_absences(engine, "bench", today - timedelta(days=14), today + timedelta(days=28))
            ),
            "ok": float(result.ok),
        }
    finally:
        engine.dispose()
        emulator.stop()


def beside_cycles(users: int, database_url: str, interval: float) -> dict[str, float]:
    """A lone cycle, then cycles every `interval` portal seconds beside a refresh on its thread."""
    clock = ManualClock(NOW)
    settings = EmulatorSettings(users=users, rate=RATE, burst=BURST, start=NOW, operating_limit=0)
    emulator = Emulator(settings, clock=clock).start()  # the bucket is measured, not the time budget
    engine = storage.make_engine(database_url)
    try:
        storage.upgrade_database(engine)
        portal = {"name": "bench", "webhook_url": emulator.webhook_url, "users": list(range(1, users + 1))}
        config = parse_config({"portals": [portal], "database": {"url": database_url}}, {})
        client = PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)
        refresher = NormsRefresher(config, engine)

        def cycle() -> float:
            started = clock.monotonic()
            with refresher.holding_off("bench"):
                outcome = poll_portal(client, engine, clock=clock.now)
            assert outcome.users_ok == users, outcome.log_line()
            return clock.monotonic() - started

        alone = cycle()
        clock.advance(interval)
        started = clock.monotonic()
        thread = refresher.start_if_due(client)
        assert thread is not None
        beside = []
        while thread.is_alive():
            next_start = clock.monotonic() + interval
            beside.append(cycle())
            while thread.is_alive() and clock.monotonic() < next_start:
                time.sleep(0.01)  # the refresh's bucket waits move the clock
        refreshed = clock.monotonic() - started
        return {
            "alone": alone,
            "slowest": max(beside),
            "mean": sum(beside) / len(beside),
            "cycles": len(beside),
            "refresh": refreshed,
            "query limit exceeded": emulator.stats.query_limit_exceeded,
        }
    finally:
        engine.dispose()
        emulator.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = scratch.parser(__doc__)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--clock", choices=("manual", "real"), default="manual")
    parser.add_argument("--beside-cycles", action="store_true")
    parser.add_argument("--interval", type=float, default=60.0, help="with --beside-cycles: seconds")
    scratch.add_server_argument(parser)
    args = scratch.parse(parser, argv)
    if args.beside_cycles:
        print(
            f"{'database':<11} {'lone cycle s':>12} {'beside: slowest s':>17} {'mean s':>7} {'cycles':>6} "
            f"{'refresh s':>9} {'QLE':>4}"
        )
        for backend, server in scratch.servers(args.postgres_server):
            with scratch.scratch_database(server, "norms") as url:
                f = beside_cycles(args.users, url, args.interval)
            print(
                f"{backend:<11} {f['alone']:>12.1f} {f['slowest']:>17.1f} {f['mean']:>7.1f} {f['cycles']:>6.0f} "
                f"{f['refresh']:>9.1f} {f['query limit exceeded']:>4.0f}",
                flush=True,
            )
        return
    per_method = math.ceil(args.users / 50)
    expected = 2 * per_method + 1 + len(SCHEDULES)
    print(
        f"{args.users:,} users, standard bucket ({RATE:g}/s after {BURST}); expected requests: "
        f"{per_method} settings + {per_method} absences + 1 calendar + {len(SCHEDULES)} schedules = {expected}"
    )
    print(
        f"{'database':<11} {'settings':>8} {'absences':>8} {'calendar':>8} {'schedules':>9} {'total':>6} "
        f"{'QLE':>4} {'portal s':>9} {'floor s':>8} {'wall s':>7} {'norms':>6} {'absence days':>12} {'ok':>3}"
    )
    for backend, server in scratch.servers(args.postgres_server):
        with scratch.scratch_database(server, "norms") as url:
            f = refresh_once(args.users, url, args.clock == "real")
        floor = max(f["requests"] - BURST, 0) / RATE
        print(
            f"{backend:<11} {f['settings batches']:>8.0f} {f['absences']:>8.0f} {f['calendar']:>8.0f} "
            f"{f['schedules']:>9.0f} {f['requests']:>6.0f} {f['query limit exceeded']:>4.0f} "
            f"{f['portal seconds']:>9.1f} {floor:>8.1f} {f['wall seconds']:>7.1f} {f['norms stored']:>6.0f} "
            f"{f['absence days']:>12,.0f} {'yes' if f['ok'] else 'no':>3}",
            flush=True,
        )
    print(f"targets: total = {expected}, QLE 0 (the bucket never exceeded)")


if __name__ == "__main__":
    scratch.run(main)
