"""Absences: one row per user, local day and `absent` calendar event, refreshed by window.

A refresh of users U over days [from, to] is the portal's whole answer for that window: a day
it lists that is not stored is added, a stored day it no longer lists gets removed_at (the
refresh's time) instead of being deleted, and a day whose event changed (its name, span or
whole-day flag) is marked removed and added again as it is now. Days outside the window, and
users outside U, are left alone. A user whose answer was only partly read (`partly_read`) gets
the days read added or updated and keeps every stored day not read: none is taken as withdrawn.
The inputs are read by their attributes, so the client's poller.bitrix.calendar.Absence goes
in as it is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from poller.models import absences_table
from poller.storage.failures import database_call
from poller.storage.statements import chunks, one_of
from poller.storage.statistics import note_rows_added

_VALUES = ("name", "whole_day", "starts_at", "ends_at")
_USERS_PER_QUERY = 1000


class AbsenceLike(Protocol):
    """One `absent` event of one user; first_day/last_day are the user's local dates."""

    @property
    def user_id(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def whole_day(self) -> bool: ...
    @property
    def first_day(self) -> date: ...
    @property
    def last_day(self) -> date: ...


@dataclass(frozen=True)
class AbsencesSaved:
    """Days added, days marked removed, days unchanged (a changed day counts as both removed and
    added). A partial unique index allows one current row per day and event: a save that loses a
    race to another writer is retried once on what that writer stored, then counted as stale."""

    added: int
    removed: int
    unchanged: int
    stale: int = 0  # days not stored: two tries lost the race to another writer


@dataclass(frozen=True)
class AbsenceDay:
    """One current absences row."""

    user_id: int
    day: date
    event_id: str
    name: str | None
    whole_day: bool
    starts_at: datetime
    ends_at: datetime


DayKey = tuple[int, date, str]  # user_id, day, event_id


@database_call
def save_absences(
    engine: Engine,
    portal: str,
    user_ids: Collection[int],
    date_from: date,
    date_to: date,
    absences: Iterable[AbsenceLike],
    fetched_at: datetime,
    partly_read: Collection[int] = (),
) -> AbsencesSaved:
    """Replace the window `date_from`..`date_to` of `user_ids` with `absences` (see the module)."""
    keep = set(partly_read)
    users = set(user_ids) | keep
    wanted: dict[DayKey, dict[str, Any]] = {}
    for absence in absences:
        if absence.user_id not in users:
            raise ValueError(f"absence of user {absence.user_id}, who is not among the refreshed users")
        values = {name: getattr(absence, name) for name in _VALUES}
        day = max(absence.first_day, date_from)
        while day <= min(absence.last_day, date_to):
            wanted.setdefault((absence.user_id, day, str(absence.event_id)), values)
            day += timedelta(days=1)
    for _ in range(2):  # a lost race is retried once on the rows the other writer stored
        try:
            with engine.begin() as connection:
                return _replace(
                    connection, portal, sorted(users), date_from, date_to, wanted, fetched_at, keep
                )
        except IntegrityError:
            continue
    return AbsencesSaved(added=0, removed=0, unchanged=0, stale=len(wanted))


def _replace(
    connection: Connection,
    portal: str,
    user_ids: list[int],
    date_from: date,
    date_to: date,
    wanted: dict[DayKey, dict[str, Any]],
    fetched_at: datetime,
    keep: set[int],
) -> AbsencesSaved:
    """One attempt of `save_absences`; raises IntegrityError when another writer came first."""
    stored = _stored(connection, portal, user_ids, date_from, date_to)
    removed = [
        {"_id": row_id, "_at": fetched_at}
        for key, (row_id, values) in stored.items()
        if wanted.get(key) != values and (key in wanted or key[0] not in keep)
    ]
    added = [
        {"portal": portal, "user_id": key[0], "day": key[1], "event_id": key[2], **values,
         "fetched_at": fetched_at}
        for key, values in wanted.items()
        if key not in stored or stored[key][1] != values
    ]  # fmt: skip
    if removed:
        table = absences_table
        connection.execute(
            update(table).where(table.c.id == bindparam("_id")).values(removed_at=bindparam("_at")),
            removed,
        )
    if added:
        connection.execute(insert(absences_table), added)
        note_rows_added(connection, "absences", len(added))  # the attendance view plans on them
    return AbsencesSaved(added=len(added), removed=len(removed), unchanged=len(wanted) - len(added))


def _stored(
    connection: Connection, portal: str, user_ids: list[int], date_from: date, date_to: date
) -> dict[DayKey, tuple[int, dict[str, Any]]]:
    """The current rows of the window, by key: (id, compared values)."""
    c = absences_table.c
    found: dict[DayKey, tuple[int, dict[str, Any]]] = {}
    for part in chunks(user_ids, _USERS_PER_QUERY):
        query = select(c.id, c.user_id, c.day, c.event_id, *(c[name] for name in _VALUES)).where(
            c.portal == portal,
            one_of(connection, c.user_id, part),
            c.day >= date_from,
            c.day <= date_to,
            c.removed_at.is_(None),
        )
        for row in connection.execute(query).mappings():
            found[(row["user_id"], row["day"], row["event_id"])] = (row["id"], {n: row[n] for n in _VALUES})
    return found


@database_call
def get_absences(
    engine: Engine, portal: str, date_from: date, date_to: date, user_ids: Collection[int] | None = None
) -> list[AbsenceDay]:
    """The current absence days of `date_from`..`date_to`, by user, day and event."""
    c = absences_table.c
    query = (
        select(c.user_id, c.day, c.event_id, *(c[name] for name in _VALUES))
        .where(c.portal == portal, c.day >= date_from, c.day <= date_to, c.removed_at.is_(None))
        .order_by(c.user_id, c.day, c.event_id)
    )
    with engine.connect() as connection:
        if user_ids is not None:
            query = query.where(one_of(connection, c.user_id, list(user_ids)))
        return [AbsenceDay(*row) for row in connection.execute(query)]
