"""workday_revisions: what a stored record or a closed day was, what it became, and when.

Nothing the portal answered is overwritten without a trace. Two kinds of change are kept, one
row per field, in the transaction that makes the change:

- source "record": a stored workday_records row comes back with other values (a manager edited
  the day in Bitrix24, or approved it). Every parsed column that differs, and `raw.<key>` for a
  key of the raw item that changed without a parsed column showing it; except, while a record
  is open and its work date is not yet past (in startTime's own offset), the fields that move
  as a day goes on (GOING_ON: end, duration, breaks, status; the snapshots hold them). Its
  start, approval and work date are always kept, and so is any change once its date is past
  (a day left open and set right by a manager days later). `old_seen_at` is when
  the old values were fetched, `changed_at` when the new ones were.
- source "workday": a day of the workdays table that was final (not an estimate) and lay in
  the past (its work date before the local date of the change) changes its figures (DAY_REVISED;
  not its status when a record takes over a polled day) or goes away (a removed day: every
  figure becomes null; a day that moved with its record's start: field "time_start" too).
  `old_seen_at` is when a poll last saw the old figures.

Revisions are never updated or deleted here. A revision whose day's month was closed (a
month_closes row) when it came is `after_close`. workdays.corrections counts the distinct
moments a day changed (both kinds), corrections_after_close those after its month's close.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, distinct, func, or_, select, update

from poller.fields import RECORD_FIELDS
from poller.history.canonical import plain_value
from poller.models import month_closes_table, workday_revisions_table, workdays_table
from poller.storage.directory import names_of
from poller.storage.statements import chunks, insert_or_skip

WorkdayKey = tuple[int, datetime]
Day = dict[str, Any]

RECORD_REVISED = (*(spec.column for spec in RECORD_FIELDS if spec.column != "record_id"), "work_date")
DAY_REVISED = (
    "work_date",
    "time_finish",
    "status",
    "worked_seconds",
    "worked_is_estimate",
    "leaks_seconds",
    "pending_approval",
)
# What an open record's day changes as it goes on: no correction while its date is today or later.
GOING_ON = frozenset({"end_time", "duration_seconds", "break_seconds", "status"})
# The raw item's keys that parsed columns show ("state.status" is read from "state").
_SHOWN_BY: dict[str, set[str]] = {}
for _spec in RECORD_FIELDS:
    if _spec.key is not None:
        _SHOWN_BY.setdefault(_spec.key.partition(".")[0], set()).add(_spec.column)
_UNIQUE = ("portal", "source", "user_id", "time_start", "field", "changed_at")


def is_going_on(before: Mapping[Any, Any], now: datetime) -> bool:
    """Whether a stored record is an open day not yet past at `now`: its end, duration, breaks
    and status still move on their own. Its date is startTime's in the offset it was written in
    (as workday_records.work_date), so today is taken in that offset too."""
    if before["end_time"] is not None or before["work_date"] is None:
        return False
    raw = before["raw"].get("startTime") if isinstance(before["raw"], dict) else None
    try:
        written = datetime.fromisoformat(raw).tzinfo if isinstance(raw, str) else None
    except ValueError:
        written = None
    today = now.astimezone(written or UTC).date()
    return bool(before["work_date"] >= today)


def record_revisions(
    portal: str, before: Mapping[Any, Any], after: Mapping[str, Any], changed_at: datetime
) -> list[dict[str, Any]]:
    """The revisions of one stored record (`before`, a workday_records row) that came back as
    `after`; while the record is an open day not yet past (is_going_on), not those of GOING_ON."""
    skipped = GOING_ON if is_going_on(before, changed_at) else frozenset()
    base = {
        "portal": portal,
        "user_id": before["user_id"],
        "work_date": before["work_date"],
        "time_start": before["start_time"],
        "record_id": before["record_id"],
        "source": "record",
        "old_seen_at": before["fetched_at"],
        "changed_at": changed_at,
    }
    changed = [column for column in RECORD_REVISED if before[column] != after[column]]
    rows = [_row(base, column, before[column], after[column]) for column in changed if column not in skipped]
    old_raw, new_raw = before["raw"], after["raw"]
    if not isinstance(old_raw, dict) or not isinstance(new_raw, dict):
        if old_raw != new_raw:
            rows.append(_row(base, "raw", old_raw, new_raw))
        return rows
    for key in sorted(set(old_raw) | set(new_raw)):
        shown = _SHOWN_BY.get(key, set())
        if shown and shown <= skipped:
            continue
        if old_raw.get(key) != new_raw.get(key) and not shown & set(changed):
            rows.append(_row(base, f"raw.{key}", old_raw.get(key), new_raw.get(key)))
    return rows


def _row(base: Mapping[str, Any], name: str, old: Any, new: Any) -> dict[str, Any]:
    return {**base, "field": name, "old_value": plain_value(old), "new_value": plain_value(new)}


def is_final_past(day: Day, seen_at: datetime) -> bool:
    """Whether `day` held final figures of a date already over (in its own offset) at `seen_at`."""
    if day["worked_is_estimate"] or day["work_date"] is None:
        return False
    local = (seen_at + timedelta(seconds=day["tz_offset"] or 0)).date()
    return bool(day["work_date"] < local)


@dataclass
class DayChanges:
    """The days one write stored or deleted, and what they were before it (for their revisions).

    `known` are the keys whose stored day (in `before`) or absence is known; `revised` the
    days whose record changed (recounted whatever else happens).
    """

    seen_at: datetime | None = None
    before: dict[WorkdayKey, Day] = field(default_factory=dict)
    known: set[WorkdayKey] = field(default_factory=set)
    stored: dict[WorkdayKey, Day] = field(default_factory=dict)
    deleted: set[WorkdayKey] = field(default_factory=set)
    revised: set[WorkdayKey] = field(default_factory=set)

    def remember(self, days: Mapping[WorkdayKey, Day], keys: Iterable[WorkdayKey]) -> None:
        """Take `days` as the stored days of `keys` (a key not in `days` had none)."""
        for key in keys:
            if key not in self.known:
                self.known.add(key)
                if key in days:
                    self.before[key] = days[key]

    def unknown(self, keys: Iterable[WorkdayKey]) -> set[WorkdayKey]:
        return {key for key in keys if key not in self.known}

    def note_stored(self, days: Mapping[WorkdayKey, Day]) -> None:
        for key, day in days.items():
            self.stored[key] = day
            self.deleted.discard(key)

    def note_deleted(self, keys: Iterable[WorkdayKey]) -> None:
        for key in keys:
            self.deleted.add(key)
            self.stored.pop(key, None)

    def see(self, moments: Iterable[datetime]) -> None:
        self.seen_at = max([*moments, *([self.seen_at] if self.seen_at else [])], default=None)


def save_day_changes(connection: Connection, portal: str, changes: DayChanges) -> None:
    """Keep the revisions of the final past days `changes` altered; recount the days concerned."""
    arrived = {
        (user_id, day["record_id"]): (user_id, time_start)
        for (user_id, time_start), day in changes.stored.items()
        if (user_id, time_start) not in changes.before and day["record_id"]
    }
    rows: list[dict[str, Any]] = []
    recount = set(changes.revised)
    for key, before in changes.before.items():
        if key not in changes.stored and key not in changes.deleted:
            continue
        moved = None
        if key in changes.stored:
            after: Day | None = changes.stored[key]
        else:
            moved = arrived.get((key[0], before["record_id"])) if before["record_id"] else None
            after = changes.stored[moved] if moved is not None else None
            if moved is not None:
                recount.add(moved)
        if changes.seen_at is None or not is_final_past(before, changes.seen_at):
            continue
        found = day_revisions(portal, key, before, after, changes.seen_at, moved)
        if found:
            rows += found
            recount.add(moved or key)
    save_revisions(connection, portal, rows)
    recount_days(connection, portal, recount)


def day_revisions(
    portal: str,
    key: WorkdayKey,
    before: Day,
    after: Day | None,
    changed_at: datetime,
    moved_to: WorkdayKey | None = None,
) -> list[dict[str, Any]]:
    """The revisions of one final past day that became `after` (None: removed) at `changed_at`."""
    user_id, time_start = key
    base = {
        "portal": portal,
        "user_id": user_id,
        "work_date": before["work_date"],
        "time_start": time_start,
        "record_id": before["record_id"] or (after["record_id"] if after is not None else None),
        "source": "workday",
        "old_seen_at": before["last_seen_at"],
        "changed_at": changed_at,
    }
    rows = []
    if after is None or moved_to is not None:
        rows.append(_row(base, "time_start", time_start, moved_to[1] if moved_to is not None else None))
    # The first record of a polled day says its status in the record's words (REST 3.0 leaves the
    # values undocumented): only its figures are compared then.
    handover = after is not None and after["source"] != before["source"]
    for column in DAY_REVISED:
        if handover and column == "status":
            continue
        new = after[column] if after is not None else None
        if before[column] != new:
            rows.append(_row(base, column, before[column], new))
    return rows


def save_revisions(connection: Connection, portal: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert revision rows (a replay of one adds nothing), flagged when their month is closed."""
    if not rows:
        return
    closed = closed_months(connection, portal, {row["work_date"] for row in rows if row["work_date"]})
    flagged = [
        {**row, "after_close": row["work_date"] is not None and _month(row["work_date"]) in closed}
        for row in rows
    ]
    for chunk in chunks(flagged, 500):
        connection.execute(insert_or_skip(connection, workday_revisions_table, _UNIQUE), chunk)


def closed_months(connection: Connection, portal: str, dates: Collection[date]) -> set[date]:
    """The months (first days) among those of `dates` that `portal` has closed."""
    months = {_month(day) for day in dates}
    if not months:
        return set()
    table = month_closes_table.c
    query = select(table.month).where(table.portal == portal, table.month.in_(months))
    return set(connection.execute(query).scalars())


def recount_days(connection: Connection, portal: str, keys: Collection[WorkdayKey]) -> None:
    """Set workdays.corrections (and _after_close) of `keys` from the revisions of their day:
    those under its start, and those of its record (which may have had another start)."""
    if not keys:
        return
    r, w = workday_revisions_table.c, workdays_table.c
    match = and_(
        r.portal == w.portal,
        r.user_id == w.user_id,
        or_(r.time_start == w.time_start, r.record_id == w.record_id),
    )
    count = select(func.count(distinct(r.changed_at))).where(match).scalar_subquery()
    late = select(func.count(distinct(case((r.after_close, r.changed_at))))).where(match).scalar_subquery()
    statement = (
        update(workdays_table)
        .where(w.portal == portal, w.user_id == bindparam("u"), w.time_start == bindparam("t"))
        .values(corrections=count, corrections_after_close=late)
    )
    connection.execute(statement, [{"u": user_id, "t": time_start} for user_id, time_start in keys])


def _month(day: date) -> date:
    return day.replace(day=1)


def get_revisions(
    engine: Engine, month: date, *, portals: Sequence[str] = (), users: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """The revisions of days of `month` (by the date before the change, or a date moved into it),
    oldest first, with the directory's user_name and department."""
    first, last = _month(month), _month(month + timedelta(days=31)) - timedelta(days=1)
    r = workday_revisions_table.c
    moved_in = and_(r.field == "work_date", r.new_value.between(first.isoformat(), last.isoformat()))
    query = select(workday_revisions_table).where(or_(r.work_date.between(first, last), moved_in))
    if portals:
        query = query.where(r.portal.in_(portals))
    if users:
        query = query.where(r.user_id.in_(users))
    query = query.order_by(r.portal, r.user_id, r.work_date, r.changed_at, r.id)
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
        names: dict[str, dict[int, tuple[str | None, str | None]]] = {}
        for portal in {row["portal"] for row in rows}:
            names[portal] = names_of(
                connection, portal, {row["user_id"] for row in rows if row["portal"] == portal}
            )
    for row in rows:
        row["user_name"], row["department"] = names[row["portal"]].get(row["user_id"], (None, None))
    return rows
