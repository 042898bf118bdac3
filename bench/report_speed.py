"""Speed of the report views on a large history, on SQLite and PostgreSQL.

Fills 1,000 users × 90 days as storage mode "changes" keeps them (a row per state change:
opened, paused, resumed, closed, each with last_seen_at and seen_count), taking the workdays
from the emulator's plan, then times the `workdays` and `daily_worktime` queries for one month
(all users) and for one user (all days), and prints their query plans. It runs on a temporary
SQLite file and, with --postgres-server, on a database it creates on that server and drops at
the end.

    $ python bench/report_speed.py --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
    $ python bench/report_speed.py --users 200 --days 30        # SQLite only
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, text

sys.path.insert(0, str(Path(__file__).parent))
import scratch

from poller import storage
from poller.emulator import SimClock, World
from poller.models import Snapshot
from poller.status import parse_status

QUERIES = {
    "workdays, one month": "SELECT * FROM workdays WHERE work_date BETWEEN :first AND :last",
    "daily_worktime, one month": "SELECT * FROM daily_worktime WHERE work_date BETWEEN :first AND :last",
    "workdays, one user": "SELECT * FROM workdays WHERE portal = 'bench' AND user_id = 500",
    "daily_worktime, one user": "SELECT * FROM daily_worktime WHERE portal = 'bench' AND user_id = 500",
}


def history_rows(users: int, days: int, end: datetime) -> list[dict[str, object]]:
    """Rows as mode "changes" stores them: one per state, seen until the next state."""
    world = World(users, SimClock(end - timedelta(days=days), speed=0))
    rows: list[dict[str, object]] = []
    for user in range(1, users + 1):
        moments: list[datetime] = []
        for offset in range(days + 1):
            day = world.workday(user, (end - timedelta(days=days - offset)).date())
            if day is not None:
                moments += [t for t in (day.opened, day.pause_start, day.pause_end, day.closed) if t]
        moments = sorted(t for t in moments if t < end)
        if not moments:
            continue
        for seen_from, seen_until in zip(moments, [*moments[1:], end], strict=True):
            parsed = parse_status(world.status(user, seen_from))
            row = storage.SnapshotRow("bench", user, seen_from, parsed)
            values = storage.snapshot_values(row)  # the same columns the poller writes
            values["last_seen_at"] = seen_until - timedelta(minutes=1)
            values["seen_count"] = max(1, int((seen_until - seen_from).total_seconds() // 60))
            rows.append(values)
    return rows


def fill(engine: Engine, rows: list[dict[str, object]]) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Snapshot), rows[start : start + 5000])
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("ANALYZE snapshots"))
            connection.commit()
    return time.perf_counter() - started


def measure(engine: Engine, month_first: date, month_last: date) -> None:
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    params = {"first": month_first, "last": month_last}
    for name, sql in QUERIES.items():
        timings = []
        with engine.connect() as connection:
            for _ in range(3):
                started = time.perf_counter()
                count = len(connection.execute(text(sql), params).all())
                timings.append(time.perf_counter() - started)
            plan = connection.execute(text(explain + sql), params).all()
        print(f"  {name:<28} {count:>7} rows  best of 3: {min(timings) * 1000:8.1f} ms")
        for line in plan:
            print(f"      {line[-1]}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    scratch.add_server_argument(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.postgres_server:
        scratch.check_server(args.postgres_server)  # refuse before building the history
    end = datetime(2026, 11, 1, tzinfo=UTC)
    started = time.perf_counter()
    rows = history_rows(args.users, args.days, end)
    print(f"{len(rows)} snapshot rows for {args.users} users × {args.days} days "
          f"(built in {time.perf_counter() - started:.1f} s)")  # fmt: skip
    month_last = end.date() - timedelta(days=1)
    month_first = month_last.replace(day=1)
    for name, server in scratch.servers(args.postgres_server):
        with scratch.scratch_database(server, "report") as url:
            engine = storage.make_engine(url)
            try:
                storage.upgrade_database(engine)
                print(f"{name}: filled in {fill(engine, rows):.1f} s")
                measure(engine, month_first, month_last)
            finally:
                engine.dispose()
    if not args.postgres_server:
        print("postgresql: skipped (give --postgres-server)")


if __name__ == "__main__":
    scratch.run(main)
