"""When the daemon's jobs fire: each portal's poll on one grid of instants shared by every replica,
or by cron; the daily reconcile at a local time; the database job at a fixed period.

A portal's interval trigger fires at instants GRID_ORIGIN + k × interval (UTC): the first of
them at least half an interval after its previous run, whatever the moment the daemon started.
Every replica (with a synchronised clock) so fires a portal's job at the same instants: when
one replica gives a portal up after its cycle, the next replica to poll it does so at the next
instant, one interval after the last poll, never a fraction of an interval later (a repeat)
nor two intervals later (a miss). The first run at start is at once; the next one then comes
half an interval to an interval and a half later. Jitter, when configured, is added to each
instant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from poller.config import Config, PortalConfig, ScheduleConfig

GRID_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
CRON_INTERVAL_SECONDS = 60  # what a cron schedule counts as, for the shortest interval


class GridTrigger(IntervalTrigger):
    """An interval trigger on the grid GRID_ORIGIN + k × interval (see the module docstring)."""

    _fired: tuple[float, float] | None = None  # (a fire time returned, its instant before jitter)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        step = self.interval_length
        origin = self.start_date.timestamp()
        if previous_fire_time is None:
            after = now.timestamp()
        else:  # half an interval after the previous instant, not after its jittered time
            after = self._instant_of(previous_fire_time.timestamp()) + step / 2
        instant = origin + step * math.ceil((max(after, now.timestamp()) - origin) / step)
        fire = instant + (random.uniform(0, self.jitter) if self.jitter is not None else 0)
        self._fired = (fire, instant)
        return datetime.fromtimestamp(fire, tz=self.timezone)

    def _instant_of(self, fired: float) -> float:
        """The grid instant this trigger jittered `fired` from; a time it did not return (the
        run at once at start) is its own instant."""
        if self._fired is not None and abs(self._fired[0] - fired) < 1e-3:
            return self._fired[1]
        return fired


def poll_trigger(schedule: ScheduleConfig) -> Any:
    """The APScheduler trigger of a portal's poll job."""
    jitter = schedule.jitter_seconds or None
    if schedule.cron is not None:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=ZoneInfo(schedule.timezone))
        trigger.jitter = jitter
        return trigger
    assert schedule.interval_seconds is not None
    return GridTrigger(seconds=schedule.interval_seconds, start_date=GRID_ORIGIN, jitter=jitter, timezone=UTC)


def daily_trigger(at: str, timezone: str) -> CronTrigger:
    """Every day at `at` ("HH:MM") local time in `timezone`, across DST changes."""
    hour, minute = (int(part) for part in at.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(timezone))


def every(seconds: int) -> IntervalTrigger:
    """Every `seconds`, counted from the previous run (the daemon's first run is at start)."""
    return IntervalTrigger(seconds=seconds, start_date=GRID_ORIGIN, timezone=UTC)


def misfire_grace(schedule: ScheduleConfig) -> int:
    """How late a run may start and still count: half an interval (a minute for cron)."""
    return max(1, schedule.interval_seconds // 2) if schedule.interval_seconds else 60


def shortest_interval(config: Config, portals: Iterable[PortalConfig]) -> int:
    """The shortest poll interval of `portals` in seconds (a cron schedule counts as a minute)."""
    intervals = [config.schedule_of(portal).interval_seconds or CRON_INTERVAL_SECONDS for portal in portals]
    return min(intervals, default=CRON_INTERVAL_SECONDS)


def describe_schedules(config: Config, portals: Iterable[PortalConfig]) -> list[str]:
    """`<portal> every N s` or `<portal> cron '...' (zone)`, for the start line."""
    described = []
    for portal in portals:
        schedule = config.schedule_of(portal)
        when = (
            f"cron {schedule.cron!r} ({schedule.timezone})"
            if schedule.cron
            else f"every {schedule.interval_seconds} s"
        )
        described.append(f"{portal.name} {when}")
    return described
