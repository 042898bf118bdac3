"""Throughput of a poll cycle against the emulator, and of fast-bitrix24 for comparison.

Mode `limits` (default): the emulator enforces a portal's leaky bucket (standard: 2 requests/s
after a burst of 50); timeman-poller polls N users into a scratch SQLite file, then
fast-bitrix24 (`pip install -e '.[bench]'`) asks `timeman.status` for the same users against a
fresh emulator with the same limits. Both rates, their QUERY_LIMIT_EXCEEDED answers and the
ceiling (50 users per request × requests per second) are printed.

Mode `storage`: limits lifted, one cycle of N users (default 10,000) on a temporary SQLite file
and, with --postgres-server, on a database the bench creates on that server and drops at the
end: wall seconds and the poller process's peak RSS (each backend in its own process, the
emulator in another).

    $ python bench/throughput.py --users 5000
    $ python bench/throughput.py --mode storage --users 10000 \
          --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import scratch


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def emulator_process(users: int, rate: float, burst: int) -> Iterator[str]:
    """Run `timeman-poller emulator` in its own process; yield its webhook URL."""
    port, secret = free_port(), secrets.token_hex(8)
    command = [sys.executable, "-m", "poller", "emulator", "--port", str(port), "--users", str(users)]
    command += ["--rate", str(rate), "--burst", str(burst), "--secret", secret]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base)
        yield f"{base}/rest/1/{secret}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_until_serving(base: str, seconds: float = 10) -> None:
    """Wait for an emulator started in another process to answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/_emulator/stats", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the emulator at {base} did not start")


def emulator_stats(webhook_url: str) -> dict[str, object]:
    base = webhook_url.split("/rest/")[0]
    with urllib.request.urlopen(f"{base}/_emulator/stats", timeout=5) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def poll_with_timeman_poller(
    webhook_url: str, users: int, rate: float, burst: int, database_url: str
) -> dict[str, float]:
    """One cycle of timeman-poller's own code: batch, bucket, storage."""
    from poller import storage
    from poller.config import parse_config
    from poller.cycle import make_clients, poll_once

    config = parse_config(
        {
            "database": {"url": database_url},
            "portals": [
                {
                    "name": "bench",
                    "webhook_url": webhook_url,
                    "users": list(range(1, users + 1)),
                    "requests_per_second": rate if rate > 0 else 1000.0,
                    "burst": burst,
                }
            ],
        },
        {},
    )
    engine = storage.make_engine(database_url)
    storage.upgrade_database(engine)
    clients = make_clients(config, engine)
    started = time.perf_counter()
    report = poll_once(clients, engine)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"stored": report.users_ok, "failed": report.users_failed, "seconds": seconds}


def poll_with_fast_bitrix24(webhook_url: str, users: int, rate: float, burst: int) -> dict[str, object]:
    try:
        from fast_bitrix24 import Bitrix
    except ImportError:
        return {"error": "fast-bitrix24 is not installed (pip install -e '.[bench]')"}
    bitrix = Bitrix(webhook_url, verbose=False, ssl=False, requests_per_second=rate, request_pool_size=burst)
    started = time.perf_counter()
    try:
        answers = bitrix.get_by_ID("timeman.status", list(range(1, users + 1)), ID_field_name="USER_ID")
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}", "seconds": time.perf_counter() - started}
    return {"stored": len(answers), "seconds": time.perf_counter() - started}


def run_limits(users: int, rate: float, burst: int) -> None:
    ceiling = 50 * rate
    print(
        f"{users} users, emulator bucket {rate:g} requests/s after a burst of {burst}; "
        f"ceiling {ceiling:g} users/s"
    )
    print(
        f"{'client':<16}{'users':>7}{'requests':>10}{'QLE':>6}{'seconds':>9}{'users/s':>9}{'vs ceiling':>12}"
    )
    rates: dict[str, float] = {}
    with scratch.scratch_database(None, "throughput") as database_url:
        with emulator_process(users, rate, burst) as webhook_url:
            ours = poll_with_timeman_poller(webhook_url, users, rate, burst, database_url)
            stats = emulator_stats(webhook_url)
        rates["timeman-poller"] = print_row("timeman-poller", ours["stored"], stats, ours["seconds"], ceiling)
        after_burst = (int(stats["requests"]) - (burst - max(1, burst // 10))) / ours["seconds"]  # type: ignore[call-overload]
        print(f"{'':<16}steady state after its burst: {after_burst:.2f} requests/s of {rate:g} allowed")
    with emulator_process(users, rate, burst) as webhook_url:
        theirs = poll_with_fast_bitrix24(webhook_url, users, rate, burst)
        stats = emulator_stats(webhook_url)
    if "error" in theirs:
        print(f"{'fast-bitrix24':<16} failed after {theirs.get('seconds', 0):.1f} s: {theirs['error']}")
        print(f"{'':<16} requests {stats['requests']}, QUERY_LIMIT_EXCEEDED {stats['query_limit_exceeded']}")
    else:
        rates["fast-bitrix24"] = print_row(
            "fast-bitrix24", theirs["stored"], stats, theirs["seconds"], ceiling
        )  # type: ignore[arg-type]
    if len(rates) == 2:
        print(
            f"timeman-poller / fast-bitrix24 users/s: {rates['timeman-poller'] / rates['fast-bitrix24']:.2f}"
        )


def print_row(name: str, stored: float, stats: dict[str, object], seconds: float, ceiling: float) -> float:
    per_second = stored / seconds if seconds else 0.0
    print(
        f"{name:<16}{int(stored):>7}{stats['requests']:>10}{stats['query_limit_exceeded']:>6}"
        f"{seconds:>9.1f}{per_second:>9.1f}{per_second / ceiling:>11.0%}"
    )
    return per_second


def run_storage(users: int, server_url: str | None) -> None:
    print(f"one cycle of {users} users, limits lifted")
    print(f"{'database':<12}{'stored':>8}{'seconds':>9}{'users/s':>9}{'peak RSS MiB':>14}")
    for name, server in scratch.servers(server_url):
        with (
            scratch.scratch_database(server, "throughput") as url,
            emulator_process(users, 0, 50) as webhook_url,
        ):
            command = [sys.executable, __file__, "--mode", "storage-child", "--users", str(users),
                       "--webhook", webhook_url, "--database", url]  # fmt: skip
            result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        print(
            f"{name:<12}{result['stored']:>8}{result['seconds']:>9.2f}"
            f"{result['stored'] / result['seconds']:>9.0f}{result['rss_mib']:>14.0f}"
        )
    if not server_url:
        print("postgresql: skipped (give --postgres-server)")


def storage_child(users: int, webhook_url: str, database_url: str) -> None:
    """One cycle into the (empty, scratch) database the parent made; print the figures as JSON."""
    result = poll_with_timeman_poller(webhook_url, users, 0, 50, database_url)
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["limits", "storage", "storage-child"], default="limits")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--rate", type=float, default=2.0, help="bucket drain per second (default 2)")
    parser.add_argument("--burst", type=int, default=50, help="bucket size (default 50)")
    scratch.add_server_argument(parser)
    parser.add_argument("--webhook", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)  # storage-child: the parent's scratch database
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.postgres_server:
        scratch.check_server(args.postgres_server)  # refuse before any work
    if args.mode == "limits":
        run_limits(args.users or 5000, args.rate, args.burst)
    elif args.mode == "storage":
        run_storage(args.users or 10000, args.postgres_server)
    else:
        storage_child(args.users, args.webhook, args.database)


if __name__ == "__main__":
    scratch.run(main)
