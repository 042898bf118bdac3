"""Prune the history, never inside the retention floor.

German law (ArbZG §16(2)) asks an employer to keep working-time records for at least two
years; `[retention] keep_days` (default 730) says how long this database keeps its evidence.
Evidence is everything an auditor could ask for: snapshots (what the portal answered),
workday_records (the portal's own records), workday_revisions (what changed, and when), and
poll_runs and poll_errors (when polling ran, and the gaps it left). `prune` deletes all of
them from before one cutoff, so a single check of its age against the floor protects them all.
The workdays table is never pruned: it is the history the reports read, kept after its raw
polls go.

A row goes only when every instant it holds is older than the cutoff (a record of an old day
fetched last week stays), and a dry run counts with the same conditions as the delete.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, delete, func, inspect, or_, select
from sqlalchemy.orm import aliased

from poller.errors import ConfigError
from poller.models import Base, PollError, PollRun, Snapshot, UTCDateTime, workday_records_table

REVISIONS = "workday_revisions"  # created by revision 0007; pruned only where it exists


@dataclass(frozen=True)
class PruneCounts:
    """Rows deleted (or, in a dry run, that would be deleted) per table."""

    snapshots: int
    poll_runs: int
    poll_errors: int
    workday_records: int = 0
    workday_revisions: int = 0

    def describe(self) -> str:
        """ "2 snapshots, 0 workday records, 0 workday revisions, 1 poll runs and 1 poll errors"."""
        parts = [
            f"{self.snapshots} snapshots",
            f"{self.workday_records} workday records",
            f"{self.workday_revisions} workday revisions",
            f"{self.poll_runs} poll runs",
        ]
        return f"{', '.join(parts)} and {self.poll_errors} poll errors"

    def __sub__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})


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

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        if self.protected is None or self.floor_cutoff is None:
            return f"{verb} {self.counts.describe()} from before {self.cutoff:%Y-%m-%d %H:%M} UTC"
        return (
            f"{verb} {self.counts.describe()} from before {self.floor_cutoff:%Y-%m-%d %H:%M} UTC "
            f"(the retention floor)\nprotected by the floor: {self.protected.describe()} "
            f"from {self.cutoff:%Y-%m-%d %H:%M} UTC on"
        )


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
    with engine.connect() as connection:
        revisions = _revisions_table(connection)
        at_floor = count_history(connection, floor_cutoff, revisions)
        asked = count_history(connection, cutoff, revisions)
    return PruneResult(cutoff, True, at_floor, refusal, asked - at_floor, floor_cutoff)


def prune_history(engine: Engine, cutoff: datetime, *, dry_run: bool = False) -> PruneCounts:
    """Delete history older than `cutoff`; with `dry_run`, only count it.

    Kept whatever their age: each user's newest snapshot (the last known status), and the
    newest poll run (so `status` still shows when the poller last ran). Errors go with their
    run, as poll_errors.run_id refers to it. The caller checks the floor.
    """
    with engine.begin() as connection:
        revisions = _revisions_table(connection)
        if dry_run:
            return count_history(connection, cutoff, revisions)
        deleted = {
            "poll_errors": connection.execute(delete(PollError).where(_old_errors(cutoff))).rowcount,
            "poll_runs": connection.execute(delete(PollRun).where(_old_runs(cutoff))).rowcount,
            "snapshots": connection.execute(delete(Snapshot).where(_old_snapshots(cutoff))).rowcount,
            "workday_records": connection.execute(
                delete(workday_records_table).where(_all_older(workday_records_table, cutoff))
            ).rowcount,
        }
        if revisions is not None:
            deleted["workday_revisions"] = connection.execute(
                delete(revisions).where(_all_older(revisions, cutoff))
            ).rowcount
    return PruneCounts(**{name: int(count or 0) for name, count in deleted.items()})


def count_history(connection: Connection, cutoff: datetime, revisions: Table | None) -> PruneCounts:
    """What prune_history would delete at `cutoff`, counted with its own conditions."""
    return PruneCounts(
        snapshots=_count(connection, Snapshot.__table__, _old_snapshots(cutoff)),
        poll_runs=_count(connection, PollRun.__table__, _old_runs(cutoff)),
        poll_errors=_count(connection, PollError.__table__, _old_errors(cutoff)),
        workday_records=_count(connection, workday_records_table, _all_older(workday_records_table, cutoff)),
        workday_revisions=(
            _count(connection, revisions, _all_older(revisions, cutoff)) if revisions is not None else 0
        ),
    )


def _revisions_table(connection: Connection) -> Table | None:
    """The workday_revisions table where the models and the database both have it."""
    table = Base.metadata.tables.get(REVISIONS)
    if table is None or not inspect(connection).has_table(REVISIONS):
        return None
    return table


def _count(connection: Connection, table: object, condition: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(table).where(condition)  # type: ignore[arg-type]
    return int(connection.execute(query).scalar_one())


def _instants(table: Table) -> Iterator[ColumnElement[datetime]]:
    return (column for column in table.c if isinstance(column.type, UTCDateTime))


def _all_older(table: Table, cutoff: datetime) -> ColumnElement[bool]:
    """Every instant of the row (start, end, when fetched or seen) before `cutoff`, or null."""
    return and_(*(or_(column.is_(None), column < cutoff) for column in _instants(table)))


def _old_snapshots(cutoff: datetime) -> ColumnElement[bool]:
    """Last seen before `cutoff`, and not the newest row of its portal and user."""
    newer = aliased(Snapshot)
    has_newer = (
        select(newer.id)
        .where(
            (newer.portal == Snapshot.portal)
            & (newer.user_id == Snapshot.user_id)
            & (newer.polled_at > Snapshot.polled_at)
        )
        .exists()
    )
    return (Snapshot.last_seen_at < cutoff) & has_newer


def _old_runs(cutoff: datetime) -> ColumnElement[bool]:
    """Started before `cutoff`, and not the newest run."""
    newest = select(func.max(PollRun.id)).scalar_subquery()
    return (PollRun.started_at < cutoff) & (PollRun.id != newest)


def _old_errors(cutoff: datetime) -> ColumnElement[bool]:
    """Occurred before `cutoff`, or belonging to a run that goes."""
    old_runs = select(PollRun.id).where(_old_runs(cutoff))
    return or_(PollError.occurred_at < cutoff, PollError.run_id.in_(old_runs))
