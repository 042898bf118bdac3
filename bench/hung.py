"""Many healthy portals and one hung portal under `run`: do the healthy ones keep their interval?

Starts two emulators in processes of their own: one serves every healthy portal (each a
[[portals]] table with its own name, all pointing at the same webhook URL; bucket and
operating-time limits lifted), the other accepts connections and never answers (fault
`hang` on every request). Then `timeman-poller run` (a real process) polls them all into a
scratch SQLite file and, with --postgres-server, into a database the bench creates on that
server and drops at the end. After --seconds it sends SIGTERM and times the exit, then reads
poll_runs (portal, started_at, finished_at, outcome) and prints, for the healthy portals,
the configured interval against the achieved one (the gaps between a portal's consecutive
cycle starts: mean, p95, max), and what happened to the hung portal.

    $ python bench/hung.py --portals 200 --users 10 --interval 10 --read-timeout 5 --seconds 60 \\
          --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
    $ python bench/hung.py ... --no-hung     # the control: the same portals without the hung one
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
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from sqlalchemy import func, select

from poller import storage
from poller.models import PollError, PollRun

sys.path.insert(0, str(Path(__file__).parent))
import scratch
from soak import percentile, rss_mib
from throughput import RunningEmulator, run_emulator

HUNG = "hung"


@dataclass(frozen=True)
class Run:
    portal: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    users_ok: int
    users_failed: int


def write_config(
    path: Path, database_url: str, healthy: RunningEmulator, hung: RunningEmulator, args: argparse.Namespace
) -> None:
    """The daemon's config: `args.portals` healthy portals on one emulator, and the hung one (unless --no-hung)."""
    users = list(range(1, args.users + 1))
    lines = [
        f'[database]\nurl = "{database_url}"',
        f"[schedule]\ninterval_seconds = {args.interval}",
        f"[http]\nread_timeout_seconds = {args.read_timeout}\nmax_retries = {args.max_retries}",
        f'[storage]\nspool_path = "{path.parent / "spool.jsonl"}"',
        "[directory]\nrefresh_hours = 0",
        "[reconcile]\ndays = 0",
    ]
    for number in range(1, args.portals + 1):
        lines.append(
            f'[[portals]]\nname = "p{number:03d}"\nwebhook_url = "{healthy.webhook_url}"\nusers = {users}'
        )
    if args.hung:
        lines.append(f'[[portals]]\nname = "{HUNG}"\nwebhook_url = "{hung.webhook_url}"\nusers = {users}')
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class DaemonRun:
    """How the daemon's run ended: exit code (None: still running 120 s after SIGTERM) and figures."""

    code: int | None
    exit_seconds: float
    peak_mib: float
    signalled_at: datetime


def run_daemon(config: Path, log_path: Path, seconds: float) -> DaemonRun:
    """Run `timeman-poller run` for `seconds`, sampling its RSS, then SIGTERM it and time the exit."""
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "poller", "run", "-c", str(config)], stdout=log, stderr=log
        )
        peak = 0.0
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and daemon.poll() is None:
                time.sleep(1)
                peak = max(peak, rss_mib(daemon.pid))
            signalled_at, signalled = datetime.now(UTC), time.monotonic()
            if daemon.poll() is not None:  # it died by itself: the log says why
                return DaemonRun(daemon.returncode, 0.0, peak, signalled_at)
            daemon.send_signal(signal.SIGTERM)
            try:
                code: int | None = daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                code = None
            return DaemonRun(code, time.monotonic() - signalled, peak, signalled_at)
        finally:
            daemon.kill()
            daemon.wait()


def read_runs(database_url: str) -> tuple[list[Run], Counter[str]]:
    """Every poll_runs row (instants in UTC on both backends), and the hung portal's poll_errors by code."""
    engine = storage.make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    PollRun.portal,
                    PollRun.started_at,
                    PollRun.finished_at,
                    PollRun.outcome,
                    PollRun.users_ok,
                    PollRun.users_failed,
                ).order_by(PollRun.portal, PollRun.started_at)
            ).all()
            codes = connection.execute(
                select(PollError.code, func.count()).where(PollError.portal == HUNG).group_by(PollError.code)
            ).all()
    finally:
        engine.dispose()
    runs = [
        Run(str(r.portal), r.started_at, r.finished_at, r.outcome, r.users_ok, r.users_failed) for r in rows
    ]
    return runs, Counter({str(code): int(count) for code, count in codes})


def report(
    name: str, args: argparse.Namespace, runs: list[Run], codes: Counter[str], daemon: DaemonRun
) -> bool:
    """Print the figures of one backend; return whether the healthy portals kept their interval.

    Kept: the p95 gap within 10 % of the interval, no gap of 1.5 intervals (a skipped cycle),
    and every portal as many cycles as the time to SIGTERM allows, less one (its last trigger
    may fall after the signal).
    """
    by_portal: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_portal[run.portal].append(run)
    healthy = {p: r for p, r in by_portal.items() if p != HUNG}
    gaps = [(b.started_at - a.started_at).total_seconds() for rs in healthy.values() for a, b in pairwise(rs)]
    durations = [
        (r.finished_at - r.started_at).total_seconds() for rs in healthy.values() for r in rs if r.finished_at
    ]
    counts = [len(healthy.get(f"p{n:03d}", [])) for n in range(1, args.portals + 1)]
    first = min((r.started_at for rs in healthy.values() for r in rs), default=daemon.signalled_at)
    allowed = math.floor((daemon.signalled_at - first).total_seconds() / args.interval) + 1
    outcomes = Counter(r.outcome or "open" for rs in healthy.values() for r in rs)
    print(
        f"\n{name}: {args.portals} healthy portals{' + 1 hung' if args.hung else ', no hung one'}, "
        f"{args.users} users each, interval {args.interval} s, read timeout {args.read_timeout:g} s, "
        f"{args.seconds:g} s of `run`"
    )
    mean = statistics.fmean(gaps) if gaps else math.inf
    p95, longest = percentile(gaps, 0.95), max(gaps, default=math.inf)
    print(
        f"  healthy portals: configured interval {args.interval} s, achieved mean {mean:.2f} s, "
        f"p95 {p95:.2f} s, max {longest:.2f} s ({len(gaps)} gaps)"
    )
    print(
        f"  healthy cycles per portal: min {min(counts)}, median {statistics.median(counts):g}, "
        f"max {max(counts)} ({allowed} triggers before SIGTERM); outcomes {dict(outcomes)}"
    )
    if durations:
        print(
            f"  healthy cycle seconds: mean {statistics.fmean(durations):.2f}, "
            f"p95 {percentile(durations, 0.95):.2f}, max {max(durations):.2f}"
        )
    if args.hung:
        hung = by_portal.get(HUNG, [])
        seconds = [(r.finished_at - r.started_at).total_seconds() for r in hung if r.finished_at]
        print(
            f"  hung portal: {len(hung)} cycles {dict(Counter(r.outcome or 'open' for r in hung))}, "
            f"{sum(r.users_ok for r in hung)} users stored, {sum(r.users_failed for r in hung)} failed, "
            f"cycle seconds {', '.join(f'{s:.1f}' for s in seconds) or '-'}; error rows {dict(codes)}"
        )
    limit = args.read_timeout + 10
    exit_text = f"{daemon.exit_seconds:.1f} s" if daemon.code is not None else "still running after 120 s"
    print(
        f"  SIGTERM to exit: {exit_text} (limit read_timeout + 10 = {limit:g} s), exit code {daemon.code}; "
        f"daemon peak RSS {daemon.peak_mib:.0f} MiB"
    )
    kept = p95 <= args.interval * 1.1 and longest < args.interval * 1.5 and min(counts) >= allowed - 1
    in_time = daemon.code is not None and daemon.exit_seconds <= limit
    print(
        f"  verdict: healthy portals {'kept' if kept else 'did NOT keep'} their interval; "
        f"exit {'within' if in_time else 'NOT within'} the limit"
    )
    return kept


def run_backend(name: str, server: str | None, args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="timeman_hung_") as workdir,
        scratch.scratch_database(server, "hung") as database_url,
        run_emulator(users=args.users, rate=0, operating_limit=0) as healthy,
        run_emulator(users=args.users, rate=0, operating_limit=0, fault_hang=1.0) as hung,
    ):
        config = Path(workdir) / "hung.toml"
        write_config(config, database_url, healthy, hung, args)
        log_path = Path(workdir) / "daemon.log"
        daemon = run_daemon(config, log_path, args.seconds)
        runs, codes = read_runs(database_url)
        log = log_path.read_text()
        report(name, args, runs, codes, daemon)
        leaked = sum(secret in log for emulator in (healthy, hung) for secret in emulator.secrets)
        tracebacks = log.count("Traceback")
        print(f"  log: {len(log.splitlines())} lines, {tracebacks} tracebacks, secrets {leaked}")
        if args.keep_log:
            args.keep_log.write_text(log)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--portals", type=int, default=200, help="healthy portals (default 200)")
    parser.add_argument(
        "--users", type=int, default=10, help="users per portal (default 10; up to 50 is one batch)"
    )
    parser.add_argument("--interval", type=int, default=10, help="interval_seconds (default 10)")
    parser.add_argument("--read-timeout", type=float, default=5, help="read_timeout_seconds (default 5)")
    parser.add_argument("--max-retries", type=int, default=4, help="[http] max_retries (default 4)")
    parser.add_argument("--seconds", type=float, default=60, help="how long `run` runs (default 60)")
    parser.add_argument(
        "--no-hung", dest="hung", action="store_false", help="leave the hung portal out (a control run)"
    )
    parser.add_argument("--keep-log", type=Path, help="write the daemon's log of the last run here")
    scratch.add_server_argument(parser)
    return scratch.parse(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for name, server in scratch.servers(args.postgres_server):
        run_backend(name, server, args)
    if not args.postgres_server:
        print("postgresql: skipped (give --postgres-server)")


if __name__ == "__main__":
    scratch.run(main)
