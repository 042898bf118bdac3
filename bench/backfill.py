"""Cost of a backfill of one month: requests with the REST 3.0 batch, bucket use with single calls.

The emulator (in this process) and the poller share a ManualClock: waiting for the leaky
bucket moves the clock instead of sleeping, so a run that takes 8 minutes of portal time at
2 requests/s takes seconds, and the bucket is measured exactly. Three runs, each on a fresh
emulator with a standard bucket (2 requests/s after a burst of 50) and a fresh scratch
database (SQLite, and with --postgres-server a PostgreSQL database made and dropped there):

- batch:  `timeman-poller backfill` as the CLI runs it; requests, target <= 25 for 1,000 users.
- single: the portal refuses the REST 3.0 batch, so one request per user and page; the share
          of the bucket's ceiling used (requests / (burst + rate x portal seconds)), target >= 90%.
- reconcile share: single calls paced as the daemon paces them (80% of the rate).
QUERY_LIMIT_EXCEEDED answers are counted for each (target 0).

`--days N` backfills the N days up to the month's end instead (`--days 365`: a year); `--modes
batch` runs only the batch run; `--autovacuum off` keeps PostgreSQL's autovacuum off the scratch
tables (a server without it: only the poller's own ANALYZE updates the planner's statistics);
`--clock real` runs the emulator and the poller on the system clock, so the bucket's waits are
real seconds too (the figures are then measured, not simulated). The writes are timed: `floor
s` is the bucket's floor ((requests - burst) / rate), `wall s` the real seconds the run took
(with the manual clock: the writes, the fetches and the emulator's answers, without the
bucket's waits), and the first and last tenth of the writes (save_records, ms per 1,000
records) show whether a write slows as the tables grow. Goal: wall within 1.5 x the floor (real clock), the
last writes as fast as the first.

    $ python bench/backfill.py                      # 1,000 users, October 2026, SQLite
    $ python bench/backfill.py --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
    $ python bench/backfill.py --days 365 --modes batch --autovacuum off --clock real \
          --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
import scratch

from poller import storage
from poller.bitrix import PortalClient
from poller.bitrix.records import PAGE_SIZE, fetch_records, record_window
from poller.clock import SYSTEM_CLOCK, Clock, ManualClock
from poller.config import parse_config
from poller.emulator import Emulator, EmulatorSettings
from poller.models import Base
from poller.poll.backfill import DAEMON_SHARE, PortalBackfill, backfill

NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
RATE, BURST = 2.0, 50


class WriteTimes(logging.Handler):
    """The records and seconds of each save_records, read from its DEBUG line (the records
    stored are its second argument, the seconds its last)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.writes: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and isinstance(args[-1], float):
            count = args[1]
            if isinstance(count, int) and count:
                self.writes.append((count, args[-1]))

    def per_thousand(self, writes: Sequence[tuple[int, float]]) -> float:
        """Seconds per 1,000 records over `writes`."""
        records = sum(count for count, _ in writes)
        return sum(seconds for _, seconds in writes) / records * 1000 if records else 0.0


def run_mode(
    mode: str,
    users: int,
    month: date,
    until: date,
    database_url: str,
    autovacuum: bool = True,
    real_clock: bool = False,
) -> dict[str, float]:
    """One backfill of `month` (its first day) to `until` for `users` users on a fresh emulator;
    its figures. `autovacuum` False: the scratch tables are left out of autovacuum (and its
    ANALYZE), as on a server that runs without it. `real_clock`: the bucket waits real seconds."""
    clock: Clock = SYSTEM_CLOCK if real_clock else ManualClock(NOW)
    settings = EmulatorSettings(users=users, rate=RATE, burst=BURST, rest_v3_batch=mode == "batch", start=NOW)
    emulator = Emulator(settings, clock=clock).start()
    engine = storage.make_engine(database_url)
    try:
        storage.upgrade_database(engine)
        if not autovacuum and engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                for table in Base.metadata.sorted_tables:
                    connection.execute(text(f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false)'))
        config = parse_config(
            {
                "portals": [
                    {"name": "bench", "webhook_url": emulator.webhook_url, "users": list(range(1, users + 1))}
                ]
            },
            {},
        )
        client = PortalClient(config.portals[0], requests.Session(), config.http, clock=clock)
        writes = WriteTimes()
        records_logger = logging.getLogger("poller.storage.records")
        records_logger.addHandler(writes)
        records_logger.setLevel(logging.DEBUG)
        records_logger.propagate = False  # the DEBUG lines are read, not shown
        started_wall, started_portal = time.perf_counter(), clock.monotonic()
        if mode == "reconcile share":
            fetched = fetch_records(client, list(range(1, users + 1)), month, until, rate_share=DAEMON_SHARE)
            state = PortalBackfill("bench", month, until, users=users, done=len(fetched.done))
            state.records = sum(len(items) for items in fetched.items.values())
        else:
            report = backfill(config, engine, [client], since=month, until=until)
            (state,) = report.portals
        portal_seconds = clock.monotonic() - started_portal
        wall = time.perf_counter() - started_wall
        extra_pages = _extra_pages(emulator, users, month, until)
    finally:
        records_logger.removeHandler(writes)
        records_logger.setLevel(logging.NOTSET)
        records_logger.propagate = True
        engine.dispose()
        emulator.stop()
    sent = client.requests_sent
    return {
        "users done": state.done,
        "records": state.records,
        "requests": sent,
        "batch floor": math.ceil((users + extra_pages) / 50),
        "portal seconds": portal_seconds,
        "ceiling share": sent / (BURST + RATE * portal_seconds),
        "query limit exceeded": emulator.stats.query_limit_exceeded,
        "wall seconds": wall,
        "writes": len(writes.writes),
        "write seconds": sum(seconds for _, seconds in writes.writes),
        "first write": writes.per_thousand(writes.writes[: max(1, len(writes.writes) // 10)]),
        "last write": writes.per_thousand(writes.writes[-max(1, len(writes.writes) // 10) :]),
    }


def _extra_pages(emulator: Emulator, users: int, first: date, last: date) -> int:
    """Pages beyond the first one that the users need (users with 50 records or more)."""
    start, end = record_window(first, last)
    extra = 0
    for user_id in range(1, users + 1):
        count = sum(1 for r in emulator.world.records_started(user_id, start, end) if r.start_time < end)
        extra += count // PAGE_SIZE
    return extra


def _month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = scratch.parser(__doc__)
    parser.add_argument("--users", type=int, default=1000, help="users of the portal (default 1000)")
    parser.add_argument("--month", default="2026-10", help="month to backfill, YYYY-MM (default 2026-10)")
    parser.add_argument(
        "--days",
        type=int,
        default=None,
        help="backfill the N days up to the month's end instead (365: a year)",
    )
    parser.add_argument(
        "--modes",
        default="batch,single,reconcile share",
        help="runs to make, comma-separated (default: batch,single,reconcile share)",
    )
    parser.add_argument(
        "--clock",
        choices=["manual", "real"],
        default="manual",
        help="real: the bucket's waits take real seconds (default manual: simulated, exact and fast)",
    )
    parser.add_argument(
        "--autovacuum",
        choices=["on", "off"],
        default="on",
        help="off: PostgreSQL's autovacuum (and its ANALYZE) left out for the scratch tables (default on)",
    )
    scratch.add_server_argument(parser)
    return scratch.parse(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("poller.bitrix.client").setLevel(logging.ERROR)  # plain http:// to loopback
    until = _month_end(date.fromisoformat(f"{args.month}-01"))
    since = until - timedelta(days=args.days - 1) if args.days else until.replace(day=1)
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = set(modes) - {"batch", "single", "reconcile share"}
    if unknown:
        raise scratch.ScratchError(
            f"--modes: unknown {', '.join(sorted(unknown))}; use batch, single, reconcile share"
        )
    clock = (
        "real clock" if args.clock == "real" else "simulated: a manual clock moves through the bucket's waits"
    )
    print(
        f"backfill of {since} .. {until} for {args.users:,} users; bucket {RATE:g}/s after a burst of {BURST} ({clock})"
    )
    header = (
        f"{'backend':<11} {'mode':<16} {'requests':>8} {'floor':>6} {'records':>8} {'ceiling':>8} {'QLE':>4} "
        f"{'portal s':>9} {'floor s':>8} {'wall s':>7} {'wall/floor':>10} {'write s':>8} {'first ms/k':>10} {'last ms/k':>9}"
    )
    print(header)
    for backend, server in scratch.servers(args.postgres_server):
        for mode in modes:
            with scratch.scratch_database(server, "backfill") as url:
                figures = run_mode(
                    mode, args.users, since, until, url, args.autovacuum == "on", args.clock == "real"
                )
            floor = f"{figures['batch floor']:.0f}" if mode == "batch" else "-"
            ceiling = "-" if mode == "batch" else f"{figures['ceiling share']:.1%}"
            floor_seconds = max(figures["requests"] - BURST, 1) / RATE
            print(
                f"{backend:<11} {mode:<16} {figures['requests']:>8.0f} {floor:>6} {figures['records']:>8,.0f} "
                f"{ceiling:>8} {figures['query limit exceeded']:>4.0f} {figures['portal seconds']:>9.1f} "
                f"{floor_seconds:>8.1f} {figures['wall seconds']:>7.1f} "
                f"{figures['wall seconds'] / floor_seconds:>10.2f} {figures['write seconds']:>8.1f} "
                f"{figures['first write'] * 1000:>10.0f} {figures['last write'] * 1000:>9.0f}",
                flush=True,
            )
    print("targets: batch requests <= 25 (1,000 users, a month), single ceiling >= 90% (simulated), QLE 0;")
    print(
        "         reconcile leaves ~20%; wall/floor <= 1.5 (floor s: the bucket's, (requests - burst) / rate);"
    )
    print(
        "         last ms/k ~ first (write ms per 1,000 records over the first and last tenth of the writes)"
    )


if __name__ == "__main__":
    scratch.run(main)
