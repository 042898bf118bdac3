"""Days that do not follow the simple shape, polled through the emulator into `workdays`.

Three of the emulator's users, polled every 10 minutes for a day and a half on a shared
ManualClock, on SQLite and PostgreSQL: user 6's DURATION is short of finish - start - breaks
(kept as the portal says, not recomputed), user 7 pauses three times (PAUSED answers with
TIME_LEAKS > 0; the day's breaks are all three), user 11's day is left open and turns
EXPIRED at its local midnight during the run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conftest import MakeEmulator, make_config, portal
from sqlalchemy import Engine, select

from poller import storage, views
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator.world import EXPIRING_USER
from poller.models import Snapshot
from poller.poll.cycle import poll_portal

MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
SHORT_DURATION_USER, THREE_PAUSES_USER = 6, 7
USERS = [SHORT_DURATION_USER, THREE_PAUSES_USER, EXPIRING_USER]
STEP = 10 * 60


def day_rows(engine: Engine) -> dict[tuple[int, datetime], dict[str, Any]]:
    return {(r["user_id"], r["time_start"]): r for r in storage.get_view_rows(engine, views.workdays)}


def test_irregular_days_are_stored_as_the_portal_tells_them(
    make_emulator: MakeEmulator, engine: Engine
) -> None:
    clock = ManualClock(MONDAY)
    emulator = make_emulator(users=12, rate=0, operating_limit=0, clock=clock)
    world = emulator.world
    (client,) = make_clients(
        make_config(portal(emulator, USERS, requests_per_second=1000)), engine, clock=clock
    )
    expiring_statuses: list[str] = []
    estimates_checked = 0
    for _ in range(36 * 3600 // STEP):
        now = clock.now()
        assert poll_portal(client, engine, clock.now).users_failed == 0
        rows = day_rows(engine)
        open_day = world.last_workday(EXPIRING_USER, now)
        assert open_day is not None
        expiring_statuses.append(rows[(EXPIRING_USER, open_day.opened)]["status"])
        day = world.last_workday(THREE_PAUSES_USER, now)
        if day is not None and (day.closed is None or now < day.closed):
            row = rows[(THREE_PAUSES_USER, day.opened)]
            assert abs(row["worked_seconds"] - day.worked_until(now)) <= STEP, (now, row)
            estimates_checked += 1
        clock.advance(STEP)

    # OPENED, then EXPIRED from the user's local midnight on, as one day (no new row).
    assert [s for i, s in enumerate(expiring_statuses) if i == 0 or expiring_statuses[i - 1] != s] == [
        "OPENED",
        "EXPIRED",
    ]
    midnight_polls = (5 * 3600) // STEP  # local midnight of UTC-5 is 05:00 UTC
    assert expiring_statuses[midnight_polls - 1 : midnight_polls + 1] == ["OPENED", "EXPIRED"]
    rows = day_rows(engine)
    expired = world.last_workday(EXPIRING_USER, clock.now())
    assert expired is not None
    row = rows[(EXPIRING_USER, expired.opened)]
    assert (row["status"], row["leaks_seconds"], row["worked_is_estimate"]) == (
        "EXPIRED",
        expired.leaks_seconds,
        True,
    )
    assert sum(1 for user, _ in rows if user == EXPIRING_USER) == 1

    short = world.workday(SHORT_DURATION_USER, MONDAY.date())
    assert short is not None and short.closed is not None and short.duration_cut > 0
    row = rows[(SHORT_DURATION_USER, short.opened)]
    span = int((short.closed - short.opened).total_seconds())
    assert (row["status"], row["worked_seconds"], row["leaks_seconds"], row["worked_is_estimate"]) == (
        "CLOSED",
        short.worked_seconds(),
        short.leaks_seconds,
        False,
    )
    assert row["worked_seconds"] < span - row["leaks_seconds"]  # not recomputed from the times

    paused = world.workday(THREE_PAUSES_USER, MONDAY.date())
    assert paused is not None and paused.closed is not None and len(paused.pauses) == 3
    row = rows[(THREE_PAUSES_USER, paused.opened)]
    assert (row["status"], row["worked_seconds"], row["leaks_seconds"]) == (
        "CLOSED",
        paused.worked_seconds(),
        paused.leaks_seconds,
    )
    assert estimates_checked > 0
    with engine.connect() as connection:
        leaks_while_paused = connection.execute(
            select(Snapshot.time_leaks_seconds).where(
                Snapshot.user_id == THREE_PAUSES_USER,
                Snapshot.status == "PAUSED",
                Snapshot.time_leaks_seconds > 0,
            )
        ).all()
    assert leaks_while_paused  # the later pauses were seen with the earlier ones in TIME_LEAKS
