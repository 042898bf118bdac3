"""Soak and fault run: the daemon against faulty portals, hostile values and a PostgreSQL outage.

Runs `timeman-poller run` (a subprocess) for a bounded time against emulators in processes
of their own:

- the main emulator, 2,000 users behind two portals (a webhook and an OAuth app with
  20-second tokens), with every request fault injected (500s, HTML 502s, dropped
  connections, truncated, huge and nested-bracket bodies, slow answers) and hostile values in
  a few users' answers (IP_OPEN of 100 characters, NUL bytes, DURATION 99999999:00:00,
  TZ_OFFSET 99999999999999, TIME_START in the year 9999, STATUS of 40 characters); its
  operating-time budget is lifted so that every cycle asks every user;
- a trickling portal (every answer announces 100,000 bytes and sends one a second);
- a hung portal (every connection accepted, never answered).

`--replicas N` runs N daemons sharing the portals (each with its own spool). PostgreSQL is
taken away in the middle and given back; then SIGTERM. It prints: cycles, snapshots the main
emulator answered, stored, lost and duplicated; gaps (polls missed): the intervals of the
shared trigger grid in which a healthy portal got no answer stored, between its first and last
one (must be 0: the holders poll through the outage into their spools); quarantined (BAD_VALUE
and BAD_RESPONSE error rows, values nulled or cut with a warning, dead-lettered spool rows);
the healthy portals' achieved interval against the configured one; what the trickling and
hung portals got; the time SIGTERM took; the daemons' RSS (the largest of them at start,
before the outage, 10 s after it, at the end, at most); and secrets found in their logs
(must be 0).

    $ python bench/soak.py --seconds 180 --users 2000 --replicas 3 --outage proxy \\
          --postgres-server postgresql+psycopg://postgres@127.0.0.1/postgres

Needs a PostgreSQL server (--postgres-server): the soak creates its own database there and
drops it at the end. `--outage proxy` (the default) connects the daemons through a loopback
proxy in this process and cuts it: every connection closed, new ones refused, nothing else on
the server touched; `--outage block` refuses connections to the soak's own database only;
`--outage restart` stops and starts the whole cluster with pg_ctlcluster (root; every
database on it goes away for a while).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from poller import storage
from poller.daemon.triggers import GRID_ORIGIN
from poller.models import PollError, PollRun
from poller.spool.files import sibling
from poller.spool.lines import read_line

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent / "tests"))
import scratch
from tcp_proxy import TcpProxy
from throughput import RunningEmulator, run_emulator

FAULTS = {
    "fault_500": 0.05,
    "fault_html": 0.03,
    "fault_drop": 0.03,
    "fault_truncated": 0.02,
    "fault_huge": 0.01,
    "fault_slow": 0.02,
    "fault_nested": 0.01,
}
HOSTILE = ("long_ip", "nul", "huge_duration", "huge_offset", "far_date", "long_status")
HEALTHY = ("hook", "oauth")
SIDE_USERS = 50  # users of the trickling and the hung portal
READ_TIMEOUT = 10
LONG_HEX = re.compile(r"\b[0-9a-f]{24,}\b")  # what the emulator's tokens look like, rotated ones too


class Run(NamedTuple):
    """One poll_runs row of a portal."""

    started_at: datetime
    finished_at: datetime | None
    outcome: str | None


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def outage(url: str, server_url: str, method: str, seconds: float, proxy: TcpProxy | None) -> None:
    """Take PostgreSQL away for `seconds`: cut the proxy, stop the cluster, or refuse the soak's database."""
    if proxy is not None:
        proxy.cut()
        time.sleep(seconds)
        proxy.restore()
        return
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


def hostile_users(users: int) -> dict[int, list[str]]:
    """One webhook user per hostile kind, and one OAuth user with all of them at once."""
    hostile = {number: [kind] for number, kind in enumerate(HOSTILE, 1)}
    hostile[users // 2 + 1] = list(HOSTILE)
    return hostile


def write_config(
    path: Path,
    url: str,
    interval: int,
    users: int,
    main: RunningEmulator,
    trickle: RunningEmulator,
    hung: RunningEmulator,
    read_timeout: float,
    spool: Path,
) -> None:
    half = users // 2
    side = list(range(1, SIDE_USERS + 1))
    path.write_text(
        f'[database]\nurl = "{url}"\n[schedule]\ninterval_seconds = {interval}\n'
        f"[http]\nmax_retries = 6\nread_timeout_seconds = {read_timeout}\n"
        f'[storage]\nspool_path = "{spool}"\n[reconcile]\ndays = 0\n'
        f'[[portals]]\nname = "hook"\nwebhook_url = "{main.webhook_url}"\nusers = {list(range(1, half + 1))}\n'
        f"requests_per_second = 10\nburst = 50\n"
        f'[[portals]]\nname = "oauth"\ndomain = "{main.base_url}"\naccess_token = "{main.access_token}"\n'
        f'refresh_token = "{main.refresh_token}"\nclient_id = "{main.client_id}"\n'
        f'client_secret = "{main.client_secret}"\noauth_url = "{main.oauth_url}"\n'
        f"users = {list(range(half + 1, users + 1))}\nrequests_per_second = 10\nburst = 50\n"
        f'[[portals]]\nname = "trickle"\nwebhook_url = "{trickle.webhook_url}"\nusers = {side}\n'
        f'[[portals]]\nname = "hung"\nwebhook_url = "{hung.webhook_url}"\nusers = {side}\n'
    )
    os.chmod(path, 0o600)


def run_soak(
    users: int,
    seconds: float,
    interval: int,
    url: str,
    server_url: str,
    method: str,
    workdir: Path,
    read_timeout: float = READ_TIMEOUT,
    replicas: int = 1,
) -> dict[str, Any]:
    """Run the scenario on `url`, an empty scratch database on `server_url`; return the figures."""
    with ExitStack() as stack:
        main = stack.enter_context(
            run_emulator(
                users=users,
                rate=20,
                burst=100,
                token_lifetime=20,
                operating_limit=0,
                hostile=hostile_users(users),
                **FAULTS,
            )
        )
        trickle = stack.enter_context(
            run_emulator(
                users=SIDE_USERS, rate=0, fault_trickle=1.0, trickle_interval=1.0, trickle_length=100_000
            )
        )
        hung = stack.enter_context(run_emulator(users=SIDE_USERS, rate=0, fault_hang=1.0))
        proxy = None
        daemon_url = url
        if method == "proxy":
            target = make_url(url)
            proxy = stack.enter_context(TcpProxy(target.port or 5432, target.host or "127.0.0.1"))
            daemon_url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        spools = [workdir / f"spool-{n}.jsonl" for n in range(replicas)]
        log_paths = [workdir / f"daemon-{n}.log" for n in range(replicas)]
        daemons = []
        for n, (spool, log_path) in enumerate(zip(spools, log_paths, strict=True)):
            config = workdir / f"soak-{n}.toml"
            write_config(config, daemon_url, interval, users, main, trickle, hung, read_timeout, spool)
            with log_path.open("w") as log_file:
                daemons.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "poller", "run", "-c", str(config)],
                        stdout=log_file,
                        stderr=log_file,
                    )
                )
        try:
            timeline = watch(daemons, seconds, url, server_url, method, proxy)
        finally:
            for daemon in daemons:
                daemon.kill()
                daemon.wait()
        stats = main.stats()
        secrets = [s for emulator in (main, trickle, hung) for s in emulator.secrets]
    log = "".join(path.read_text() for path in log_paths)
    figures = read_database(url, spools)
    answered = stats["statuses_answered"]
    stored, distinct = figures["stored"], figures["distinct"]
    return {
        **timeline,
        "requests": stats["requests"],
        "faults": stats["faults"],
        "expected": answered,
        "stored": stored,
        "lost": answered - distinct - figures["quarantined_snapshots"],
        "duplicates": stored - distinct,
        "gaps": missed_polls(figures["answer_times"], interval, timeline["outage"]),
        "values_warned": len(re.findall(r"WARNING poller\.poll\.portal_cycle: portal \w+ user \d+:", log)),
        "outage_lines": {
            phrase: log.count(phrase)
            for phrase in (
                "database unavailable",
                "database available again",
                "lock connection lost",
                "lock connection open again",
                "handed over",
            )
        },
        **{k: v for k, v in figures.items() if k not in ("stored", "distinct", "answer_times")},
        "hard_stop": "stopping now" in log,  # the grace ran out: something outlived its deadline
        "log": log,
        "secrets": secrets,
        "secrets_in_log": sum(s in log for s in secrets),
        "hex_in_log": len(LONG_HEX.findall(log)),
    }


def watch(
    daemons: list[subprocess.Popen[bytes]],
    seconds: float,
    url: str,
    server_url: str,
    method: str,
    proxy: TcpProxy | None,
) -> dict[str, Any]:
    """Sample the daemons' RSS each second, cause the outage half-way, SIGTERM them at the end."""
    started = time.monotonic()
    samples: list[float] = []
    rss_before = rss_after = 0.0
    outage_from = outage_to = None
    back_at = 0.0
    while time.monotonic() - started < seconds and all(d.poll() is None for d in daemons):
        time.sleep(1)
        samples.append(max(rss_mib(daemon.pid) for daemon in daemons))
        if outage_from is None and time.monotonic() - started > seconds / 2:
            rss_before = samples[-1]
            outage_from = datetime.now(UTC)
            outage(url, server_url, method, min(10.0, seconds / 6), proxy)
            wait_for_postgres(url, time.monotonic() + 60)
            outage_to, back_at = datetime.now(UTC), time.monotonic()
        if back_at and not rss_after and time.monotonic() - back_at > 10:
            rss_after = samples[-1]  # the spool written back
    signalled = time.monotonic()
    for daemon in daemons:
        daemon.send_signal(signal.SIGTERM)
    for daemon in daemons:
        with suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=120)
    exits = [daemon.poll() for daemon in daemons]
    return {
        "seconds": round(signalled - started, 1),
        "daemon_exit": exits[0] if len(set(exits)) == 1 else exits,
        "sigterm_seconds": round(time.monotonic() - signalled, 1),
        "outage": (outage_from, outage_to),
        "rss_start_mib": round(samples[0] if samples else 0.0, 1),
        "rss_warm_mib": round(samples[len(samples) // 5] if samples else 0.0, 1),  # after the first cycles
        "rss_before_outage_mib": round(rss_before, 1),
        "rss_after_outage_mib": round(rss_after, 1),
        "rss_end_mib": round(samples[-1] if samples else 0.0, 1),
        "rss_max_mib": round(max(samples, default=0.0), 1),
    }


def missed_polls(
    answer_times: dict[str, list[datetime]], interval: int, outage: tuple[Any, Any]
) -> dict[str, int]:
    """Intervals of the trigger grid with no stored answer of a healthy portal, between its first
    and last answer: overall and in the outage (from its start to one interval after its end).

    Every replica fires a portal's poll at GRID_ORIGIN + k × interval, so each cycle's answers
    fall in its own slot (a cycle longer than an interval fills the next slot too: not counted).
    """
    began, ended = outage
    missed = during = 0
    for times in answer_times.values():
        slots = {int((t - GRID_ORIGIN).total_seconds() // interval) for t in times}
        if not slots:
            continue
        for slot in range(min(slots), max(slots) + 1):
            if slot in slots:
                continue
            missed += 1
            at = GRID_ORIGIN + timedelta(seconds=slot * interval)
            if (
                began is not None
                and began <= at + timedelta(seconds=interval)
                and at <= ended + timedelta(seconds=interval)
            ):
                during += 1
    return {"all": missed, "outage": during}


def read_database(url: str, spools: list[Path]) -> dict[str, Any]:
    """What the database and the dead-letter files hold after the run."""
    engine = storage.make_engine(url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT count(*) FROM snapshots WHERE portal IN ('hook', 'oauth')")
            ).scalar_one()
            distinct = connection.execute(
                text(
                    "SELECT count(*) FROM (SELECT DISTINCT portal, user_id, polled_at FROM snapshots"
                    " WHERE portal IN ('hook', 'oauth')) d"
                )
            ).scalar_one()
            runs = connection.execute(
                select(PollRun.portal, PollRun.started_at, PollRun.finished_at, PollRun.outcome).order_by(
                    PollRun.portal, PollRun.started_at
                )
            ).all()
            errors = connection.execute(
                select(PollError.portal, PollError.code, func.count()).group_by(
                    PollError.portal, PollError.code
                )
            ).all()
            answers = connection.execute(
                text("SELECT DISTINCT portal, polled_at FROM snapshots WHERE portal IN ('hook', 'oauth')")
            ).all()
            bad_values = connection.execute(
                select(PollError.portal, PollError.user_id, PollError.occurred_at).where(
                    PollError.code == storage.BAD_VALUE
                )
            ).all()
    finally:
        engine.dispose()
    dead_snapshots: set[tuple[str, int, datetime]] = set()
    dead_rows = 0
    for spool in spools:
        snapshots, rows = read_dead_letters(sibling(spool, ".dead.jsonl"))
        dead_snapshots |= snapshots
        dead_rows += rows
    answer_times: dict[str, list[datetime]] = defaultdict(list)
    for portal, polled_at in answers:
        answer_times[str(portal)].append(polled_at.astimezone(UTC))
    refused = {(p, u, t.astimezone(UTC)) for p, u, t in bad_values if p in HEALTHY}
    refused |= {key for key in dead_snapshots if key[0] in HEALTHY}
    by_portal: dict[str, list[Run]] = defaultdict(list)
    for row in runs:
        by_portal[str(row.portal)].append(Run(row.started_at, row.finished_at, row.outcome))
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    for portal, code, count in errors:
        codes[portal][code] = count
    return {
        "stored": stored,
        "distinct": distinct,
        "cycles": len(runs),
        "runs": dict(by_portal),
        "errors": dict(sum(codes.values(), Counter())),
        "errors_by_portal": {portal: dict(counter) for portal, counter in codes.items()},
        "bad_value_rows": len(bad_values),
        "bad_response_rows": sum(counter["BAD_RESPONSE"] for counter in codes.values()),
        "dead_lettered_rows": dead_rows,
        "quarantined_snapshots": len(refused),
        "answer_times": dict(answer_times),
    }


def read_dead_letters(path: Path) -> tuple[set[tuple[str, int, datetime]], int]:
    """The snapshots in the dead-letter file (portal, user, polled_at) and how many rows it holds."""
    keys: set[tuple[str, int, datetime]] = set()
    rows = 0
    if not path.exists():
        return keys, rows
    for line in path.read_bytes().splitlines():
        _, entry = read_line(line)
        if entry is not None:
            rows += entry.rows
            keys |= {(s.portal, s.user_id, s.polled_at.astimezone(UTC)) for s in entry.snapshots}
    return keys, rows


def achieved_intervals(
    runs: dict[str, list[Run]], interval: int, outage: tuple[Any, Any]
) -> dict[str, float]:
    """The gaps between the healthy portals' cycle starts: mean, p95 and max; and without the outage.

    Also how long their cycles took (a cycle longer than the interval skips a trigger).

    A gap that overlaps the outage (plus one interval) is left out of the second figure: the
    cycles polled into the spool while the database was away have no poll_runs row (their
    answers are in `missed_polls`).
    """
    began, ended = outage
    gaps: list[float] = []
    calm: list[float] = []
    for portal in HEALTHY:
        for a, b in pairwise(run.started_at for run in runs.get(portal, [])):
            gap = (b - a).total_seconds()
            gaps.append(gap)
            if began is None or b < began or a > ended + timedelta(seconds=interval):
                calm.append(gap)
    seconds = [
        (run.finished_at - run.started_at).total_seconds()
        for portal in HEALTHY
        for run in runs.get(portal, [])
        if run.finished_at is not None
    ]
    return {
        "cycle_mean": statistics.fmean(seconds) if seconds else math.nan,
        "cycle_p95": percentile(seconds, 0.95),
        "mean": statistics.fmean(gaps) if gaps else math.nan,
        "p95": percentile(gaps, 0.95),
        "max": max(gaps, default=math.nan),
        "calm_mean": statistics.fmean(calm) if calm else math.nan,
        "calm_p95": percentile(calm, 0.95),
    }


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))] if ordered else math.nan
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--outage", choices=["proxy", "restart", "block"], default="proxy")
    parser.add_argument("--replicas", type=int, default=1, help="daemons sharing the portals")
    parser.add_argument(
        "--read-timeout", type=float, default=READ_TIMEOUT, help="[http] read_timeout_seconds"
    )
    parser.add_argument("--keep-log", type=Path, help="write the daemons' logs here")
    scratch.add_server_argument(parser, required=True)
    return scratch.parse(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as workdir,
        scratch.scratch_database(args.postgres_server, "soak") as url,
    ):
        r = run_soak(
            args.users,
            args.seconds,
            args.interval,
            url,
            args.postgres_server,
            args.outage,
            Path(workdir),
            args.read_timeout,
            args.replicas,
        )
    if args.keep_log:
        args.keep_log.write_text(r["log"])
    print(
        f"{r['seconds']} s, {args.users} users on 2 portals + a trickling and a hung portal of {SIDE_USERS}, "
        f"interval {args.interval} s, {args.replicas} replica{'s' * (args.replicas > 1)}, "
        f"PostgreSQL outage: {args.outage}"
    )
    print(
        f"SIGTERM to exit: {r['sigterm_seconds']} s (limit {args.read_timeout + 10:g} s), exit code "
        f"{r['daemon_exit']}{', the grace ran out (stopping now)' if r['hard_stop'] else ''}"
    )
    print(
        f"cycles {r['cycles']}, HTTP requests to the main emulator {r['requests']}, faults injected {r['faults']}"
    )
    print(
        f"snapshots answered {r['expected']}, stored {r['stored']}, lost {r['lost']}, "
        f"duplicated {r['duplicates']}"
    )
    print(
        f"gaps (polls missed) of the healthy portals: {r['gaps']['all']}, "
        f"of which around the outage {r['gaps']['outage']}"
    )
    print(
        f"quarantined: {r['bad_value_rows']} BAD_VALUE rows, {r['bad_response_rows']} BAD_RESPONSE rows, "
        f"{r['dead_lettered_rows']} dead-lettered spool rows; {r['values_warned']} values nulled or cut "
        f"with a warning (hostile users {sorted(hostile_users(args.users))})"
    )
    print(f"errors by code {r['errors']}")
    got = achieved_intervals(r["runs"], args.interval, r["outage"])
    print(
        f"healthy portals (hook, oauth): configured interval {args.interval} s, achieved mean "
        f"{got['mean']:.2f} s, p95 {got['p95']:.2f} s, max {got['max']:.1f} s; outside the outage mean "
        f"{got['calm_mean']:.2f} s, p95 {got['calm_p95']:.2f} s; their cycles took {got['cycle_mean']:.2f} s "
        f"on average, p95 {got['cycle_p95']:.2f} s"
    )
    for portal in ("trickle", "hung"):
        outcomes = Counter(run.outcome or "open" for run in r["runs"].get(portal, []))
        print(
            f"{portal} portal: {sum(outcomes.values())} cycles {dict(outcomes)}, "
            f"error rows {r['errors_by_portal'].get(portal, {})}"
        )
    print(f"outage in the log: {r['outage_lines']}")
    print(
        f"daemon RSS MiB: {r['rss_start_mib']} at start, {r['rss_warm_mib']} after the first cycles, "
        f"{r['rss_before_outage_mib']} before the outage, {r['rss_after_outage_mib']} 10 s after it, "
        f"{r['rss_end_mib']} at the end, {r['rss_max_mib']} at most"
    )
    print(
        f"secrets in the daemon's log: {r['secrets_in_log']} (and {r['hex_in_log']} token-like hex strings)"
    )


if __name__ == "__main__":
    scratch.run(main)
