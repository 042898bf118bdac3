"""Running unattended: database outages, metrics and health, status, logs, secrets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest
from conftest import postgres_url, reset_postgres, wait_until
from helpers import free_port, snapshots_stored
from sqlalchemy import text

from poller import storage
from poller.cli import main
from poller.clients import make_clients
from poller.config import parse_config
from poller.daemon.metrics import Metrics, MetricsServer
from poller.emulator import Emulator, EmulatorSettings
from poller.poll.cycle import poll_once
from poller.spool.queue import Spool


def config_for(emulator: Emulator, users: list[int]):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "portals": [
                {
                    "name": "emu",
                    "webhook_url": emulator.webhook_url,
                    "users": users,
                    "requests_per_second": 100,
                }
            ]
        },
        {},
    )


def test_snapshots_wait_in_the_spool_file_across_a_restart(
    tmp_path: Path, emulator: Emulator, head_sqlite_file: Path
) -> None:
    shutil.copyfile(head_sqlite_file, tmp_path / "db.sqlite3")  # at head, as after `db upgrade`
    good = storage.make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    down = storage.make_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}")  # cannot be opened
    spool_file = tmp_path / "spool.jsonl"
    config = config_for(emulator, [1, 2, 3, 4])
    with Spool(spool_file) as first_spool:
        first = poll_once(make_clients(config, down), down, spool=first_spool)
    assert first.kept == 4 and not first.ok
    assert spool_file.exists()
    copy = spool_file.read_text()
    restarted = Spool(spool_file)  # a new process reads the file
    assert restarted.snapshots == 4
    second = poll_once(make_clients(config, good), good, spool=restarted)
    assert second.ok and second.users_ok == 4
    assert not spool_file.exists()
    assert snapshots_stored(good) == (8, 8)
    restarted.close()
    # A spool whose rows did reach the database before a crash replays harmlessly.
    spool_file.write_text(copy)
    assert Spool(spool_file).flush(good, "all") == 4
    assert snapshots_stored(good) == (8, 8)


def test_a_postgresql_outage_loses_and_doubles_nothing(tmp_path: Path, emulator: Emulator) -> None:
    url = postgres_url()
    if not url:
        pytest.skip("PostgreSQL tests need TIMEMAN_POLLER_TEST_POSTGRES_URL")
    reset_postgres(url)
    engine = storage.make_engine(url)
    storage.upgrade_database(engine)
    database = engine.url.database
    admin = storage.make_engine(engine.url.set(database="postgres").render_as_string(hide_password=False))
    config = config_for(emulator, [1, 2, 3])
    clients = make_clients(config, engine)
    spool = Spool(tmp_path / "spool.jsonl")
    assert poll_once(clients, engine, spool=spool).ok
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": database}
        )
    try:
        during = [poll_once(clients, engine, spool=spool) for _ in range(2)]
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    assert [report.kept for report in during] == [3, 3]
    after = poll_once(clients, engine, spool=spool)
    assert after.ok
    assert snapshots_stored(engine) == (12, 12)
    admin.dispose()
    engine.dispose()


def test_metrics_and_healthz_over_http(emulator: Emulator, engine) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    metrics = Metrics(["emu"], clock=lambda: now[0])
    clients = make_clients(config_for(emulator, [1, 2, 999]), engine, metrics=metrics)
    server = MetricsServer(metrics, "127.0.0.1", 0, max_age_seconds=60).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        poll_once(clients, engine, metrics=metrics)
        body = urllib.request.urlopen(f"{base}/metrics").read().decode()
        assert 'timeman_poller_users_stored_total{portal="emu"} 2.0' in body
        assert 'timeman_poller_errors_total{code="USER_NOT_FOUND",portal="emu"} 1.0' in body
        assert 'timeman_poller_request_seconds_count{portal="emu"} 1.0' in body
        assert 'timeman_poller_last_success_timestamp_seconds{portal="emu"} 1000.0' in body
        assert "timeman_poller_spool_rows 0.0" in body
        assert urllib.request.urlopen(f"{base}/healthz").read() == b"ok\n"
        now[0] += 61
        with pytest.raises(urllib.error.HTTPError) as stale:
            urllib.request.urlopen(f"{base}/healthz")
        assert stale.value.code == 503
        assert b"emu: last success for 61 s" in stale.value.read()
    finally:
        server.stop()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


FINISHED_RUNS = "SELECT count(*) FROM poll_runs WHERE finished_at IS NOT NULL"
UNFINISHED_RUNS = "SELECT count(*) FROM poll_runs WHERE finished_at IS NULL"


def sqlite_count(database: Path, query: str) -> int:
    """A count from a running daemon's SQLite file; 0 while the file or its tables are missing or busy."""
    if not database.exists():
        return 0
    try:
        with closing(sqlite3.connect(database, timeout=5)) as connection:
            return int(connection.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def metrics_of(port: int) -> str:
    """The daemon's /metrics, or "" while it does not answer yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def seen_enough(emulator: Emulator, database: Path, port: int) -> bool:
    """Whether the faulty daemon has been through what its test checks: token expiries, a
    fault, some history, a success of each portal that can succeed, and health failing
    (after its max age) for the one that cannot."""
    rows = (
        "SELECT (SELECT count(*) FROM snapshots) + (SELECT count(*) FROM poll_errors) + count(*) "
        "FROM poll_runs"
    )
    if emulator.stats.token_refreshes < 2 or not sum(emulator.stats.faults.values()):
        return False
    if sqlite_count(database, rows) <= 100:
        return False
    body = metrics_of(port)
    if not all(f'last_success_timestamp_seconds{{portal="{name}"}}' in body for name in ("hook", "oauth")):
        return False
    health_status, health_text = get(f"http://127.0.0.1:{port}/healthz")
    return health_status == 503 and "wrong: no successful cycle" in health_text


def test_the_daemon_with_every_fault_leaks_no_secret_and_serves_health(tmp_path: Path) -> None:
    settings = EmulatorSettings(
        users=40, rate=5, burst=10, fault_500=0.1, fault_html=0.05, fault_drop=0.05, fault_truncated=0.05,
        fault_huge=0.02, fault_slow=0.02, slow_seconds=0.3, token_lifetime=1.0, seed=5,
    )  # fmt: skip
    emulator = Emulator(settings).start()
    port = free_port()
    database = tmp_path / "daemon.sqlite3"
    config = tmp_path / "config.toml"
    wrong = emulator.webhook_url.replace(settings.webhook_secret, "wrongwebhooksecret")
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f"[schedule]\ninterval_seconds = 1\n"
        f"[http]\nmax_retries = 2\n"
        f"[metrics]\nport = {port}\n"
        f'[storage]\nspool_path = "{tmp_path / "spool.jsonl"}"\n'
        f'[[portals]]\nname = "hook"\nwebhook_url = "{emulator.webhook_url}"\nusers = "all"\n'
        f'[[portals]]\nname = "wrong"\nwebhook_url = "{wrong}"\nusers = [1, 2]\n'
        f'[[portals]]\nname = "oauth"\ndomain = "{emulator.base_url}"\n'
        f'access_token = "{settings.access_token}"\nrefresh_token = "{settings.refresh_token}"\n'
        f'client_id = "{settings.client_id}"\nclient_secret = "{settings.client_secret}"\n'
        f'oauth_url = "{emulator.oauth_url}"\nusers = [1, 2, 3, 999]\n'
    )
    os.chmod(config, 0o644)
    log_file = tmp_path / "daemon.log"
    with log_file.open("w") as log:
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "poller",
                "--log-level",
                "DEBUG",
                "--log-format",
                "json",
                "run",
                "-c",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: seen_enough(emulator, database, port),
                timeout=60,
                what="token expiries, a fault, 100 rows, successes and health failing for 'wrong'",
            )
            health_status, health_text = get(f"http://127.0.0.1:{port}/healthz")
            metrics_text = (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            )
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        finally:
            daemon.kill()
            emulator.stop()
    output = log_file.read_text()
    assert daemon.returncode == 0, output[-2000:]
    # The portal with the wrong secret never succeeds: health fails and names it; the
    # others did succeed (how recently depends on the faults, so that is not asserted).
    assert health_status == 503
    assert "wrong: no successful cycle" in health_text
    assert 'timeman_poller_last_success_timestamp_seconds{portal="hook"}' in metrics_text
    assert 'timeman_poller_last_success_timestamp_seconds{portal="oauth"}' in metrics_text
    assert 'timeman_poller_last_success_timestamp_seconds{portal="wrong"}' not in metrics_text
    assert 'timeman_poller_users_stored_total{portal="hook"}' in metrics_text
    assert emulator.stats.token_refreshes >= 2
    assert sum(emulator.stats.faults.values()) > 0
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("can be read by other users" in line["message"] for line in lines)
    engine = storage.make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        rows = []
        for table in ("snapshots", "poll_errors", "poll_runs"):
            rows += [str(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}"))]
        token_rows = connection.execute(text("SELECT access_token, refresh_token FROM oauth_tokens")).all()
    engine.dispose()
    secrets = [settings.webhook_secret, "wrongwebhooksecret", settings.access_token, settings.refresh_token]
    secrets += [settings.client_secret, *token_rows[0]]
    assert len(rows) > 100
    for secret in secrets:
        assert secret not in output, secret
        assert not any(secret in row for row in rows), secret


def test_status_shows_cycles_and_errors(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "status.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n'
        f'[storage]\nspool_path = "{tmp_path / "spool.jsonl"}"\n'
        f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = [1, 2, 777]\n'
    )
    config.chmod(0o600)
    assert main(["poll", "--migrate", "-c", str(config)]) == 1
    capsys.readouterr()
    assert main(["status", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert "last 1 cycle (UTC):" in out
    assert "2 ok       1 failed" in out
    assert "emu: USER_NOT_FOUND x1 (1 user)" in out
    assert "User not found" in out
    assert main(["status", "-c", str(config), "--format", "json"]) == 1
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["ok"] is False
    assert [(run["users_ok"], run["users_failed"]) for run in as_json["runs"]] == [(2, 1)]
    assert [(e["portal"], e["code"], e["count"], e["users"]) for e in as_json["errors"]] == [
        ("emu", "USER_NOT_FOUND", 1, 1)
    ]


def test_a_sigkill_mid_cycle_leaves_no_partial_or_doubled_rows(tmp_path: Path) -> None:
    emulator = Emulator(EmulatorSettings(users=120, rate=0, fault_slow=0.3, slow_seconds=0.4, seed=9)).start()
    database = tmp_path / "kill.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n[schedule]\ninterval_seconds = 1\n'
        f'[storage]\nspool_path = "{tmp_path / "spool.jsonl"}"\n'
        f'[[portals]]\nname = "a"\nwebhook_url = "{emulator.webhook_url}"\nusers = {list(range(1, 101))}\n'
        f"requests_per_second = 100\n"
        f'[[portals]]\nname = "b"\nwebhook_url = "{emulator.webhook_url}"\nusers = {list(range(1, 121))}\n'
        f"requests_per_second = 100\n"
    )
    command = [sys.executable, "-m", "poller", "run", "-c", str(config)]
    try:
        killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(
            lambda: (
                sqlite_count(database, FINISHED_RUNS) >= 2 and sqlite_count(database, UNFINISHED_RUNS) >= 1
            ),
            timeout=60,
            what="two finished cycles and one under way",
        )  # a cycle under way: the kill cuts it
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        restarted = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        before = sqlite_count(database, FINISHED_RUNS)
        wait_until(
            lambda: sqlite_count(database, FINISHED_RUNS) >= before + 2,
            timeout=60,
            what="two cycles of the restarted daemon",
        )
        restarted.send_signal(signal.SIGTERM)
        _, stderr = restarted.communicate(timeout=60)
    finally:
        emulator.stop()
    assert restarted.returncode == 0, stderr
    engine = storage.make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        per_portal = dict(
            connection.execute(text("SELECT portal, count(*) FROM snapshots GROUP BY portal")).all()
        )
        unfinished = connection.execute(
            text("SELECT count(*) FROM poll_runs WHERE finished_at IS NULL")
        ).scalar_one()
        counted = dict(
            connection.execute(
                text(
                    "SELECT portal, sum(users_ok) FROM poll_runs "
                    "WHERE finished_at IS NOT NULL GROUP BY portal"
                )
            ).all()
        )
    rows, distinct = snapshots_stored(engine)
    engine.dispose()
    assert rows == distinct  # nothing doubled
    # Each portal's cycle is one part (under 500 users): the killed one wrote all or nothing;
    # the SIGTERM may cut a cycle after a batch, and its run counts what it stored.
    assert per_portal["a"] - counted["a"] in (0, 100) and per_portal["b"] - counted["b"] in (0, 120)
    assert per_portal["a"] >= 100
    assert unfinished <= 2  # at most the cycle of each portal that was killed
