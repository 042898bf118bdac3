"""Peak memory of `timeman-poller run` over a portal of N users with its directory (default 50,000).

The emulator runs in a process of its own with its limits lifted (the bucket and the
operating-time budget); the daemon (`python -m poller run`, a subprocess) polls `users = "all"`
into a scratch SQLite file, so its first cycle reads the whole directory (user.get,
department.get) and then polls every user. With --cycles N (default 3) it goes on, cycle after
cycle, each reading the directory again (refresh_hours tiny): the steady state, where what a
process keeps between cycles (the directory's facts, the instants' texts) is held while a refresh
reads the whole directory again. When the N-th poll_runs row is finished the daemon gets
SIGTERM; printed: the seconds it took and the daemon's peak RSS (VmHWM of /proc/<pid>/status,
the kernel's own high-water mark, so no sampling can miss the peak).

    $ python bench/memory_run.py
    $ python bench/memory_run.py --users 100000 --cycles 1
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).parent))
import scratch
from throughput import run_emulator

TARGET_MIB = 150  # issue #15: `run` over 50,000 users with the directory peaks under this


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def write_config(path: Path, database: Path, webhook_url: str, spool: Path, cycles: int) -> None:
    interval, refresh = (
        (3600, 24) if cycles == 1 else (1, 0.0001)
    )  # more cycles: back to back, each refreshing
    path.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n[schedule]\ninterval_seconds = {interval}\n'
        f'[storage]\nspool_path = "{spool}"\n[reconcile]\ndays = 0\n[directory]\nrefresh_hours = {refresh}\n'
        f'[[portals]]\nname = "memory"\nwebhook_url = "{webhook_url}"\nusers = "all"\n'
        f"requests_per_second = 1000\nburst = 50\n"
    )
    os.chmod(path, 0o600)


def cycles_done(database: Path) -> tuple[int, int]:
    """How many of the daemon's cycles are finished, and the snapshots stored so far."""
    if not database.exists():
        return 0, 0
    engine = create_engine(f"sqlite:///file:{database}?mode=ro&uri=true")
    try:
        with engine.connect() as connection:
            finished = connection.execute(
                text("SELECT count(*) FROM poll_runs WHERE finished_at IS NOT NULL")
            ).scalar_one()
            stored = connection.execute(text("SELECT count(*) FROM snapshots")).scalar_one()
        return finished, stored
    except OperationalError:  # not migrated yet, or locked for a moment
        return 0, 0
    finally:
        engine.dispose()


def run(users: int, cycles: int, limit_seconds: float) -> dict[str, float]:
    """One daemon's first `cycles` cycles over `users` users, each with the directory; its figures."""
    with (
        tempfile.TemporaryDirectory(prefix="memory_run_") as workdir,
        run_emulator(users=users, rate=0, operating_limit=0) as emulator,
    ):
        work = Path(workdir)
        database, config, log_path = work / "memory.sqlite3", work / "memory.toml", work / "daemon.log"
        write_config(config, database, emulator.webhook_url, work / "spool.jsonl", cycles)
        started = time.monotonic()
        with log_path.open("w") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "poller", "run", "-c", str(config)], stdout=log, stderr=log
            )
        try:
            done, stored = 0, 0
            while done < cycles and time.monotonic() - started < limit_seconds and daemon.poll() is None:
                time.sleep(1.0)
                done, stored = cycles_done(database)
            seconds = time.monotonic() - started
            peak = peak_rss_mib(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        if done < cycles:
            tail = log_path.read_text()[-2000:]
            raise scratch.ScratchError(
                f"{done} of {cycles} cycles finished in {limit_seconds:g} s; log ends:\n{tail}"
            )
    return {"seconds": seconds, "stored": stored, "peak_mib": peak}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = scratch.parser(__doc__)
    parser.add_argument("--users", type=int, default=50_000, help="users of the portal (default 50000)")
    parser.add_argument(
        "--cycles", type=int, default=3, help="cycles, each reading the directory again (default 3)"
    )
    parser.add_argument(
        "--limit", type=float, default=600.0, help="seconds the cycles may take (default 600)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(
        f'`run` over {args.users:,} users with the directory (users = "all"), SQLite, {args.cycles} cycle(s), '
        "each reading the directory"
    )
    figures = run(args.users, args.cycles, args.limit)
    verdict = "under" if figures["peak_mib"] < TARGET_MIB else "NOT under"
    print(
        f"{args.cycles} cycle(s) ({figures['stored']:,.0f} snapshots) in {figures['seconds']:.0f} s; "
        f"daemon peak RSS {figures['peak_mib']:.0f} MiB, {verdict} {TARGET_MIB} MiB"
    )


if __name__ == "__main__":
    scratch.run(main)
