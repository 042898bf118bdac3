"""How near the poller's write of a cycle comes to the database's own speed.

One portal of N users (default 10,000) as the emulator's world answers `timeman.status` on a
weekday morning, cycles 10 minutes apart. Each cycle is stored as the poller stores it: in
parts of 500 users (10 batches, what fetch_statuses hands over), each part one
`storage.save_portal_cycle` (snapshots, poll_errors, the workdays kept on write, the revision
checks). The same snapshot rows, already turned into driver values, go into a twin table of
`snapshots` (same columns, same indexes) by a plain DBAPI `executemany`, part by part, one
transaction per part as the poller's. Both are timed on SQLite and, with --postgres-server, on
a PostgreSQL database the bench creates and drops. Each cycle's two writes run back to back
(in turn one first, then the other), so a cycle's raw / poller is taken under the same load of
a shared machine; printed: the medians over the cycles after a first (unmeasured) one, the
median of the cycles' raw / poller (1.0 would be the database's own speed) and their range.

    $ python bench/write_ratio.py
    $ python bench/write_ratio.py --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import scratch
from sqlalchemy import Column, Engine, Index, MetaData, Table, UniqueConstraint

from poller import storage
from poller.bitrix.methods import BATCH_LIMIT, BATCHES_PER_CHUNK
from poller.clock import ManualClock
from poller.emulator.simclock import SimClock
from poller.emulator.world import World
from poller.models import snapshots_table
from poller.status import parse_status
from poller.storage.directory import save_departments

START = datetime(2026, 11, 16, 8, 30, tzinfo=UTC)  # a Monday: days opening, open, paused
PORTAL = "bench"
GOAL = 0.35


def twin_table() -> Table:
    """A table shaped as `snapshots`, with its unique key and indexes under other names."""
    metadata = MetaData()
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in snapshots_table.c
    ]
    twin = Table("raw_snapshots", metadata, *columns)
    twin.append_constraint(UniqueConstraint("portal", "user_id", "polled_at", name="uq_raw_snapshots_key"))
    Index("ix_raw_snapshots_work_date", twin.c.portal, twin.c.work_date)
    Index("ix_raw_snapshots_time_start", twin.c.portal, twin.c.user_id, twin.c.time_start)
    return twin


def cycle_rows(world: World, users: int, at: datetime) -> list[storage.SnapshotRow]:
    """The snapshots of one cycle at `at` (parsing is not timed: the cycle parses before it writes)."""
    return [
        storage.SnapshotRow(PORTAL, user_id, at, parse_status(world.status(user_id, at)))
        for user_id in range(1, users + 1)
    ]


def error_rows(users: int, at: datetime) -> list[storage.ErrorRow]:
    """One user in a hundred failed (a user the portal no longer knows)."""
    return [
        storage.ErrorRow(PORTAL, user_id, at, "ERROR_USER_NOT_FOUND", 400, "user not found")
        for user_id in range(100, users + 1, 100)
    ]


def driver_rows(engine: Engine, twin: Table, rows: Sequence[storage.SnapshotRow]) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them (bind processing done here, outside the timing)."""
    dialect = engine.dialect
    processors = [column.type._cached_bind_processor(dialect) for column in twin.c if column.name != "id"]
    names = [column.name for column in twin.c if column.name != "id"]
    out = []
    for row in rows:
        values = storage.snapshot_values(row)
        out.append(
            tuple(
                processor(values[name]) if processor is not None else values[name]
                for name, processor in zip(names, processors, strict=True)
            )
        )
    return out


def raw_write(engine: Engine, twin: Table, parts: Sequence[list[tuple[Any, ...]]]) -> float:
    """Seconds to insert `parts` by a plain executemany, one transaction per part."""
    names = [column.name for column in twin.c if column.name != "id"]
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO {twin.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
    connection = engine.raw_connection()
    try:
        started = time.perf_counter()
        for part in parts:
            cursor = connection.cursor()
            cursor.executemany(sql, part)
            cursor.close()
            connection.commit()
        return time.perf_counter() - started
    finally:
        connection.close()


def poller_write(
    engine: Engine, run_id: int, parts: Sequence[list[storage.SnapshotRow]], errors: list[storage.ErrorRow]
) -> float:
    """Seconds the poller takes to store the cycle's parts (each with its users' error rows, as a
    cycle hands them over: sorting the errors to their parts is not timed)."""
    handed = []
    for part in parts:
        users = {row.user_id for row in part}
        low, high = min(users), max(users)
        handed.append(
            (part, [error for error in errors if error.user_id is not None and low <= error.user_id <= high])
        )
    started = time.perf_counter()
    for part, mine in handed:
        storage.save_portal_cycle(engine, run_id, part, mine)
    return time.perf_counter() - started


def run_backend(url: str, users: int, cycles: int, part_size: int) -> tuple[list[float], list[float]]:
    """Raw and poller seconds of each of `cycles` cycles of `users` users on the database at
    `url`, after one unmeasured cycle."""
    engine = storage.make_engine(url)
    try:
        storage.upgrade_database(engine)
        twin = twin_table()
        twin.metadata.create_all(engine)
        clock = ManualClock(START)
        world = World(users, SimClock(START, 1.0, clock))
        storage.save_users(engine, PORTAL, [world.user(u) for u in range(1, users + 1)], START)
        save_departments(engine, PORTAL, world.departments(), START)
        raws: list[float] = []
        ours: list[float] = []
        for number in range(cycles + 1):
            at = START + timedelta(minutes=10 * number)
            rows = cycle_rows(world, users, at)
            parts = [rows[start : start + part_size] for start in range(0, len(rows), part_size)]
            prepared = [driver_rows(engine, twin, part) for part in parts]
            run_id = storage.save_run_started(engine, at, portal=PORTAL)
            if number % 2:
                raws.append(raw_write(engine, twin, prepared))
            ours.append(poller_write(engine, run_id, parts, error_rows(users, at)))
            if not number % 2:
                raws.append(raw_write(engine, twin, prepared))
        return raws[1:], ours[1:]
    finally:
        engine.dispose()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = scratch.parser(__doc__)
    parser.add_argument("--users", type=int, default=10_000, help="users of the portal (default 10000)")
    parser.add_argument(
        "--cycles",
        type=int,
        default=10,
        help="cycles measured after the first (default 10: each order five times)",
    )
    parser.add_argument(
        "--part",
        type=int,
        default=BATCH_LIMIT * BATCHES_PER_CHUNK,
        help="users per write, as a cycle hands them over (default 500)",
    )
    scratch.add_server_argument(parser)
    return scratch.parse(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(
        f"one cycle of {args.users:,} users in parts of {args.part}, median of {args.cycles} cycles "
        "(after one unmeasured): raw executemany of the snapshot rows vs the poller's write"
    )
    print(f"{'database':<12}{'raw s':>8}{'poller s':>10}{'raw/poller':>12}  cycles' raw/poller")
    figures: dict[str, float] = {}
    for name, server in scratch.servers(args.postgres_server):
        with scratch.scratch_database(server, "write_ratio") as url:
            raws, ours = run_backend(url, args.users, args.cycles, args.part)
        ratios = [raw / our for raw, our in zip(raws, ours, strict=True)]
        figures[name] = statistics.median(ratios)
        print(
            f"{name:<12}{statistics.median(raws):>8.3f}{statistics.median(ours):>10.3f}"
            f"{figures[name]:>12.2f}  {min(ratios):.2f}-{max(ratios):.2f}",
            flush=True,
        )
    if not args.postgres_server:
        print("postgresql: skipped (give --postgres-server)")
    verdict = "met" if min(figures.values()) >= GOAL else "NOT met"
    print(
        f"goal raw/poller >= {GOAL}: {verdict} ({json.dumps({k: round(v, 2) for k, v in figures.items()})})"
    )


if __name__ == "__main__":
    scratch.run(main)
