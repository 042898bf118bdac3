"""Prune the history, never inside the retention floor.

German law (ArbZG §16(2)) asks an employer to keep working-time records for at least two
years; `[retention] keep_days` (default 730) says how long this database keeps its evidence.
Evidence is everything an auditor could ask for: snapshots (what the portal answered),
workday_records (the portal's own records), workday_revisions (what changed, and when), and
poll_runs and poll_errors (when polling ran, and the gaps it left). Pruning deletes all of
them from before one cutoff, so a single check of its age against the floor protects them all.
This module is that policy; the SQL that deletes and counts is poller.storage.prune.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from poller.errors import ConfigError
from poller.storage.prune import PruneCounts, count_history, prune_history

__all__ = ["PruneCounts", "PruneResult", "below_floor", "cutoff_before", "floor_refusal", "prune"]


def below_floor(older_than: timedelta, keep_days: int) -> bool:
    """Whether pruning at this age would delete evidence younger than keep_days."""
    return older_than < timedelta(days=keep_days)


def age_text(age: timedelta) -> str:
    """An age as the command line takes it: 400d, or 36h when it is not whole days."""
    if age % timedelta(days=1) == timedelta(0):
        return f"{age.days}d"
    return f"{int(age.total_seconds() // 3600)}h"


def floor_refusal(older_than: timedelta, keep_days: int) -> str:
    """The one line `prune` answers an age inside the floor with."""
    return (
        f"prune --older-than {age_text(older_than)} would delete snapshots, workday records and "
        f"revisions younger than [retention] keep_days = {keep_days}; give --older-than "
        f"{keep_days}d or more (--dry-run shows what would go), or lower retention.keep_days "
        "where the law allows"
    )


@dataclass(frozen=True)
class PruneResult:
    """What `prune` deleted, or with `dry_run` would delete, from before `cutoff`.

    Inside the floor, `refused` holds the refusal line, and a dry run's `counts` are what
    pruning at the floor (`floor_cutoff`) would delete; `protected` what the floor keeps of
    the age asked for.
    """

    cutoff: datetime
    dry_run: bool
    counts: PruneCounts
    refused: str | None = None
    protected: PruneCounts | None = None
    floor_cutoff: datetime | None = None


def cutoff_before(now: datetime, older_than: timedelta) -> datetime:
    """The instant `older_than` before `now`; an age before the calendar is a ConfigError."""
    try:
        return now - older_than
    except OverflowError:
        raise ConfigError(
            f"--older-than: {older_than.days} days reaches back before the year 1; give a smaller age"
        ) from None


def prune(engine: Engine, now: datetime, cutoff: datetime, keep_days: int, *, dry_run: bool) -> PruneResult:
    """Prune before `cutoff` unless that reaches inside the floor of `keep_days` before `now`.

    Inside the floor a real run raises the refusal (a ConfigError, one line naming the key);
    a dry run counts what pruning at the floor would delete and what the floor protects.
    """
    older_than = now - cutoff
    if not below_floor(older_than, keep_days):
        return PruneResult(cutoff, dry_run, prune_history(engine, cutoff, dry_run=dry_run))
    refusal = floor_refusal(older_than, keep_days)
    if not dry_run:
        raise ConfigError(refusal)
    floor_cutoff = now - timedelta(days=keep_days)
    at_floor, asked = count_history(engine, floor_cutoff, cutoff)
    return PruneResult(cutoff, True, at_floor, refusal, asked - at_floor, floor_cutoff)
