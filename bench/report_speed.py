"""Speed of the reports on a large history, on SQLite and PostgreSQL: before and after the
workdays table, and against a plain indexed table holding the same rows.

Fills 1,000 users × 90 days as storage mode "changes" keeps them (a row per state change:
opened, paused, resumed, closed, each with last_seen_at and seen_count), taking the workdays
from the emulator's plan, into a database at revision 0003 (workdays a view over snapshots),
and times the queries ("before"). Then it upgrades to head, which fills the workdays table
(timed), copies that table into `plain_reference` with the same indexes, and times the same
queries ("after") and their reference: one month of all users (the workdays rows, as
`report workdays` and `report timesheet` read them), daily_worktime for that month, and one
user's whole history. It prints the query plans of the "after" queries. It runs on a
temporary SQLite file and, with --postgres-server, on a database it creates on that server
and drops at the end.

    $ python bench/report_speed.py --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
    $ python bench/report_speed.py --users 200 --days 30        # SQLite only
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, column, insert, table, text

sys.path.insert(0, str(Path(__file__).parent))
import scratch

from poller import storage
from poller.emulator import SimClock, World
from poller.models import Snapshot
from poller.status import parse_status

MONTH = "work_date BETWEEN :first AND :last"
ONE_USER = "portal = 'bench' AND user_id = :user"
# name: (SQL with {table}, the table of the reference, or None when there is no like for like)
QUERIES = {
    "workdays, one month": (
        f"SELECT * FROM {{table}} WHERE {MONTH} ORDER BY portal, user_id, work_date",
        "workdays",
    ),
    "timesheet, one month": (
        "SELECT portal, user_id, user_name, department, work_date, worked_seconds, leaks_seconds, "
        f"worked_is_estimate, pending_approval FROM {{table}} WHERE {MONTH}",
        "workdays",
    ),
    "daily_worktime, one month": (f"SELECT * FROM daily_worktime WHERE {MONTH}", None),
    "workdays, one user": (f"SELECT * FROM {{table}} WHERE {ONE_USER} ORDER BY work_date", "workdays"),
    "daily_worktime, one user": (f"SELECT * FROM daily_worktime WHERE {ONE_USER}", None),
}
BEFORE_COLUMNS = (  # revision 0003's views have neither names nor source
    "portal, user_id, work_date, time_start, time_finish, status, worked_seconds, worked_is_estimate, "
    "leaks_seconds, first_seen_at, last_seen_at, pending_approval"
)


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
    """Insert the history into a database at revision 0003 (whose snapshots have no record_id)."""
    started = time.perf_counter()
    snapshots = table(
        "snapshots",
        *(column(c.name, c.type) for c in Snapshot.__table__.c if c.name not in {"id", "record_id"}),
    )
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            chunk = [{k: v for k, v in row.items() if k != "record_id"} for row in rows[start : start + 5000]]
            connection.execute(insert(snapshots), chunk)
    analyze(engine, "snapshots")
    return time.perf_counter() - started


def analyze(engine: Engine, *tables: str) -> None:
    """Give PostgreSQL's planner statistics, as autovacuum would soon after a fill."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for name in tables:
                connection.execute(text(f"ANALYZE {name}"))


def make_reference(engine: Engine) -> None:
    """plain_reference: a copy of the workdays table's rows with the same indexes."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE plain_reference AS SELECT * FROM workdays"))
        connection.execute(
            text("CREATE INDEX ix_plain_portal_user ON plain_reference (portal, user_id, time_start)")
        )
        connection.execute(text("CREATE INDEX ix_plain_work_date ON plain_reference (work_date)"))
    analyze(engine, "workdays", "plain_reference")


def best_of(
    engine: Engine, sqls: Sequence[str], params: dict[str, object], runs: int = 7
) -> list[tuple[int, float]]:
    """Rows and the best time in ms of `runs` reads of each statement, the Python fetch of every row
    included. The statements take turns, so a busy machine slows each of them alike."""
    timings: list[list[float]] = [[] for _ in sqls]
    counts = [0] * len(sqls)
    with engine.connect() as connection:
        for _ in range(runs):
            for number, sql in enumerate(sqls):
                started = time.perf_counter()
                counts[number] = len(connection.execute(text(sql), params).all())
                timings[number].append(time.perf_counter() - started)
    return [(count, min(taken) * 1000) for count, taken in zip(counts, timings, strict=True)]


def measure_before(engine: Engine, params: dict[str, object]) -> dict[str, tuple[int, float]]:
    """Time each query on revision 0003's views (which have no names)."""
    results = {}
    for name, (sql, table_name) in QUERIES.items():
        sql = sql.replace("SELECT * FROM {table}", f"SELECT {BEFORE_COLUMNS} FROM {{table}}")
        [results[name]] = best_of(
            engine, [sql.replace("user_name, department, ", "").format(table=table_name)], params
        )
    return results


def measure_after(
    engine: Engine, params: dict[str, object]
) -> tuple[dict[str, tuple[int, float]], dict[str, tuple[int, float]]]:
    """Time each query on the workdays table and, where there is a like for like, on plain_reference."""
    after, plain = {}, {}
    for name, (sql, table_name) in QUERIES.items():
        if table_name is None:
            [after[name]] = best_of(engine, [sql], params)
        else:
            after[name], plain[name] = best_of(
                engine, [sql.format(table=table_name), sql.format(table="plain_reference")], params
            )
    return after, plain


def print_plans(engine: Engine, params: dict[str, object]) -> None:
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        for name, (sql, table_name) in QUERIES.items():
            print(f"    {name}:")
            for line in connection.execute(text(explain + sql.format(table=table_name)), params):
                print(f"      {line[-1]}")


def print_table(name: str, before: dict, after: dict, plain: dict) -> None:
    print(
        f"  {name:<27} {'rows':>7}  {'before':>9}  {'after':>9}  {'speed-up':>8}  {'plain table':>11}  {'after/plain':>11}"
    )
    for query, (rows, after_ms) in after.items():
        before_rows, before_ms = before[query]
        shown = f"{before_ms:7.1f} ms" if before_rows == rows else f"{before_ms:7.1f}*ms"
        line = f"  {query:<27} {rows:>7}  {shown:>9}  {after_ms:6.1f} ms  {before_ms / after_ms:7.1f}x"
        if query in plain:
            line += f"  {plain[query][1]:8.1f} ms  {after_ms / plain[query][1]:10.2f}x"
        print(line)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    scratch.add_server_argument(parser)
    return scratch.parse(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    started = time.perf_counter()
    rows = history_rows(args.users, args.days, end)
    print(f"{len(rows)} snapshot rows for {args.users} users × {args.days} days "
          f"(built in {time.perf_counter() - started:.1f} s)")  # fmt: skip
    month_last = end.date() - timedelta(days=1)
    params: dict[str, object] = {
        "first": month_last.replace(day=1),
        "last": month_last,
        "user": args.users // 2,
    }
    for name, server in scratch.servers(args.postgres_server):
        with scratch.scratch_database(server, "report") as url:
            engine = storage.make_engine(url)
            try:
                storage.upgrade_database(engine, "0003")
                print(f"{name}: filled in {fill(engine, rows):.1f} s")
                before = measure_before(engine, params)
                started = time.perf_counter()
                storage.upgrade_database(engine)
                print(f"{name}: upgraded to head, workdays filled, in {time.perf_counter() - started:.1f} s")
                make_reference(engine)
                after, plain = measure_after(engine, params)
                print_table(name, before, after, plain)
                print_plans(engine, params)
            finally:
                engine.dispose()
    if not args.postgres_server:
        print("postgresql: skipped (give --postgres-server)")


if __name__ == "__main__":
    scratch.run(main)
