"""Delete, or count, the history older than a cutoff: the SQL of `prune`.

Which age may be pruned (the retention floor) is the caller's policy: poller.history.retention.
A row goes only when every instant it holds is older than the cutoff (a record of an old day
fetched last week stays), and a count uses the same conditions as the delete. The workdays
table is never pruned: it is the history the reports read, kept after its raw polls go.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, delete, func, inspect, or_, select
from sqlalchemy.orm import aliased

from poller.models import Base, PollError, PollRun, Snapshot, UTCDateTime, workday_records_table
from poller.storage.failures import database_call

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


@database_call
def prune_history(engine: Engine, cutoff: datetime, *, dry_run: bool = False) -> PruneCounts:
    """Delete history older than `cutoff`; with `dry_run`, only count it.

    Kept whatever their age: each user's newest snapshot (the last known status), and the
    newest poll run (so `status` still shows when the poller last ran). Errors go with their
    run, as poll_errors.run_id refers to it. The caller checks the floor.
    """
    with engine.begin() as connection:
        revisions = _revisions_table(connection)
        if dry_run:
            return _count_history(connection, cutoff, revisions)
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


@database_call
def count_history(engine: Engine, *cutoffs: datetime) -> list[PruneCounts]:
    """What prune_history would delete at each of `cutoffs`, counted in one read."""
    with engine.connect() as connection:
        revisions = _revisions_table(connection)
        return [_count_history(connection, cutoff, revisions) for cutoff in cutoffs]


def _count_history(connection: Connection, cutoff: datetime, revisions: Table | None) -> PruneCounts:
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
