"""The grid trigger of a portal's poll: one fire per grid instant, whatever the jitter."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

import pytest

from poller.config.sections import ScheduleConfig
from poller.daemon.triggers import GRID_ORIGIN, GridTrigger, poll_trigger


def _instant(fire: datetime, step: float) -> int:
    """The grid instant (its index) a fire time belongs to: the last at or before it."""
    return int((fire - GRID_ORIGIN).total_seconds() // step)


def _fires(trigger: GridTrigger, start: datetime, count: int) -> list[datetime]:
    """What the scheduler does: the next fire time asked at each run, `now` being the run."""
    fires = [trigger.get_next_fire_time(None, start)]
    for _ in range(count - 1):
        fires.append(trigger.get_next_fire_time(fires[-1], fires[-1]))
    return fires


@pytest.mark.parametrize("jitter", [0, 10, 29, 31, 45, 59])
def test_each_grid_instant_fires_once_whatever_the_jitter_below_the_interval(jitter: int) -> None:
    random.seed(14)
    trigger = poll_trigger(ScheduleConfig(interval_seconds=60, jitter_seconds=jitter))
    assert isinstance(trigger, GridTrigger)
    fires = _fires(trigger, datetime(2026, 12, 6, 11, 0, 7, tzinfo=GRID_ORIGIN.tzinfo), 300)
    instants = [_instant(fire, 60) for fire in fires]
    assert [b - a for a, b in itertools.pairwise(instants)] == [1] * 299
    assert all(0 <= (fire - GRID_ORIGIN).total_seconds() % 60 <= jitter for fire in fires)


def test_the_run_at_start_is_followed_by_an_instant_at_least_half_an_interval_later() -> None:
    """The daemon runs each portal at once at start, off the grid; then the trigger takes over."""
    trigger = poll_trigger(ScheduleConfig(interval_seconds=60, jitter_seconds=40))
    assert isinstance(trigger, GridTrigger)
    for offset in (0.0, 0.5, 29.0, 31.0, 59.5):
        start = datetime(2026, 12, 6, 11, 0, tzinfo=GRID_ORIGIN.tzinfo) + timedelta(seconds=offset)
        after = trigger.get_next_fire_time(start, start)
        assert timedelta(seconds=30) <= after - start < timedelta(seconds=90 + 40)
