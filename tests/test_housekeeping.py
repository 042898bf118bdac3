"""`poll` under a timer keeps the directory and the records as `run` does (poller.poll.housekeeping).

Each `poll` is a new process: here a new PortalChores for each cycle, on a clock the test
moves, so what is due can only come from the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import MakeEmulator, make_config, portal
from daemons import make_daemon
from sqlalchemy import Engine

from poller import storage
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.config import Config
from poller.poll.cycle import PollReport, poll_once
from poller.poll.housekeeping import PortalChores, newest_reconcile_slot
from poller.spool.queue import Spool
from poller.storage.tasks import get_task


def timer_poll(config: Config, engine: Engine, clock: ManualClock) -> PollReport:
    """What one `poll` from a timer does: new clients and chores, one cycle of every portal."""
    clients = make_clients(config, engine, clock=clock)
    return poll_once(clients, engine, clock=clock.now, chores=PortalChores(config, engine))


def test_poll_fills_the_directory_takes_users_all_from_it_and_finds_a_new_hire_within_refresh_hours(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=120, clock=clock)
    config = make_config(
        portal(emulator, "all"),
        database_url=database_url,
        directory={"refresh_hours": 24},
        reconcile={"days": 0},
    )
    active = [u for u in range(1, 121) if u != 97]  # the emulator's one inactive user
    first = timer_poll(config, engine, clock)
    assert first.ok and first.users_ok == len(active)
    assert storage.get_directory_user_ids(engine, "emu") == active
    assert get_task(engine, "emu", "directory").last_done_at == clock.now()
    listed = emulator.stats.calls["user.get"]
    assert listed == 3 and emulator.stats.calls["department.get"] >= 1

    second = timer_poll(config, engine, clock)
    assert second.requests == 3  # ceil(119 / 50) batches, no listing
    assert emulator.stats.calls["user.get"] == listed

    emulator.world.count = 121  # a new hire
    clock.advance(23 * 3600)
    timer_poll(config, engine, clock)
    assert emulator.stats.statuses_answered[121] == 0  # the directory is not due yet
    clock.advance(2 * 3600)
    third = timer_poll(config, engine, clock)
    assert emulator.stats.calls["user.get"] == 2 * listed  # refreshed after refresh_hours
    assert third.users_ok == len(active) + 1 and emulator.stats.statuses_answered[121] == 1


def test_a_failed_refresh_is_tried_again_after_the_retry_wait_not_every_poll(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock
) -> None:
    emulator = make_emulator(users=10, clock=clock)
    config = make_config(
        portal(emulator, [1, 2]),
        database_url=database_url,
        directory={"refresh_hours": 24},
        reconcile={"days": 0},
    )
    emulator.force_operating_limit(1200, "user.get")  # blocked for 20 minutes of the clock
    assert timer_poll(config, engine, clock).ok  # the cycle does not need the directory
    failed = get_task(engine, "emu", "directory")
    assert failed.last_done_at is None and failed.last_tried_at == clock.now()
    assert failed.last_error is not None and "OPERATION_TIME_LIMIT" in failed.last_error
    tries = emulator.stats.calls["user.get"]
    clock.advance(600)
    timer_poll(config, engine, clock)
    assert emulator.stats.calls["user.get"] == tries  # not before the retry wait
    clock.advance(1200)
    timer_poll(config, engine, clock)
    assert storage.get_directory_user_ids(engine, "emu") == list(range(1, 11))
    assert get_task(engine, "emu", "directory").last_error is None


def test_poll_reconciles_once_a_day_after_reconcile_at_and_after_runs_reconcile_not_again(
    engine: Engine, database_url: str, make_emulator: MakeEmulator, clock: ManualClock, tmp_path: Path
) -> None:
    emulator = make_emulator(users=5, clock=clock)
    config = make_config(
        portal(emulator, [1, 2, 3]),
        database_url=database_url,
        directory={"refresh_hours": 0},
        reconcile={"days": 2, "at": "03:30"},
        schedule={"timezone": "Europe/Berlin"},
    )
    timer_poll(config, engine, clock)  # never reconciled: due at once
    done = get_task(engine, "emu", "reconcile")
    assert done.last_done_at == clock.now() and done.last_error is None
    reads = emulator.stats.calls["timeman.record.list"]
    assert reads >= 3
    clock.advance(3600)
    timer_poll(config, engine, clock)
    assert emulator.stats.calls["timeman.record.list"] == reads  # once a day

    # Past 03:30 Berlin the next morning, `run`'s daily job reconciles: `poll` then does not.
    clock.set(datetime(2026, 11, 17, 2, 31, tzinfo=UTC))
    daemon = make_daemon(config, engine, Spool(tmp_path / "spool.jsonl"), clock=clock)
    (client,) = daemon.clients
    assert daemon.ensure_database()
    daemon.reconcile(client)
    reads = emulator.stats.calls["timeman.record.list"]
    timer_poll(config, engine, clock)
    assert emulator.stats.calls["timeman.record.list"] == reads
    assert get_task(engine, "emu", "reconcile").last_done_at == clock.now()


def test_the_newest_reconcile_slot_is_at_local_time_across_a_dst_change() -> None:
    berlin = "Europe/Berlin"
    before = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 CET: the clocks have just gone back
    assert newest_reconcile_slot(before, "03:30", berlin) == datetime(2026, 10, 24, 1, 30, tzinfo=UTC)
    after = datetime(2026, 10, 25, 2, 45, tzinfo=UTC)  # 03:45 CET
    assert newest_reconcile_slot(after, "03:30", berlin) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    assert newest_reconcile_slot(after, "03:30", "UTC") == datetime(2026, 10, 24, 3, 30, tzinfo=UTC)
    assert newest_reconcile_slot(after, "02:46", "UTC") == after.replace(minute=46) - timedelta(days=1)
