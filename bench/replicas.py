"""Replicas bench: many emulated portals shared by 1, 2 and 3 `timeman-poller run` processes.

One emulator (in this process, no rate limit) serves every portal: the config holds `--portals`
[[portals]] tables, each a distinct name on the same webhook URL. For each replica count the
bench starts that many daemons on one scratch PostgreSQL database (each with its own spool),
waits until the portals are spread over them (every portal held, none above its fair share),
measures for `--seconds`, stops them with SIGTERM, and prints the portals each replica held and
the achieved interval (mean and 95th percentile of the gaps between a portal's cycles) against
the configured one. When one replica cannot keep the interval, adding replicas adds capacity
until the machine's cores run out.

    $ python bench/replicas.py --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
    $ python bench/replicas.py --portals 300 --interval 2 --seconds 30 --postgres-server ...

Needs a PostgreSQL server: the bench creates its own database there and drops it at the end.
Each daemon uses up to ~16 connections (its pool and its lock connection).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from poller import storage
from poller.daemon import replicas
from poller.emulator import Emulator, EmulatorSettings

sys.path.insert(0, str(Path(__file__).parent))
import scratch


@dataclass
class Phase:
    """What one replica count achieved."""

    replicas: int
    settled_seconds: float | None  # None: the spread never settled before the deadline
    held: dict[str, int]  # replica -> portals held at the end of the measurement
    cycles: dict[str, int]  # replica -> cycles started in the window
    window: float
    portals_polled: int
    mean_gap: float | None
    p95_gap: float | None
    overlaps: int


def write_config(
    path: Path, url: str, webhook: str, portals: int, users: int, interval: int, spool: Path
) -> None:
    lines = [
        f'[database]\nurl = "{url}"\n[schedule]\ninterval_seconds = {interval}\n',
        "[directory]\nrefresh_hours = 0\n[reconcile]\ndays = 0\n",
        f'[storage]\nspool_path = "{spool}"\n',
    ]
    user_ids = list(range(1, users + 1))
    lines += [
        f'[[portals]]\nname = "{name}"\nwebhook_url = "{webhook}"\nusers = {user_ids}\n'
        for name in names(portals)
    ]
    path.write_text("".join(lines))
    path.chmod(0o600)


def names(portals: int) -> list[str]:
    return [f"p{n:04d}" for n in range(portals)]


def settled(holders: dict[str, str], portals: int, count: int) -> bool:
    """Every portal held, by `count` replicas, none above its fair share."""
    per_replica = Counter(holders.values())
    share = math.ceil(portals / count)
    return len(holders) == portals and len(per_replica) == count and max(per_replica.values()) <= share


def run_phase(
    engine: Engine, url: str, webhook: str, count: int, args: argparse.Namespace, workdir: Path
) -> Phase:
    portal_names = names(args.portals)
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    for index in range(count):
        config = workdir / f"replica-{count}-{index}.toml"
        write_config(
            config,
            url,
            webhook,
            args.portals,
            args.users,
            args.interval,
            workdir / f"spool-{count}-{index}.jsonl",
        )
        log = (workdir / f"replica-{count}-{index}.log").open("wb")
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "poller", "-c", str(config), "run"], stdout=log, stderr=log
            )
        )
    try:
        started = time.monotonic()
        settled_after: float | None = None
        while time.monotonic() - started < args.settle_timeout:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a replica exited early; see the logs in {workdir}")
            if settled(replicas.get_portal_holders(engine, portal_names), args.portals, count):
                settled_after = time.monotonic() - started
                break
            time.sleep(0.5)
        begin = datetime.now(UTC)
        time.sleep(args.seconds)
        end = datetime.now(UTC)
        holders = replicas.get_portal_holders(engine, portal_names)
        # Let the gaps open at `end` close, so that a long gap across it is counted, not dropped.
        time.sleep(2 * args.interval)
        stopped = datetime.now(UTC)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    return measure(engine, count, settled_after, holders, (begin, end, stopped), args.interval)


def measure(
    engine: Engine,
    count: int,
    settled_after: float | None,
    holders: dict[str, str],
    times: tuple[datetime, datetime, datetime],
    interval: float,
) -> Phase:
    """Cycles started in [begin, end) per replica, and every gap between a portal's cycles that
    overlaps the window, those crossing its edges included.

    Dropping the gaps that cross an edge would favour short ones (a long gap is the likelier to
    cross), so the cycles just before `begin` and up to `stopped` are read too; a gap still open
    when the replicas stopped counts as lasting until then (a lower bound).
    """
    begin, end, stopped = times
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT portal, replica, started_at, finished_at FROM poll_runs"
                " WHERE started_at >= :before AND started_at < :stopped ORDER BY portal, started_at"
            ),
            {"before": begin - timedelta(seconds=3 * interval), "stopped": stopped},
        ).all()
    cycles: Counter[str] = Counter()
    by_portal: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for portal, replica, started_at, finished_at in rows:
        if begin <= started_at < end:
            cycles[str(replica)] += 1
        by_portal[str(portal)].append((started_at, finished_at))
    gaps: list[float] = []
    overlaps = 0
    polled = 0
    for runs in by_portal.values():
        polled += any(begin <= start < end for start, _ in runs)
        ends = [next_start for next_start, _ in runs[1:]] + [stopped]
        for (start, finish), next_start in zip(runs, ends, strict=True):
            if start < end and next_start > begin:
                gaps.append((next_start - start).total_seconds())
            overlaps += next_start is not stopped and (finish is None or finish > next_start)
    gaps.sort()
    return Phase(
        replicas=count,
        settled_seconds=settled_after,
        held=dict(sorted(Counter(holders.values()).items())),
        cycles=dict(sorted(cycles.items())),
        window=(end - begin).total_seconds(),
        portals_polled=polled,
        mean_gap=statistics.fmean(gaps) if gaps else None,
        p95_gap=gaps[int(0.95 * (len(gaps) - 1))] if gaps else None,
        overlaps=overlaps,
    )


def show(phase: Phase, args: argparse.Namespace) -> None:
    settle = (
        f"spread in {phase.settled_seconds:.1f} s" if phase.settled_seconds is not None else "NOT settled"
    )
    print(
        f"{phase.replicas} replica{'s' if phase.replicas > 1 else ''} ({settle}, share {math.ceil(args.portals / phase.replicas)}):"
    )
    for replica in sorted(set(phase.held) | set(phase.cycles)):
        print(
            f"  {replica:<32} holds {phase.held.get(replica, 0):>5} portals, {phase.cycles.get(replica, 0):>6} cycles"
        )
    total = sum(phase.cycles.values())
    mean = f"{phase.mean_gap:.2f} s" if phase.mean_gap is not None else "-"
    p95 = f"{phase.p95_gap:.2f} s" if phase.p95_gap is not None else "-"
    print(
        f"  achieved interval: mean {mean}, p95 {p95} (configured {args.interval} s); "
        f"{total / phase.window:.1f} cycles/s (the interval needs {args.portals / args.interval:.1f}); "
        f"{phase.portals_polled} of {args.portals} portals polled; "
        f"{phase.overlaps} overlapping runs"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    scratch.add_server_argument(parser, required=True)
    parser.add_argument("--portals", type=int, default=1000, help="emulated portals (default 1000)")
    parser.add_argument("--users", type=int, default=1, help="users per portal (default 1)")
    parser.add_argument("--interval", type=int, default=5, help="configured interval, seconds (default 5)")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="measured seconds per replica count (default 30)"
    )
    parser.add_argument("--replicas", default="1,2,3", help="replica counts to run (default 1,2,3)")
    parser.add_argument("--settle-timeout", type=float, default=90.0, help="seconds to wait for the spread")
    args = scratch.parse(parser, argv)
    counts = [int(part) for part in args.replicas.split(",")]
    emulator = Emulator(EmulatorSettings(users=max(args.users, 1), rate=0, operating_limit=0)).start()
    print(
        f"{args.portals} portals x {args.users} users, interval {args.interval} s, {args.seconds:g} s measured "
        f"per replica count, {os.cpu_count()} cores"
    )
    try:
        with (
            scratch.scratch_database(args.postgres_server, "replicas") as url,
            tempfile.TemporaryDirectory(prefix="timeman_replicas_") as directory,
        ):
            engine = storage.make_engine(url)
            storage.upgrade_database(engine)
            try:
                for count in counts:
                    show(run_phase(engine, url, emulator.webhook_url, count, args, Path(directory)), args)
            finally:
                engine.dispose()
    finally:
        emulator.stop()


if __name__ == "__main__":
    scratch.run(main)
