"""Reads for the commands: newest snapshots, report views, recent runs, error summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.orm import Session

from poller.models import PollError, PollRun, Snapshot
from poller.storage.failures import database_call


@database_call
def get_latest_snapshots(engine: Engine, portal: str | None = None) -> list[Snapshot]:
    """The newest snapshot of every portal and user, ordered by portal and user."""
    newest = (
        select(Snapshot.portal, Snapshot.user_id, func.max(Snapshot.polled_at).label("polled_at"))
        .group_by(Snapshot.portal, Snapshot.user_id)
        .subquery()
    )
    query = (
        select(Snapshot)
        .join(
            newest,
            (Snapshot.portal == newest.c.portal)
            & (Snapshot.user_id == newest.c.user_id)
            & (Snapshot.polled_at == newest.c.polled_at),
        )
        .order_by(Snapshot.portal, Snapshot.user_id)
    )
    if portal is not None:
        query = query.where(Snapshot.portal == portal)
    with Session(engine) as session:
        return list(session.scalars(query))


@database_call
def get_view_rows(
    engine: Engine,
    view: Table,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    portals: Sequence[str] = (),
    users: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Rows of one report view, filtered on work_date, portal and user, in a stable order."""
    query = select(view)
    if date_from is not None:
        query = query.where(view.c.work_date >= date_from)
    if date_to is not None:
        query = query.where(view.c.work_date <= date_to)
    if portals:
        query = query.where(view.c.portal.in_(portals))
    if users:
        query = query.where(view.c.user_id.in_(users))
    order = [view.c.portal, view.c.user_id]
    if "work_date" in view.c:
        order.append(view.c.work_date)
    if "time_start" in view.c:
        order.append(view.c.time_start)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query.order_by(*order))]


@database_call
def get_recent_runs(engine: Engine, limit: int = 10) -> list[PollRun]:
    """The newest poll_runs rows, newest first."""
    with Session(engine) as session:
        return list(session.scalars(select(PollRun).order_by(PollRun.id.desc()).limit(limit)))


@database_call
def get_error_summary(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    """Errors since `since` per portal and code: how many, users hit, the last message."""
    query = (
        select(
            PollError.portal,
            PollError.code,
            func.count().label("count"),
            func.count(func.distinct(PollError.user_id)).label("users"),
            func.max(PollError.occurred_at).label("last_at"),
        )
        .where(PollError.occurred_at >= since)
        .group_by(PollError.portal, PollError.code)
        .order_by(PollError.portal, func.count().desc())
    )
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
        for row in rows:
            row["last_message"] = connection.execute(
                select(PollError.message)
                .where(PollError.portal == row["portal"], PollError.code == row["code"])
                .order_by(PollError.occurred_at.desc())
                .limit(1)
            ).scalar_one()
    return rows
