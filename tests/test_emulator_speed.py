"""`emulator --speed N` and a poller on real time agree: the world is never ahead of real now.

The world replays the last day N times faster, then keeps real time; a world that ran ahead
opened days in the poller's future, and the poller counted 0 worked for them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import make_config, on_sqlite_only, portal
from sqlalchemy import Engine

from poller import storage, views
from poller.cli_commands import replayed
from poller.clients import make_clients
from poller.clock import ManualClock
from poller.emulator import Emulator, EmulatorSettings
from poller.emulator.simclock import SimClock
from poller.poll.cycle import poll_portal
from poller.render.results import REPLAY, clock_words

MONDAY_NOON = datetime(2026, 12, 7, 12, tzinfo=UTC)  # a weekday: many users have a day open
USERS = list(range(1, 26))


def test_a_catching_up_clock_replays_the_past_then_keeps_pace() -> None:
    base = ManualClock(MONDAY_NOON)
    clock = SimClock(MONDAY_NOON - REPLAY, speed=60, base=base, catch_up=True)
    assert clock.now() == MONDAY_NOON - REPLAY
    base.advance(60)
    assert clock.now() == MONDAY_NOON - REPLAY + 60 * (base.now() - MONDAY_NOON)
    base.advance(REPLAY.total_seconds())  # long past the catch-up
    assert clock.now() == base.now()
    base.advance(5)
    assert clock.now() == base.now()  # never ahead: real time from here on


def open_days(engine: Engine, speed: float, catch_up: bool) -> list[dict[str, object]]:
    """Poll an emulator at `speed` on one (manual) real clock, 25 minutes apart; the open days."""
    clock = ManualClock(MONDAY_NOON)
    settings = EmulatorSettings(users=len(USERS), speed=speed, rate=0, operating_limit=0)
    emulator = Emulator(replayed(settings, clock.now()) if catch_up else settings, clock=clock).start()
    try:  # `engine` is at head already (conftest)
        (client,) = make_clients(make_config(portal(emulator, USERS)), engine, clock=clock)
        for _ in range(3):
            poll_portal(client, engine, clock.now)
            clock.advance(25 * 60)  # the replay of a day at x60 takes 24.4 minutes
        poll_portal(client, engine, clock.now)
    finally:
        emulator.stop()
    rows = storage.get_view_rows(engine, views.workdays)
    return [row for row in rows if row["status"] == "OPENED"]


@on_sqlite_only  # storage is not the point here
def test_an_emulator_at_speed_60_polled_on_real_time_shows_worked_time(engine: Engine) -> None:
    opened = open_days(engine, speed=60, catch_up=True)
    assert opened, "a Monday noon has open days"
    assert all(row["worked_seconds"] > 0 for row in opened)
    assert all(row["time_start"] < row["last_seen_at"] for row in opened)  # none in the poller's future


@on_sqlite_only  # storage is not the point here
def test_a_world_ahead_of_real_time_showed_0_worked(engine: Engine) -> None:
    """What `--speed 60` did before: the world an hour ahead per minute, days open in the future."""
    future = [
        row for row in open_days(engine, speed=60, catch_up=False) if row["time_start"] > row["last_seen_at"]
    ]
    assert future and all(row["worked_seconds"] == 0 for row in future)


@pytest.mark.parametrize(
    ("speed", "words"),
    [
        (1, "real time"),
        (60, "the last day replayed x60 in 24 min, then real time"),
        (0.5, "clock x0.5"),
    ],
)
def test_the_banner_says_what_the_clock_does(speed: float, words: str) -> None:
    assert clock_words(speed) == words
