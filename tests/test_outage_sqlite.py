"""SQLite outages under a running daemon (issue #14 rows 2b, 2c): a database locked by another
writer, and a database file that cannot be written, are polled through into the spool, and what
was kept is written once the database takes writes again, without a restart."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from conftest import MakeEmulator, make_config, portal, wait_until
from daemons import make_daemon

from poller import storage
from poller.emulator import Emulator
from poller.spool.queue import Spool

NOBODY = 65534
POLLER_RUN = [sys.executable, "-m", "poller", "run", "-c"]


def _snapshots(database: Path) -> tuple[int, int]:
    """Snapshots stored, and distinct (portal, user, polled_at) among them, read with sqlite3."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as connection:
        rows = connection.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        distinct = connection.execute(
            "SELECT count(*) FROM (SELECT DISTINCT portal, user_id, polled_at FROM snapshots)"
        ).fetchone()[0]
    return int(rows), int(distinct)


def _answered(emulator: Emulator) -> int:
    return int(emulator.stats.summary()["statuses_answered"])


def test_a_locked_database_is_polled_through_and_written_when_the_lock_goes(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each locked cycle waits [database] lock_wait_seconds before it spools: 0.5 s here, not 5 s.
    emulator = make_emulator(users=5, rate=0, operating_limit=0)
    database = tmp_path / "poller.sqlite3"
    engine = storage.make_engine(f"sqlite:///{database}")
    storage.upgrade_database(engine)
    config = make_config(
        portal(emulator, [1, 2, 3], interval_seconds=1),
        directory={"refresh_hours": 0},
        reconcile={"days": 0},
    )
    config = dataclasses.replace(config, lock_wait_seconds=0.5)
    spool = Spool(tmp_path / "spool.jsonl")
    daemon = make_daemon(config, engine, spool)
    daemon.start()
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        wait_until(lambda: daemon.cycles["emu"] >= 2, what="two cycles")
        writer.execute("BEGIN EXCLUSIVE")  # another program holds the database
        locked_at = daemon.cycles["emu"]
        # Three cycles counted after the lock; the first may have written just before it took hold.
        wait_until(lambda: daemon.cycles["emu"] >= locked_at + 3, timeout=10, what="3 cycles while locked")
        assert spool.snapshots >= 6, "the cycles kept their answers in the spool"
        writer.execute("ROLLBACK")
        wait_until(lambda: not spool, what="the spool written")
        wait_until(lambda: daemon.last_outcome["emu"].users_ok == 3, what="a cycle stored directly")
    finally:
        writer.close()
        daemon.stop()
        engine.dispose()
    rows, distinct = _snapshots(database)
    assert rows == distinct == _answered(emulator)


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory of an unprivileged user, outside pytest's private tmp tree: the daemon runs
    as that user, so that file permissions apply to it (root ignores them)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the daemon as another user")
    directory = Path(tempfile.mkdtemp(prefix="timeman-nobody-"))
    os.chown(directory, NOBODY, NOBODY)
    yield directory
    directory.chmod(0o755)
    shutil.rmtree(directory)


def test_a_read_only_database_file_is_written_to_once_writable_again_without_a_restart(
    make_emulator: MakeEmulator, nobody_dir: Path
) -> None:
    """A SQLite connection opened while the file is read-only stays read-only: it is replaced."""
    emulator = make_emulator(users=5, rate=0, operating_limit=0)
    database = nobody_dir / "poller.sqlite3"
    engine = storage.make_engine(f"sqlite:///{database}")
    storage.upgrade_database(engine)
    engine.dispose()
    config = nobody_dir / "poller.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n[schedule]\ninterval_seconds = 1\n'
        "[directory]\nrefresh_hours = 0\n[reconcile]\ndays = 0\n"
        f'[storage]\nspool_path = "{nobody_dir / "spool" / "spool.jsonl"}"\n'
        f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = [1, 2, 3]\n'
    )
    (nobody_dir / "spool").mkdir()
    lock = nobody_dir / "poller.sqlite3.lock"  # the one-daemon lock, made while the directory is writable
    lock.touch()
    for path in (database, config, lock, nobody_dir / "spool"):
        os.chown(path, NOBODY, NOBODY)
    config.chmod(0o600)
    database.chmod(0o444)  # read-only from the start: every connection opens read-only
    nobody_dir.chmod(0o555)
    log = nobody_dir / "spool" / "daemon.log"
    with log.open("w") as output:
        daemon = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *POLLER_RUN, str(config)],
            stdout=output,
            stderr=output,
            cwd=nobody_dir,
        )
    try:
        wait_until(
            lambda: log.read_text().count("kept for the database") >= 2, timeout=20, what="two cycles kept"
        )
        nobody_dir.chmod(0o755)
        database.chmod(0o644)
        wait_until(lambda: "kept snapshots written" in log.read_text(), timeout=10, what="the spool written")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, log.read_text()
    rows, distinct = _snapshots(database)
    assert rows == distinct == _answered(emulator), log.read_text()


def test_poll_on_a_database_another_writer_holds_keeps_the_rows_in_the_spool_and_exits_1(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    """`poll` waits [database] lock_wait_seconds for a SQLite lock (1 s here; 5 by default), as
    the daemon does, not 30 s per write; the next `poll` writes what the spool kept."""
    emulator = make_emulator(users=3, rate=0, operating_limit=0)
    database = tmp_path / "poller.sqlite3"
    engine = storage.make_engine(f"sqlite:///{database}")
    storage.upgrade_database(engine)
    engine.dispose()
    spool = tmp_path / "spool.jsonl"
    config = tmp_path / "poller.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\nlock_wait_seconds = 1\n'
        "[directory]\nrefresh_hours = 0\n[reconcile]\ndays = 0\n"
        f'[storage]\nspool_path = "{spool}"\n'
        f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = [1, 2, 3]\n'
    )
    poll = [sys.executable, "-m", "poller", "poll", "-c", str(config)]
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another program writes: reads go on, writes wait
        # Waiting 30 s per write, the poll would outlive this timeout.
        locked = subprocess.run(poll, capture_output=True, text=True, timeout=28, cwd=tmp_path)
    finally:
        writer.close()
    assert locked.returncode == 1, locked.stderr
    assert "database is locked" in locked.stderr
    assert spool.exists() and spool.stat().st_size > 0, "the answers kept in the spool"
    assert _snapshots(database) == (0, 0)
    unlocked = subprocess.run(poll, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert unlocked.returncode == 0, unlocked.stderr
    rows, distinct = _snapshots(database)
    assert rows == distinct == _answered(emulator) == 6, "both polls stored, once each"
