"""The spool: idempotent replay, a dead-letter file, unreadable lines set aside, a lock, and a
file that cannot be written leaving the spool in memory while polling goes on (issue #9, rows 1,
7-10)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_config, portal
from sqlalchemy import Engine, select
from sqlalchemy.exc import NotSupportedError

from poller import storage
from poller.cli import main
from poller.clients import make_clients
from poller.daemon.metrics import Metrics
from poller.emulator import Emulator
from poller.models import PollError, snapshots_table
from poller.poll.cycle import poll_once
from poller.spool.queue import Spool, SpoolEntry, SpoolLocked
from poller.status import parse_status

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def snapshot(user_id: int, at: datetime, status: str = "OPENED", portal: str = "emu") -> storage.SnapshotRow:
    raw = {
        "STATUS": status,
        "TIME_START": "2026-11-16T08:00:00+00:00",
        "TIME_FINISH": None,
        "DURATION": "00:00:00",
        "TIME_LEAKS": "00:05:00",
        "ACTIVE": True,
        "TZ_OFFSET": 0,
    }
    return storage.SnapshotRow(portal, user_id, at, parse_status(raw))


def entry(at: datetime, users: tuple[int, ...] = (1, 2), failed: tuple[int, ...] = (9,)) -> SpoolEntry:
    """One cycle: a snapshot of each of `users`, an error row of each of `failed`."""
    errors = tuple(
        storage.ErrorRow("emu", user, at, "USER_NOT_FOUND", 400, "HTTP 400 User not found") for user in failed
    )
    return SpoolEntry(None, tuple(snapshot(user, at) for user in users), errors)


def table_rows(engine: Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every snapshot and poll_errors row, without ids, in a stable order."""
    with engine.connect() as connection:
        snapshots = [
            {k: v for k, v in row._mapping.items() if k != "id"}
            for row in connection.execute(
                select(snapshots_table).order_by(snapshots_table.c.user_id, snapshots_table.c.polled_at)
            )
        ]
        errors = [
            {k: v for k, v in row._mapping.items() if k != "id"}
            for row in connection.execute(
                select(PollError.__table__).order_by(PollError.user_id, PollError.occurred_at)
            )
        ]
    return snapshots, errors


def spool_errors(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("poller.spool.") and r.levelno >= logging.ERROR and text in r.getMessage()
    ]


@pytest.fixture
def spool_file(tmp_path: Path) -> Path:
    return tmp_path / "spool.jsonl"


@pytest.fixture
def down(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database that cannot be opened: every write is an outage."""
    engine = storage.make_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}")
    yield engine
    engine.dispose()


# -- replay is idempotent (row 8) ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["all", "changes"])
def test_replaying_entries_already_committed_before_a_crash_doubles_nothing(
    engine: Engine, spool_file: Path, mode: storage.StorageMode
) -> None:
    spool = Spool(spool_file)
    for minutes in (0, 5, 10):  # three cycles, the same statuses: "changes" extends one row
        spool.add(entry(T0 + timedelta(minutes=minutes)), "database down")
    before_commit = spool_file.read_bytes()
    assert spool.flush(engine, mode) == 6
    committed = table_rows(engine)
    assert len(committed[0]) == (6 if mode == "all" else 2)
    assert len(committed[1]) == 3
    if mode == "changes":
        assert [row["seen_count"] for row in committed[0]] == [3, 3]
    spool.close()
    # A crash after the commit, before the file said so: the restart finds every entry again.
    spool_file.write_bytes(before_commit)
    restarted = Spool(spool_file)
    assert restarted.snapshots == 6
    assert restarted.flush(engine, mode) == 6
    assert table_rows(engine) == committed
    assert not restarted and not spool_file.exists()


def test_a_replayed_cycle_between_newer_ones_doubles_nothing_in_changes_mode(
    engine: Engine, spool_file: Path
) -> None:
    spool = Spool(spool_file)
    spool.add(entry(T0), "down")
    spool.add(entry(T0 + timedelta(minutes=5)), "down")
    copy = spool_file.read_bytes()
    spool.flush(engine, "changes")
    storage.save_portal_cycle(engine, None, entry(T0 + timedelta(minutes=10)).snapshots, (), "changes")
    committed = table_rows(engine)
    spool.close()
    spool_file.write_bytes(copy)
    Spool(spool_file).flush(engine, "changes")
    assert table_rows(engine) == committed


# -- the queue is never blocked (row 1) ------------------------------------------------------


def test_a_snapshot_the_database_refuses_goes_to_the_dead_letter_file_and_the_rest_is_stored(
    engine: Engine, spool_file: Path
) -> None:
    bad = snapshot(2, T0)
    bad = dataclasses.replace(
        bad, parsed=dataclasses.replace(bad.parsed, values={**bad.parsed.values, "duration_seconds": 2**70})
    )
    spool = Spool(spool_file)
    spool.add(SpoolEntry(None, (snapshot(1, T0), bad), ()), "down")
    spool.add(entry(T0 + timedelta(minutes=5), users=(3,), failed=()), "down")
    assert spool.flush(engine, "all") == 2
    snapshots, errors = table_rows(engine)
    assert [(row["user_id"], row["polled_at"]) for row in snapshots] == [
        (1, T0),
        (3, T0 + timedelta(minutes=5)),
    ]
    assert [(row["user_id"], row["code"]) for row in errors] == [(2, storage.BAD_VALUE)]
    (dead,) = (spool_file.parent / "spool.jsonl.dead.jsonl").read_text().splitlines()
    record = json.loads(dead)
    assert [s["user_id"] for s in record["snapshots"]] == [2]
    assert record["reason"].startswith("snapshot refused")
    assert spool.dead_lettered == 1
    assert not spool and not spool_file.exists()


def test_an_entry_failing_for_any_other_reason_is_dead_lettered_and_the_next_one_written(
    engine: Engine, spool_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    save = storage.save_portal_cycle

    def refuse_the_first(engine: Engine, run_id: int | None, *args: Any, **kwargs: Any) -> Any:
        if run_id == 666:
            raise NotSupportedError("INSERT ...", {}, Exception("feature not supported"))
        return save(engine, run_id, *args, **kwargs)

    monkeypatch.setattr("poller.spool.queue.storage.save_portal_cycle", refuse_the_first)
    spool = Spool(spool_file)
    spool.add(dataclasses.replace(entry(T0), run_id=666), "down")
    spool.add(entry(T0 + timedelta(minutes=5)), "down")
    assert spool.flush(engine, "all") == 2
    assert len(table_rows(engine)[0]) == 2
    (dead,) = (spool_file.parent / "spool.jsonl.dead.jsonl").read_text().splitlines()
    assert json.loads(dead)["run_id"] == 666
    assert spool.dead_lettered == 3
    assert spool_errors(caplog, "feature not supported")


def test_the_queue_waits_in_order_while_the_database_is_down(
    down: Engine, engine: Engine, spool_file: Path
) -> None:
    spool = Spool(spool_file)
    spool.add(entry(T0), "down")
    spool.add(entry(T0 + timedelta(minutes=5)), "down")
    file_before = spool_file.read_bytes()
    assert spool.flush(down, "all") == 0
    assert spool.snapshots == 4 and spool_file.read_bytes() == file_before
    assert spool.flush(engine, "all") == 4
    assert not spool_file.exists()


# -- lines that cannot be read (row 10) -------------------------------------------------------


def test_unreadable_lines_are_moved_aside_and_counted_and_the_start_goes_on(
    engine: Engine, spool_file: Path
) -> None:
    with Spool(spool_file) as spool:
        spool.add(entry(T0), "down")
        spool.add(entry(T0 + timedelta(minutes=5)), "down")
    good_first, good_second = spool_file.read_bytes().splitlines(keepends=True)
    overflowing = json.loads(good_first)
    overflowing["seq"] = 50
    overflowing["snapshots"][0]["polled_at"] = "9999-12-31T23:00:00-05:00"
    huge_user = json.loads(good_first)
    huge_user["seq"] = 51
    huge_user["snapshots"][0]["user_id"] = 10**30
    bad_lines = [
        b'{"seq": 40, "run_id": null, "snapshots": [{"portal": "\xff\xfe"}]}\n',  # not UTF-8
        b"{not json\n",
        json.dumps(overflowing).encode() + b"\n",
        json.dumps(huge_user).encode() + b"\n",
        b"[1, 2]\n",
    ]
    torn = good_second[:40]  # a crash in the middle of a line
    spool_file.write_bytes(good_first + b"".join(bad_lines) + good_second + torn)
    metrics = Metrics(["emu"])
    restarted = Spool(spool_file, metrics=metrics)
    assert restarted.unreadable == len(bad_lines) + 1
    quarantined = "timeman_poller_spool_quarantined_rows_total"
    assert metrics.registry.get_sample_value(quarantined, {"reason": "unreadable"}) == len(bad_lines) + 1
    assert restarted.snapshots == 4
    aside = (spool_file.parent / "spool.jsonl.unreadable").read_bytes()
    assert aside == b"".join(bad_lines) + torn + b"\n"
    assert spool_file.read_bytes().count(b"\n") == 2  # the file holds the good entries only
    assert restarted.flush(engine, "all") == 4


def test_a_spool_written_by_the_previous_version_is_read(engine: Engine, spool_file: Path) -> None:
    old_line = {
        "run_id": None,
        "snapshots": [
            {"portal": "emu", "user_id": 1, "polled_at": T0.isoformat(), "raw": {"STATUS": "CLOSED"}}
        ],
        "errors": [],
    }
    spool_file.write_text(json.dumps(old_line) + "\n" + json.dumps(old_line) + "\n")
    spool = Spool(spool_file)
    assert spool.snapshots == 2 and spool.unreadable == 0
    assert spool.flush(engine, "all") == 2
    assert len(table_rows(engine)[0]) == 1


# -- the file is appended to, bounded, and locked (row 9) ------------------------------------


def test_keeping_a_cycle_appends_to_the_file_instead_of_rewriting_it(spool_file: Path) -> None:
    spool = Spool(spool_file)
    spool.add(entry(T0), "down")
    before, inode = spool_file.read_bytes(), spool_file.stat().st_ino
    spool.add(entry(T0 + timedelta(minutes=5)), "down")
    after = spool_file.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2
    assert spool_file.stat().st_ino == inode


def test_the_oldest_cycles_are_dropped_beyond_max_rows_and_stay_dropped_after_a_restart(
    spool_file: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(spool_file, max_rows=6)
    for minutes in range(4):  # 3 rows each
        spool.add(entry(T0 + timedelta(minutes=minutes)), "down")
    assert spool.rows == 6 and spool.dropped == 6
    assert spool_errors(caplog, "spool full")
    spool.close()
    assert Spool(spool_file, max_rows=6).flush(engine, "all") == 4
    polled = [row["polled_at"] for row in table_rows(engine)[0]]
    assert sorted(polled) == [T0 + timedelta(minutes=m) for m in (2, 2, 3, 3)]


def test_the_file_is_compacted_once_it_holds_more_finished_than_waiting(
    spool_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(spool_file, max_rows=6)
    for minutes in range(3):
        spool.add(entry(T0 + timedelta(minutes=minutes)), "down")
    assert spool_file.read_bytes().count(b'{"done":') == 1  # the oldest, dropped, is marked
    monkeypatch.setattr("poller.spool.journal.COMPACT_BYTES", 0)
    spool.add(entry(T0 + timedelta(minutes=3)), "down")
    lines = [json.loads(line) for line in spool_file.read_bytes().splitlines()]
    assert [line["seq"] for line in lines] == [3, 4]


def test_a_second_poller_on_the_same_spool_file_refuses_to_start(spool_file: Path) -> None:
    first = Spool(spool_file)
    first.add(entry(T0), "down")
    with pytest.raises(SpoolLocked) as refused:
        Spool(spool_file)
    assert str(refused.value) == (
        f"spool {spool_file} is in use by process {os.getpid()} (it holds {spool_file}.lock); "
        "give each poller its own storage.spool_path"
    )
    first.close()
    assert Spool(spool_file).snapshots == 2


def test_a_spool_held_by_another_process_stops_poll_with_exit_2_and_one_line(
    tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    spool_file = tmp_path / "spool.jsonl"
    hold = (
        "import sys; from pathlib import Path; from poller.spool.queue import Spool\n"
        "spool = Spool(Path(sys.argv[1])); print('held', flush=True); input()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(spool_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite3"}"\n'
            f'[storage]\nspool_path = "{spool_file}"\n'
            f'[[portals]]\nname = "emu"\nwebhook_url = "{emulator.webhook_url}"\nusers = [1]\n'
        )
        assert main(["poll", "--migrate", "--config", str(config)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == (
            f"timeman-poller: error: spool {spool_file} is in use by process {holder.pid} "
            f"(it holds {spool_file}.lock); give each poller its own storage.spool_path"
        )
    finally:
        holder.communicate("\n", timeout=10)
    with Spool(spool_file):  # the lock went with the process
        pass


# -- a file that cannot be written (row 7) ---------------------------------------------------


def unwritable_places(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("")
    places = {"a directory": tmp_path / "a-directory", "under a file": tmp_path / "a-file" / "spool.jsonl"}
    if os.geteuid() == 0:  # root writes into any directory: sysfs still refuses new files
        places["read-only"] = Path("/sys") / f"timeman-poller-test-{os.getpid()}.jsonl"
    else:
        (tmp_path / "read-only").mkdir(mode=0o500)
        places["read-only"] = tmp_path / "read-only" / "spool.jsonl"
    return places


@pytest.mark.parametrize("place", ["a directory", "under a file", "read-only"])
def test_a_spool_that_cannot_be_written_keeps_cycles_in_memory_and_says_so_once(
    tmp_path: Path,
    place: str,
    emulator: Emulator,
    down: Engine,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics(["emu"])
    spool = Spool(unwritable_places(tmp_path)[place], metrics=metrics)
    clients = make_clients(make_config(portal(emulator, [1, 2, 3])), down)
    reports = [poll_once(clients, down, spool=spool) for _ in range(3)]
    assert [report.kept for report in reports] == [3, 3, 3]  # the portal was polled every time
    assert spool.memory_only and spool.snapshots == 9
    assert metrics.registry.get_sample_value("timeman_poller_spool_in_memory") == 1
    assert len(spool_errors(caplog, "cannot be written")) == 1
    assert poll_once(clients, engine, spool=spool).ok
    assert len(table_rows(engine)[0]) == 12
    assert len(spool_errors(caplog, "cannot be written")) == 1


def test_a_spool_whose_disk_fills_up_goes_on_in_memory_and_back_to_the_file_later(
    spool_file: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    spool = Spool(spool_file, monotonic=lambda: now[0])
    spool.add(entry(T0), "down")
    written = spool_file.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(written) + 100, hard))  # "disk full" past 100 bytes
    try:
        spool.add(entry(T0 + timedelta(minutes=5)), "down")
        spool.add(entry(T0 + timedelta(minutes=10)), "down")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert spool.memory_only and spool.snapshots == 6
    assert spool_file.read_bytes() == written  # the torn line was cut off again
    assert len(spool_errors(caplog, "cannot be written")) == 1
    now[0] += 60
    spool.add(entry(T0 + timedelta(minutes=15)), "down")
    assert not spool.memory_only
    assert spool_file.read_bytes().count(b"\n") == 4
    spool.close()
    restarted = Spool(spool_file)
    assert restarted.snapshots == 8
    assert restarted.flush(engine, "all") == 8
