"""Throughput of a poll cycle against the emulator, and of fast-bitrix24 for comparison.

Mode `limits` (default): the emulator enforces a portal's leaky bucket (standard: 2 requests/s
after a burst of 50); timeman-poller polls N users into a scratch SQLite file, then
fast-bitrix24 (`pip install -e '.[bench]'`) asks `timeman.status` for the same users against a
fresh emulator with the same limits. Both rates, their QUERY_LIMIT_EXCEEDED answers and the
ceiling (50 users per request × requests per second) are printed.

Mode `storage`: limits lifted (the bucket and the operating-time budget), one cycle of N users
per size given (default 10,000) on a temporary SQLite file and, with --postgres-server, on a
database the bench creates on that server and drops at the end: wall seconds and the poller
process's peak RSS. Each size and backend runs in a process of its own, so peaks do not mix;
the emulator runs in another.

    $ python bench/throughput.py --users 5000
    $ python bench/throughput.py --mode storage --users 10000,50000,100000 \
          --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres

The other benches start their emulators with `run_emulator` (any EmulatorSettings, in a
process of its own).
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import scratch

STORAGE_RSS_TARGET_MIB = 150  # issue #9: one cycle of 100,000 users under this


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class RunningEmulator:
    """An emulator serving in a process of its own: where it is and the credentials it chose."""

    base_url: str
    webhook_url: str
    oauth_url: str
    access_token: str
    refresh_token: str
    client_id: str
    client_secret: str
    pid: int

    @property
    def secrets(self) -> list[str]:
        """What must never appear in the poller's logs."""
        secret = self.webhook_url.rstrip("/").rsplit("/", 1)[1]
        return [secret, self.access_token, self.refresh_token, self.client_secret]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/_emulator/stats", timeout=5) as answer:
            return json.loads(answer.read())


@contextmanager
def run_emulator(**settings: Any) -> Iterator[RunningEmulator]:
    """Serve an emulator built from `settings` (EmulatorSettings keywords) in its own process.

    The child binds a free port itself and prints where it listens, so nothing can take the
    port between a probe and the bind. `hostile` may be given as {user id: [kinds]}.
    """
    command = [sys.executable, __file__, "--mode", "emulator-child", "--settings", json.dumps(settings)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = json.loads(_first_line(process, seconds=120))
        yield RunningEmulator(pid=process.pid, **banner)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _first_line(process: subprocess.Popen[str], seconds: float) -> str:
    """The child's first line of output, waiting at most `seconds`."""
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=min(1.0, deadline - time.monotonic())):
                line = process.stdout.readline()
                if line:
                    return line
    raise RuntimeError(f"the emulator (pid {process.pid}) did not start within {seconds:g} s")


def emulator_child(settings_json: str) -> None:
    """The emulator process of `run_emulator`: print where it listens as JSON, serve until stopped."""
    from poller.emulator import Emulator, EmulatorSettings

    settings = json.loads(settings_json)
    hostile = {int(user): tuple(kinds) for user, kinds in settings.pop("hostile", {}).items()}
    emulator = Emulator(EmulatorSettings(**settings, hostile=hostile)).bind()
    s = emulator.settings
    banner = {
        "base_url": emulator.base_url,
        "webhook_url": emulator.webhook_url,
        "oauth_url": emulator.oauth_url,
        "access_token": s.access_token,
        "refresh_token": s.refresh_token,
        "client_id": s.client_id,
        "client_secret": s.client_secret,
    }
    print(json.dumps(banner), flush=True)
    emulator.serve_forever()


@contextmanager
def emulator_process(users: int, rate: float, burst: int, **settings: Any) -> Iterator[str]:
    """Run an emulator in its own process (see `run_emulator`); yield its webhook URL."""
    with run_emulator(users=users, rate=rate, burst=burst, **settings) as emulator:
        yield emulator.webhook_url


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
        return json.loads(answer.read())


def poll_with_timeman_poller(
    webhook_url: str, users: int, rate: float, burst: int, database_url: str
) -> dict[str, float]:
    """One cycle of timeman-poller's own code: batch, bucket, storage."""
    from poller import storage
    from poller.clients import make_clients
    from poller.config import parse_config
    from poller.poll.cycle import poll_once

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
        stored, seconds = theirs["stored"], theirs["seconds"]
        assert isinstance(stored, int) and isinstance(seconds, float)
        rates["fast-bitrix24"] = print_row("fast-bitrix24", stored, stats, seconds, ceiling)
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


def run_storage(sizes: Sequence[int], server_url: str | None) -> None:
    print(
        "one cycle of N users per run, limits lifted (bucket and operating time), each run in a fresh process"
    )
    print(f"{'users':>8}  {'database':<12}{'stored':>8}{'seconds':>9}{'users/s':>9}{'peak RSS MiB':>14}")
    peaks: dict[int, float] = {}
    for users in sizes:
        for name, server in scratch.servers(server_url):
            with (
                scratch.scratch_database(server, "throughput") as url,
                emulator_process(users, 0, 50, operating_limit=0) as webhook_url,
            ):
                command = [sys.executable, __file__, "--mode", "storage-child", "--users", str(users),
                           "--webhook", webhook_url, "--database", url]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"{users:>8}  {name:<12}failed (exit {done.returncode}): {last}")
                continue
            result = json.loads(done.stdout)
            peaks[users] = max(peaks.get(users, 0.0), result["rss_mib"])
            print(
                f"{users:>8}  {name:<12}{result['stored']:>8}{result['seconds']:>9.2f}"
                f"{result['stored'] / result['seconds']:>9.0f}{result['rss_mib']:>14.0f}"
            )
    if not server_url:
        print("postgresql: skipped (give --postgres-server)")
    if peaks:
        largest = max(peaks)
        verdict = "under" if peaks[largest] < STORAGE_RSS_TARGET_MIB else "NOT under"
        print(
            f"peak RSS at {largest} users: {peaks[largest]:.0f} MiB, {verdict} {STORAGE_RSS_TARGET_MIB} MiB"
        )


def storage_child(users: int, webhook_url: str, database_url: str) -> None:
    """One cycle into the (empty, scratch) database the parent made; print the figures as JSON."""
    result = poll_with_timeman_poller(webhook_url, users, 0, 50, database_url)
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def user_counts(value: str) -> list[int]:
    """`--users`: one count, or several separated by commas (10000,50000,100000)."""
    try:
        counts = [int(part.replace("_", "")) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected counts like 10000,50000, got {value!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive counts, got {value!r}")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode", choices=["limits", "storage", "storage-child", "emulator-child"], default="limits"
    )
    parser.add_argument(
        "--users", type=user_counts, default=None, help="users; storage mode: a list, e.g. 10000,50000,100000"
    )
    parser.add_argument("--rate", type=float, default=2.0, help="bucket drain per second (default 2)")
    parser.add_argument("--burst", type=int, default=50, help="bucket size (default 50)")
    scratch.add_server_argument(parser)
    parser.add_argument("--webhook", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)  # storage-child: the parent's scratch database
    parser.add_argument("--settings", help=argparse.SUPPRESS)  # emulator-child: EmulatorSettings as JSON
    return scratch.parse(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.mode == "limits":
        if args.users and len(args.users) > 1:
            raise scratch.ScratchError("--users: mode limits takes one count")
        run_limits(args.users[0] if args.users else 5000, args.rate, args.burst)
    elif args.mode == "storage":
        run_storage(args.users or [10000], args.postgres_server)
    elif args.mode == "storage-child":
        storage_child(args.users[0], args.webhook, args.database)
    else:
        emulator_child(args.settings)


if __name__ == "__main__":
    scratch.run(main)
