"""Soak and fault run: the daemon against a faulty emulator, with a PostgreSQL outage.

Runs `timeman-poller run` (a subprocess) for a bounded time against `timeman-poller
emulator` (another) with 2,000 users, a fast interval and every fault injected (500s, HTML
502s, dropped connections, truncated and huge bodies, slow answers, short-lived OAuth
tokens), stops PostgreSQL in the middle and starts it again, then stops the daemon with
SIGTERM and prints: cycles, snapshots the emulator answered, snapshots stored, duplicates,
errors by code, and the daemon's RSS after its first cycle and at the end.

    $ python bench/soak.py --seconds 180 --users 2000 --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
    $ python bench/soak.py --seconds 40 --outage block --postgres-server ...   # refuse connections instead

Needs a PostgreSQL server (--postgres-server): the soak creates its own database there and
drops it at the end. `--outage restart` stops and starts the whole cluster with pg_ctlcluster
(root; every database on it goes away for a while); `--outage block` refuses connections to
the soak's own database only.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from poller import storage

sys.path.insert(0, str(Path(__file__).parent))
import scratch
from throughput import free_port, wait_until_serving

FAULTS = ["--fault-500", "0.05", "--fault-html", "0.03", "--fault-drop", "0.03", "--fault-truncated", "0.02",
          "--fault-huge", "0.01", "--fault-slow", "0.02"]  # fmt: skip


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def outage(url: str, server_url: str, method: str, seconds: float) -> None:
    """Take PostgreSQL away for `seconds`: stop the cluster, or refuse the soak's own database."""
    if method == "restart":
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop"], check=True)
        time.sleep(seconds)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
        return
    database = make_url(url).database
    admin = storage.make_engine(server_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": database}
        )
    time.sleep(seconds)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    admin.dispose()


def wait_for_postgres(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            engine = storage.make_engine(url)
            with engine.connect():
                engine.dispose()
                return
        except Exception:  # waiting for the server to come back
            time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back")


def run_soak(
    users: int, seconds: float, interval: int, url: str, server_url: str, method: str, workdir: Path
) -> dict[str, Any]:
    """Run the scenario on `url`, an empty scratch database on `server_url`; return the figures."""
    port, secret = free_port(), secrets.token_hex(8)
    token, refresh, client_secret = secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(12)
    emulator = subprocess.Popen(
        [sys.executable, "-m", "poller", "emulator", "--port", str(port), "--users", str(users), "--secret", secret,
         "--token", token, "--rate", "20", "--burst", "100", "--token-lifetime", "20", *FAULTS],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base)
    # The emulator prints its OAuth app; read the refresh token and client secret it chose.
    banner = "".join(emulator.stdout.readline() for _ in range(5)) if emulator.stdout else ""
    refresh = banner.split('refresh_token = "')[1].split('"')[0]
    client_secret = banner.split('client_secret = "')[1].split('"')[0]
    half = users // 2
    config = workdir / "soak.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[schedule]\ninterval_seconds = {interval}\n'
        f"[http]\nmax_retries = 6\nread_timeout_seconds = 10\n"
        f'[storage]\nspool_path = "{workdir / "spool.jsonl"}"\n'
        f'[[portals]]\nname = "hook"\nwebhook_url = "{base}/rest/1/{secret}/"\nusers = {list(range(1, half + 1))}\n'
        f"requests_per_second = 10\nburst = 50\n"
        f'[[portals]]\nname = "oauth"\ndomain = "{base}"\naccess_token = "{token}"\nrefresh_token = "{refresh}"\n'
        f'client_id = "local.emulator"\nclient_secret = "{client_secret}"\noauth_url = "{base}/oauth/token/"\n'
        f"users = {list(range(half + 1, users + 1))}\nrequests_per_second = 10\nburst = 50\n"
    )
    os.chmod(config, 0o600)
    log_path = workdir / "daemon.log"
    log = log_path.open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "poller", "run", "-c", str(config)], stdout=log, stderr=log
    )
    started = time.monotonic()
    samples: list[float] = []
    outage_done = False
    rss_before_outage = rss_after_outage = 0.0
    back_at = 0.0
    try:
        while time.monotonic() - started < seconds:
            time.sleep(1)
            samples.append(rss_mib(daemon.pid))
            if not outage_done and time.monotonic() - started > seconds / 2:
                rss_before_outage = samples[-1]
                outage(url, server_url, method, seconds=min(10.0, seconds / 6))
                wait_for_postgres(url, time.monotonic() + 60)
                outage_done, back_at = True, time.monotonic()
            if back_at and not rss_after_outage and time.monotonic() - back_at > 10:
                rss_after_outage = samples[-1]  # the spool written back
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
        stats = json.loads(urllib.request.urlopen(f"{base}/_emulator/stats", timeout=5).read())
    finally:
        daemon.kill()
        emulator.terminate()
        emulator.wait(timeout=10)
        log.close()
    engine = storage.make_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM snapshots")).scalar_one()
        distinct = connection.execute(
            text("SELECT count(*) FROM (SELECT DISTINCT portal, user_id, polled_at FROM snapshots) d")
        ).scalar_one()
        cycles = connection.execute(text("SELECT count(*) FROM poll_runs")).scalar_one()
        errors = dict(connection.execute(text("SELECT code, count(*) FROM poll_errors GROUP BY code")).all())
    engine.dispose()
    warm = samples[len(samples) // 5] if samples else 0.0  # after the first cycles
    return {
        "seconds": round(time.monotonic() - started, 1),
        "daemon_exit": daemon.returncode,
        "cycles": cycles,
        "requests": stats["requests"],
        "faults": stats["faults"],
        "expected": stats["statuses_answered"],
        "stored": stored,
        "lost": stats["statuses_answered"] - distinct,
        "duplicates": stored - distinct,
        "errors": errors,
        "rss_warm_mib": round(warm, 1),
        "rss_end_mib": round(samples[-1] if samples else 0.0, 1),
        "rss_before_outage_mib": round(rss_before_outage, 1),
        "rss_after_outage_mib": round(rss_after_outage, 1),
        "rss_max_mib": round(max(samples, default=0.0), 1),
        "log": log_path.read_text(),
        "secrets": [secret, token, refresh, client_secret],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--outage", choices=["restart", "block"], default="restart")
    scratch.add_server_argument(parser, required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    scratch.check_server(args.postgres_server)  # refuse before starting anything
    with (
        tempfile.TemporaryDirectory() as workdir,
        scratch.scratch_database(args.postgres_server, "soak") as url,
    ):
        result = run_soak(
            args.users, args.seconds, args.interval, url, args.postgres_server, args.outage, Path(workdir)
        )
    print(f"{result['seconds']} s, {args.users} users, "
          f"PostgreSQL outage: {args.outage}; daemon exit code {result['daemon_exit']}")  # fmt: skip
    print(
        f"cycles {result['cycles']}, HTTP requests {result['requests']}, faults injected {result['faults']}"
    )
    print(f"snapshots expected (answers the emulator gave) {result['expected']}, stored {result['stored']}, "
          f"lost {result['lost']}, duplicated {result['duplicates']}")  # fmt: skip
    print(f"errors by code {result['errors']}")
    print(f"daemon RSS MiB: {result['rss_warm_mib']} after the first cycles, {result['rss_before_outage_mib']} "
          f"before the outage, {result['rss_after_outage_mib']} 10 s after it, {result['rss_end_mib']} at the end, "
          f"{result['rss_max_mib']} at most")  # fmt: skip
    leaked = [s for s in result["secrets"] if s in result["log"]]
    print(f"secrets in the daemon's log: {len(leaked)}")


if __name__ == "__main__":
    scratch.run(main)
