"""CPU time of one small poll cycle (10 users), the cost that fills the cores when many portals run.

The emulator shares a manual clock with the poller and runs in this process, so the figure is
the poller's work plus the emulator's answer; it writes to a temporary SQLite file only.

    $ python bench/cycle_cpu.py [--users 10] [--cycles 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from poller import storage
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.config import parse_config
from poller.emulator import Emulator, EmulatorSettings
from poller.poll.cycle import poll_portal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10, help="users of the portal (default 10)")
    parser.add_argument("--cycles", type=int, default=100, help="cycles measured (default 100)")
    args = parser.parse_args()
    clock = ManualClock(datetime(2026, 11, 18, 6, 0, tzinfo=UTC))
    emulator = Emulator(EmulatorSettings(users=args.users, rate=0, operating_limit=0), clock=clock).start()
    with tempfile.TemporaryDirectory() as directory:
        engine = storage.make_engine(f"sqlite:///{Path(directory) / 'cycle.sqlite3'}")
        storage.upgrade_database(engine)
        users = list(range(1, args.users + 1))
        config = parse_config(
            {"portals": [{"name": "p", "webhook_url": emulator.webhook_url, "users": users}]}, {}
        )
        (client,) = make_clients(config, engine, clock=clock)
        for _ in range(5):  # warm up: compiled statements, the first workdays rows
            poll_portal(client, engine, clock.now)
            clock.advance(600)
        started = time.process_time()
        for _ in range(args.cycles):
            poll_portal(client, engine, clock.now)
            clock.advance(600)
        spent = time.process_time() - started
        engine.dispose()
    emulator.stop()
    print(f"{args.cycles} cycles of {args.users} users: {spent / args.cycles * 1000:.1f} ms CPU per cycle")


if __name__ == "__main__":
    main()
