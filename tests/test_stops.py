"""A stop is a stop in every phase: listing users, the directory refresh, polling, reconcile.

Real processes, because signals are the point; SQLite only, because the database is not.
Each test holds the phase open with the emulator's gate (`Emulator.hold`): it waits until the
poller's request is held, sends the signal, waits until the poller says it saw it, then
releases. Nothing depends on how fast the machine is.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeEmulator, wait_until
from helpers import row_count
from sqlalchemy import Engine, select

from poller import storage
from poller.daemon import shutdown
from poller.emulator import Emulator
from poller.models import PollRun
from poller.storage.tasks import TaskState, get_task


def write_config(tmp_path: Path, emulator: Emulator, users: object, **tables: dict[str, object]) -> Path:
    """A config file of one portal "emu" and a SQLite file at the newest schema."""
    tables.setdefault("directory", {"refresh_hours": 0})
    tables.setdefault("reconcile", {"days": 0})
    tables.setdefault("http", {"read_timeout_seconds": 120})  # the test releases long before
    users_value = '"all"' if users == "all" else repr(users)
    lines = [
        f'[database]\nurl = "sqlite:///{tmp_path / "stops.sqlite3"}"',
        f'[storage]\nspool_path = "{tmp_path / "spool.jsonl"}"',
    ]
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {value!r}".replace("'", '"') for key, value in values.items()]
    lines.append(f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = {users_value}')
    lines.append("requests_per_second = 100")  # the emulator has no limit: no pacing to wait for
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def database(tmp_path: Path, head_sqlite_file: Path) -> Engine:
    """The config's SQLite file at the newest schema: a copy of the session's, not a migration."""
    path = tmp_path / "stops.sqlite3"
    shutil.copyfile(head_sqlite_file, path)
    return storage.make_engine(f"sqlite:///{path}")


def start_poller(command: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "poller", command, "-c", str(config)], stdout=output, stderr=output
        )


def stop_while_held(
    process: subprocess.Popen[bytes], emulator: Emulator, log: Path, signum: int = signal.SIGINT
) -> int:
    """Signal the process while its request is held, release once it said so; its exit code."""
    try:
        assert emulator.wait_held(1, timeout=60), log.read_text()[-2000:]
        process.send_signal(signum)
        name = signal.Signals(signum).name
        wait_until(lambda: f"{name} received" in log.read_text(), timeout=30, what=f"{name} seen")
        emulator.release()
        return process.wait(timeout=60)
    finally:
        emulator.release()
        process.kill()


def runs(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(PollRun.__table__).order_by(PollRun.id)).mappings()
        return [dict(row) for row in rows]


def clean(log: Path) -> str:
    output = log.read_text()
    assert "Traceback" not in output and "Exception ignored" not in output, output[-3000:]
    return output


def test_poll_stops_listing_users_all_at_ctrl_c(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    emulator = make_emulator(users=500, rate=0)  # ten pages of user.get
    engine = database(tmp_path, head_sqlite_file)
    emulator.hold("user.get", after=1)
    log = tmp_path / "poll.log"
    code = stop_while_held(start_poller("poll", write_config(tmp_path, emulator, "all"), log), emulator, log)
    output = clean(log)
    assert code == 130, output[-2000:]
    assert emulator.stats.calls["user.get"] == 2  # the page held at the signal, no page after it
    assert emulator.stats.calls["batch"] == 0
    (run,) = runs(engine)
    assert (run["outcome"], run["users_ok"], run["users_failed"]) == ("interrupted", 0, 0)
    engine.dispose()


def test_poll_stops_the_directory_refresh_at_sigterm_and_keeps_no_partial_directory(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    emulator = make_emulator(users=500, rate=0)
    engine = database(tmp_path, head_sqlite_file)
    emulator.hold("user.get", after=1)
    config = write_config(tmp_path, emulator, "all", directory={"refresh_hours": 24})
    log = tmp_path / "poll.log"
    code = stop_while_held(start_poller("poll", config, log), emulator, log, signal.SIGTERM)
    output = clean(log)
    assert code == 130, output[-2000:]
    assert "user directory refresh stopped" in output
    assert (emulator.stats.calls["user.get"], emulator.stats.calls["department.get"]) == (2, 0)
    assert storage.get_directory_user_ids(engine, "emu", active_only=False) == []  # not half a directory
    assert get_task(engine, "emu", "directory") == TaskState()  # so the next poll refreshes it
    (run,) = runs(engine)
    assert run["outcome"] == "interrupted"
    engine.dispose()


def test_poll_stops_polling_at_ctrl_c_after_the_batch_in_flight(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    emulator = make_emulator(users=2000, rate=0)  # 40 batches, stored ten at a time
    engine = database(tmp_path, head_sqlite_file)
    emulator.hold("batch", after=10)  # the eleventh batch waits: the first part is stored
    log = tmp_path / "poll.log"
    process = start_poller("poll", write_config(tmp_path, emulator, list(range(1, 2001))), log)
    assert emulator.wait_held(1, timeout=60), log.read_text()[-2000:]
    assert row_count(engine, "snapshots") == 500
    code = stop_while_held(process, emulator, log)
    output = clean(log)
    assert code == 130, output[-2000:]
    assert "SIGINT received: finishing the cycle; Ctrl-C again to stop now" in output
    (run,) = runs(engine)
    assert (run["outcome"], run["users_ok"], row_count(engine, "snapshots")) == ("interrupted", 550, 550)
    assert sum(emulator.stats.statuses_answered.values()) == 550  # nothing fetched was dropped
    assert "interrupted: 1450 users not polled" in output
    engine.dispose()


def test_poll_stops_the_reconcile_at_ctrl_c_and_does_it_again_next_time(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    emulator = make_emulator(users=200, rate=0)
    engine = database(tmp_path, head_sqlite_file)
    emulator.hold("api/batch")  # the reconcile's first request of records (of four or more)
    config = write_config(tmp_path, emulator, list(range(1, 201)), reconcile={"days": 2})
    log = tmp_path / "poll.log"
    code = stop_while_held(start_poller("poll", config, log), emulator, log)
    output = clean(log)
    assert code == 130, output[-2000:]
    (run,) = runs(engine)
    assert (run["outcome"], run["users_ok"]) == ("finished", 200)  # the cycle had ended before
    assert len(emulator.stats.records_answered) < 200
    assert get_task(engine, "emu", "reconcile") == TaskState()  # cut: due again
    again = subprocess.run(
        [sys.executable, "-m", "poller", "poll", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert get_task(engine, "emu", "reconcile").last_done_at is not None
    engine.dispose()


def test_run_stops_the_directory_refresh_at_sigterm_and_closes_the_cycle_as_interrupted(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    emulator = make_emulator(users=500, rate=0)
    engine = database(tmp_path, head_sqlite_file)
    emulator.hold("user.get", after=1)
    config = write_config(tmp_path, emulator, "all", directory={"refresh_hours": 24})
    log = tmp_path / "run.log"
    code = stop_while_held(start_poller("run", config, log), emulator, log, signal.SIGTERM)
    output = clean(log)
    assert code == 0, output[-2000:]
    assert emulator.stats.calls["user.get"] == 2 and emulator.stats.calls["batch"] == 0
    assert [run["outcome"] for run in runs(engine)] == ["interrupted"]
    engine.dispose()


def test_a_sigkill_mid_cycle_loses_at_most_the_part_in_flight(
    make_emulator: MakeEmulator, tmp_path: Path, head_sqlite_file: Path
) -> None:
    emulator = make_emulator(users=2000, rate=0)
    engine = database(tmp_path, head_sqlite_file)
    emulator.hold("batch", after=15)  # the 16th batch waits, half way through the second part
    process = start_poller(
        "poll", write_config(tmp_path, emulator, list(range(1, 2001))), tmp_path / "poll.log"
    )
    try:
        assert emulator.wait_held(1, timeout=60)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    answered = sum(emulator.stats.statuses_answered.values())
    assert (row_count(engine, "snapshots"), answered) == (
        500,
        750,
    )  # the part in flight (250 answered) is lost
    (run,) = runs(engine)
    assert run["outcome"] is None  # cut off: `status` shows it
    engine.dispose()


def test_a_signal_that_lands_in_a_busy_worker_thread_is_seen_while_the_main_thread_waits() -> None:
    with shutdown.on_signals(60) as stopper:
        seen: list[bool] = []
        worker = threading.Thread(target=lambda: seen.append(stopper.event.wait(30)))
        worker.start()
        assert worker.ident is not None
        signal.pthread_kill(worker.ident, signal.SIGTERM)  # not the main thread
        worker.join()  # the main thread cannot run a Python handler while it waits here
        stopper.cancel()
    assert seen == [True] and stopper.signal_name == "SIGTERM"  # seen during the wait


def test_the_signal_handlers_stay_installed_after_the_work_ended(caplog: pytest.LogCaptureFixture) -> None:
    with shutdown.on_signals(60) as stopper:
        pass
    assert stopper.work_ended
    os.kill(os.getpid(), signal.SIGINT)  # a late Ctrl-C: said, and no KeyboardInterrupt
    assert stopper.event.wait(30)
    stopper.cancel()
    assert stopper.interrupted
    wait_until(lambda: "SIGINT received: the work had ended; exiting" in caplog.text, what="the line")
