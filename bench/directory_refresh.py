"""How long storing a directory refresh takes: save_users of N users (default 50,000), four times.

The emulator's world lists its users as `user.get` does; each refresh stores them in one
transaction: the first inserts them, the next two find every user stored (what a daily refresh
does), the last lists only half of them, so the other half is marked inactive (a mass
departure). On a scratch SQLite file and, with --postgres-server, on a PostgreSQL database the
bench creates and drops. Printed: the seconds of each refresh.

    $ python bench/directory_refresh.py
    $ python bench/directory_refresh.py --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import scratch

from poller import storage
from poller.clock import ManualClock
from poller.emulator.simclock import SimClock
from poller.emulator.world import World
from poller.storage.directory import save_departments

START = datetime(2026, 11, 16, 8, 30, tzinfo=UTC)
PORTAL = "bench"
REFRESHES = ("first", "again", "again", "half gone")


def refresh_seconds(url: str, users: int) -> list[float]:
    """Seconds of each of REFRESHES stores of `users` users on the database at `url`."""
    world = World(users, SimClock(START, 1.0, ManualClock(START)))
    listed = [world.user(user_id) for user_id in range(1, users + 1)]
    engine = storage.make_engine(url)
    try:
        storage.upgrade_database(engine)
        save_departments(engine, PORTAL, world.departments(), START)
        seconds = []
        for refresh in REFRESHES:
            started = time.perf_counter()
            storage.save_users(engine, PORTAL, listed[::2] if refresh == "half gone" else listed, START)
            seconds.append(time.perf_counter() - started)
        return seconds
    finally:
        engine.dispose()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = scratch.parser(__doc__)
    parser.add_argument("--users", type=int, default=50_000, help="users of the portal (default 50000)")
    scratch.add_server_argument(parser)
    return scratch.parse(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"storing a refresh of {args.users:,} users: " + ", ".join(REFRESHES))
    for name, server in scratch.servers(args.postgres_server):
        with scratch.scratch_database(server, "directory_refresh") as url:
            seconds = refresh_seconds(url, args.users)
        print(f"{name:<12}" + "".join(f"{value:>8.2f} s" for value in seconds), flush=True)
    if not args.postgres_server:
        print("postgresql: skipped (give --postgres-server)")


if __name__ == "__main__":
    scratch.run(main)
