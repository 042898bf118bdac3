"""The daemon: each portal on its own job, a database down at start, the directory, signals.

Which jobs there are and when they fire is read without threads in test_daemon_jobs.py. Here:
in-process where a step can be called with a clock (`Daemon.poll`, `Daemon.reconcile`), with
the real scheduler where only its threads show the point (a hung portal beside a healthy
one), and real processes where signals, exit codes and SIGKILL are the point. Waits are for
conditions, with deadlines. SQLite only where the database is incidental (a hung portal,
signals, the API); a database down at start on both, since each is down in its own way.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeEmulator, make_config, on_sqlite_only, portal, wait_until
from daemons import make_daemon
from sqlalchemy import Engine, func, select, text

from poller import storage
from poller.clock import ManualClock
from poller.config import Config
from poller.daemon import shutdown
from poller.daemon.jobs import job_specs
from poller.daemon.metrics import Metrics
from poller.emulator import Emulator
from poller.models import PollRun, Snapshot
from poller.spool.queue import Spool

FAST_HTTP: dict[str, object] = {"read_timeout_seconds": 2, "max_retries": 4}
READ_TIMEOUT = 2
# The daemon process only has to be stopped: a shorter deadline for its hung requests.
PROCESS_READ_TIMEOUT = 1
PROCESS_HTTP: dict[str, object] = {"read_timeout_seconds": PROCESS_READ_TIMEOUT, "max_retries": 4}


def count(engine: Engine, *where: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Snapshot).where(*where)).scalar_one())


def runs(engine: Engine, portal_name: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(PollRun.__table__).where(PollRun.portal == portal_name).order_by(PollRun.id)
        ).mappings()
        return [dict(row) for row in rows]


def finished(engine: Engine, portal_name: str) -> int:
    return sum(run["outcome"] == "finished" for run in runs(engine, portal_name))


# -- in process ----------------------------------------------------------------------------


@on_sqlite_only
def test_a_hung_portal_delays_neither_a_healthy_one_nor_the_stop(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    healthy = make_emulator(users=5, rate=0)
    hung = make_emulator(users=5, fault_hang=1.0)
    config = make_config(
        portal(healthy, [1, 2, 3], name="healthy", interval_seconds=1),
        portal(hung, [1, 2], name="hung", interval_seconds=1),
        database_url=database_url,
        http=FAST_HTTP,
        directory={"refresh_hours": 0},
    )
    daemon = make_daemon(config, engine, Spool(tmp_path / "spool.jsonl"))
    daemon.start()
    try:
        wait_until(lambda: finished(engine, "healthy") >= 3, timeout=20, what="three healthy cycles")
        # Each answer of the hung portal takes its 2 s deadline, and it is retried: its first
        # cycle is still running while the healthy portal keeps its 1 s interval.
        assert runs(engine, "hung")[0]["outcome"] is None
        assert "hung" in daemon.describe_busy()
    finally:
        started = time.monotonic()
        daemon.stop()
        took = time.monotonic() - started
    assert took < READ_TIMEOUT + 10
    (hung_run,) = runs(engine, "hung")
    assert (hung_run["outcome"], hung_run["users_ok"], hung_run["users_failed"]) == ("interrupted", 0, 2)
    assert all(run["outcome"] is not None for run in runs(engine, "healthy"))


@contextmanager
def database_down_then_up(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A URL whose database cannot be reached, and a function that makes it reachable."""
    if database_url.startswith("sqlite"):
        in_the_way = tmp_path / "db.sqlite3"  # a directory where the file should be: unable to open
        in_the_way.mkdir()
        yield f"sqlite:///{in_the_way}", lambda: in_the_way.rmdir()
        return
    target = storage.make_engine(database_url)
    name = target.url.database
    admin = storage.make_engine(target.url.set(database="postgres").render_as_string(hide_password=False))
    target.dispose()

    def allow(allowed: bool) -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                connection.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                    {"d": name},
                )

    allow(False)
    try:
        yield database_url, lambda: allow(True)
    finally:
        allow(True)
        admin.dispose()


def test_a_database_down_at_start_is_waited_for_while_polling_into_the_spool(
    database_url: str, make_emulator: MakeEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(users=5, rate=0)
    caplog.set_level(logging.INFO)
    with database_down_then_up(database_url, tmp_path) as (url, bring_up):
        engine = storage.make_engine(url)
        config = make_config(
            portal(emulator, [1, 2, 3], interval_seconds=1), database_url=url, directory={"refresh_hours": 0}
        )
        spool = Spool(tmp_path / "spool.jsonl")
        daemon = make_daemon(config, engine, spool)
        daemon.start()
        try:
            wait_until(lambda: spool.snapshots >= 6, timeout=20, what="two cycles kept in the spool")
            assert not daemon.database_ready
            bring_up()
            wait_until(lambda: daemon.database_ready and not spool, timeout=20, what="the spool written")
            wait_until(lambda: finished(engine, "emu") >= 1, timeout=20, what="a cycle with its run row")
        finally:
            daemon.stop()
        with engine.connect() as connection:
            distinct = connection.execute(
                select(func.count()).select_from(
                    select(Snapshot.user_id, Snapshot.polled_at).distinct().subquery()
                )
            ).scalar_one()
        assert count(engine) == distinct >= 6 + 3  # kept cycles and later ones, none doubled
        engine.dispose()
    complaints = [r.getMessage() for r in caplog.records if "polling into the spool" in r.getMessage()]
    assert len(complaints) == 1  # said once, tried every cycle
    assert any("database ready" in r.getMessage() for r in caplog.records)


def test_the_directory_is_read_at_start_and_feeds_users_all(
    engine: Engine,
    database_url: str,
    make_emulator: MakeEmulator,
    clock: ManualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = make_emulator(users=120, department_scope=False, clock=clock)
    config = make_config(portal(emulator, "all"), database_url=database_url, directory={"refresh_hours": 24})
    daemon = make_daemon(config, engine, Spool(tmp_path / "spool.jsonl"), clock=clock)
    (client,) = daemon.clients
    assert daemon.ensure_database()
    first = daemon.poll(client)
    assert first is not None and (first.users_ok, first.requests) == (119, 3)  # ids from the directory
    assert storage.get_directory_user_ids(engine, "emu") == [u for u in range(1, 121) if u != 97]
    user_pages = emulator.stats.calls["user.get"]
    second = daemon.poll(client)
    assert second is not None and second.requests == 3
    assert emulator.stats.calls["user.get"] == user_pages  # not due yet
    clock.advance(25 * 3600)
    daemon.poll(client)
    assert emulator.stats.calls["user.get"] == 2 * user_pages  # refreshed after refresh_hours
    scope_warnings = [r for r in caplog.records if "no `department` scope" in r.getMessage()]
    assert len(scope_warnings) == 1


def test_the_daily_reconcile_reads_records_and_reports_it(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock, tmp_path: Path
) -> None:
    emulator = make_emulator(users=5, clock=clock)
    config = make_config(portal(emulator, [1, 2, 3]), database_url=database_url, reconcile={"days": 2})
    metrics = Metrics(["emu"], clock=lambda: 1234.0)
    daemon = make_daemon(config, engine, Spool(tmp_path / "spool.jsonl"), clock=clock, metrics=metrics)
    (client,) = daemon.clients
    assert daemon.ensure_database()
    daemon.reconcile(client)
    assert emulator.stats.calls["timeman.record.list"] >= 3
    last_success = "timeman_poller_reconcile_last_success_timestamp_seconds"
    assert metrics.registry.get_sample_value(last_success, {"portal": "emu"}) == 1234.0


# -- real processes: signals, exit codes, SIGKILL --------------------------------------


def write_config(
    path: Path, database_url: str, portals: list[tuple[str, Emulator, object]], **tables: dict[str, object]
) -> Path:
    """A config file: `portals` as (name, emulator, users); `tables` as [name] key = value."""
    lines = [
        f'[database]\nurl = "{database_url}"',
        f'[storage]\nspool_path = "{path.parent / "spool.jsonl"}"',
    ]
    tables.setdefault("directory", {"refresh_hours": 0})
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {value!r}" for key, value in values.items()]
    for name, emulator, users in portals:
        lines.append(f'[[portals]]\nname = "{name}"\nwebhook_url = "{emulator.webhook_url}"\nusers = {users}')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def start_poller(command: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "poller", command, "-c", str(config)], stdout=output, stderr=output
        )


@on_sqlite_only
def test_run_stops_within_the_request_deadline_with_a_hung_portal_and_a_second_ctrl_c_at_once(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    healthy = make_emulator(users=5, rate=0)
    hung = make_emulator(users=5, fault_hang=1.0)
    portals: list[tuple[str, Emulator, object]] = [("healthy", healthy, [1, 2]), ("hung", hung, [1, 2])]
    config = write_config(
        tmp_path / "config.toml", database_url, portals, http=PROCESS_HTTP, schedule={"interval_seconds": 1}
    )
    deadline = PROCESS_READ_TIMEOUT + 10

    # One Ctrl-C: the hung portal's request ends at its deadline, its cycle is closed as cut.
    process = start_poller("run", config, tmp_path / "first.log")
    try:
        wait_until(lambda: finished(engine, "healthy") >= 1 and hung.stats.faults["hang"] >= 1, timeout=30)
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = process.wait(timeout=deadline + 20)
        took = time.monotonic() - sent
    finally:
        process.kill()
    output = (tmp_path / "first.log").read_text()
    assert (code, took < deadline) == (130, True), output[-2000:]
    assert "finishing the cycle; Ctrl-C again to stop now" in output and "Traceback" not in output
    assert runs(engine, "hung")[-1]["outcome"] == "interrupted"

    # Two Ctrl-C: the second ends it at once; a third finds nothing to interrupt.
    hangs = hung.stats.faults["hang"]
    process = start_poller("run", config, tmp_path / "second.log")
    try:
        wait_until(lambda: hung.stats.faults["hang"] > hangs, timeout=30, what="the hung portal asked again")
        process.send_signal(signal.SIGINT)
        wait_until(lambda: "Ctrl-C again" in (tmp_path / "second.log").read_text(), timeout=10)
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        process.kill()
    output = (tmp_path / "second.log").read_text()
    assert (code, took < 2) == (130, True), output[-2000:]
    assert "stopping now" in output
    assert "Traceback" not in output and "Exception ignored" not in output


@on_sqlite_only
def test_the_daemon_api_for_tests_and_replicas(
    engine: Engine, make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    """Start a Daemon from a test, wait for its cycles, stop it, and read its jobs, counters and metrics.

    Every job spec is scheduled, and each portal's poll runs at once at start, then on its own
    trigger (the schedule itself is read without threads in test_daemon_jobs.py).
    """
    emulator = make_emulator(users=5, rate=0)
    config: Config = make_config(
        portal(emulator, [1, 999], interval_seconds=1),
        portal(emulator, [3], name="yearly", cron="0 0 1 1 *"),
        directory={"refresh_hours": 0},
    )
    metrics = Metrics(["emu", "yearly"])
    daemon = make_daemon(config, engine, Spool(tmp_path / "s"), metrics=metrics, replica="test:1")
    daemon.start()
    try:
        assert set(daemon.jobs()) == {spec.id for spec in job_specs(config)}
        wait_until(lambda: daemon.cycles["emu"] >= 2, timeout=20, what="two cycles")
    finally:
        daemon.stop()
    assert daemon.jobs() == {}
    assert (daemon.cycles["yearly"], finished(engine, "yearly")) == (1, 1)  # at start only
    cycles = daemon.cycles["emu"]
    assert (daemon.last_outcome["emu"].users_ok, daemon.last_outcome["emu"].users_failed) == (1, 1)
    assert {run["replica"] for run in runs(engine, "emu")} == {"test:1"}
    value = metrics.registry.get_sample_value
    assert value("timeman_poller_users_stored_total", {"portal": "emu"}) == cycles
    assert value("timeman_poller_users_failed_total", {"portal": "emu"}) == cycles
    assert value("timeman_poller_errors_total", {"portal": "emu", "code": "USER_NOT_FOUND"}) == cycles
    assert value("timeman_poller_cycle_seconds_count", {"portal": "emu"}) == cycles
    assert value("timeman_poller_portal_owned", {"portal": "emu", "replica": "test:1"}) == 1


def test_a_stop_that_overruns_its_grace_ends_the_process_and_a_second_signal_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exits: list[int] = []
    stopper = shutdown.Shutdown(0.05, busy=lambda: "cycles of acme cut", exit=exits.append)
    stopper.handle(signal.SIGTERM)
    assert stopper.event.is_set() and not stopper.interrupted
    wait_until(lambda: exits, timeout=5, what="the watchdog")
    assert exits == [128 + signal.SIGTERM]
    again = shutdown.Shutdown(60, exit=exits.append)
    again.handle(signal.SIGINT)
    again.handle(signal.SIGINT)
    again.cancel()
    assert exits[1:] == [130] and again.interrupted
    lines = [r.getMessage() for r in caplog.records if r.name == "poller.daemon.shutdown"]
    assert "stopping now (not done within 0 s): cycles of acme cut" in lines
    assert "stopping now (SIGINT again)" in lines


@on_sqlite_only
def test_the_daemon_waits_briefly_for_a_sqlite_lock_and_the_other_commands_as_before(
    engine: Engine, make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    """The daemon's cycles spool after [database] lock_wait_seconds; other users of the engine wait longer."""
    import dataclasses

    from poller.storage.engine import BUSY_TIMEOUT_SECONDS

    def busy_timeout() -> int:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one())

    config = make_config(portal(make_emulator(users=3, rate=0), [1], interval_seconds=60))
    config = dataclasses.replace(config, lock_wait_seconds=1.5)
    daemon = make_daemon(config, engine, Spool(tmp_path / "spool.jsonl"))
    assert busy_timeout() == BUSY_TIMEOUT_SECONDS * 1000
    daemon.start()
    try:
        assert busy_timeout() == 1500
    finally:
        daemon.stop()
    assert busy_timeout() == BUSY_TIMEOUT_SECONDS * 1000
