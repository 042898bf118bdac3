"""Norms and schedules as versions: `timeman.settings` per user, `timeman.schedule.get` by id,
and the config's user or department to schedule map (poller.storage.versioned).

The inputs are read by their attributes, so the client's parsed values
(poller.bitrix.norms.UserNorms and Schedule) go in as they are; storage does not import the
client. A report of a past month reads the version in force on each day (`norm_on`): the
one whose period holds the day, counted in UTC dates; the first version seen also stands
for the days before it (nothing older is known).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select

from poller.models import schedule_assignments_table, schedules_table, user_norms_table
from poller.storage.failures import database_call
from poller.storage.statements import one_of
from poller.storage.versioned import VersionsSaved, save_versions

NORM_COLUMNS = ("tracked", "free", "max_start", "min_finish", "min_duration", "allowed_delta")
SCHEDULE_COLUMNS = (
    "name", "schedule_type", "report_period", "shifts", "shift_start", "shift_end", "shift_break",
    "work_days", "violation_rules",
)  # fmt: skip
SUBJECTS = ("user", "department")


class UserNormsLike(Protocol):
    """One user's parsed `timeman.settings` (seconds from local midnight, or durations)."""

    @property
    def user_id(self) -> int: ...
    @property
    def tracked(self) -> bool | None: ...
    @property
    def free(self) -> bool | None: ...
    @property
    def max_start(self) -> int | None: ...
    @property
    def min_finish(self) -> int | None: ...
    @property
    def min_duration(self) -> int | None: ...
    @property
    def allowed_delta(self) -> int | None: ...
    @property
    def raw(self) -> Mapping[str, Any]: ...


class ShiftLike(Protocol):
    @property
    def shift_id(self) -> int | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def start(self) -> int | None: ...
    @property
    def end(self) -> int | None: ...
    @property
    def break_seconds(self) -> int | None: ...
    @property
    def work_days(self) -> Collection[int]: ...  # 1 = Monday ... 7 = Sunday
    @property
    def deleted(self) -> bool | None: ...


class ScheduleLike(Protocol):
    """A parsed `timeman.schedule.get` answer."""

    @property
    def schedule_id(self) -> int: ...
    @property
    def name(self) -> str | None: ...
    @property
    def schedule_type(self) -> str | None: ...
    @property
    def report_period(self) -> str | None: ...
    @property
    def shifts(self) -> Sequence[ShiftLike]: ...
    @property
    def violation_rules(self) -> Mapping[str, int | None]: ...
    @property
    def raw(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class NormVersion:
    """One stored version of a user's norms and the period it held."""

    user_id: int
    tracked: bool | None
    free: bool | None
    max_start: int | None
    min_finish: int | None
    min_duration: int | None
    allowed_delta: int | None
    valid_from: datetime
    valid_to: datetime | None

    def holds(self, day: date) -> bool:
        """Whether the version was in force at the end of `day` (UTC dates)."""
        return self.valid_from.date() <= day and (self.valid_to is None or day < self.valid_to.date())


@database_call
def save_norms(
    engine: Engine, portal: str, norms: Iterable[UserNormsLike], seen_at: datetime
) -> VersionsSaved:
    """Store the norms read at `seen_at`: a new version only for a user whose norms changed.

    Users not in `norms` (their read failed) keep their current version. The raw answer is kept
    as first seen: only the parsed values make a new version.
    """
    rows = {
        (item.user_id,): {**{name: getattr(item, name) for name in NORM_COLUMNS}, "raw": dict(item.raw)}
        for item in norms
    }
    with engine.begin() as connection:
        return save_versions(
            connection, user_norms_table, portal, ("user_id",), rows, seen_at, compared=NORM_COLUMNS
        )


@database_call
def get_norms(
    engine: Engine, portal: str, date_from: date, date_to: date, user_ids: Collection[int] | None = None
) -> dict[int, list[NormVersion]]:
    """Each user's versions in force on some day of `date_from`..`date_to`, oldest first (see
    `norm_on`). A user's first version also covers the range's days before it."""
    found = read_norm_versions(engine, portal, user_ids)
    return {
        user_id: [
            version
            for at, version in enumerate(versions)
            if (version.valid_to is None or date_from < version.valid_to.date())
            and (at == 0 or version.valid_from.date() <= date_to)
        ]
        for user_id, versions in found.items()
    }


def read_norm_versions(
    engine: Engine, portal: str, user_ids: Collection[int] | None = None
) -> dict[int, list[NormVersion]]:
    """Every stored version of each user's norms, oldest first; callers pick the ones they need."""
    table = user_norms_table
    query = select(*(table.c[name] for name in ("user_id", *NORM_COLUMNS, "valid_from", "valid_to")))
    query = query.where(table.c.portal == portal).order_by(table.c.user_id, table.c.valid_from)
    found: dict[int, list[NormVersion]] = {}
    with engine.connect() as connection:
        if user_ids is not None:
            query = query.where(one_of(connection, table.c.user_id, list(user_ids)))
        for row in connection.execute(query):
            found.setdefault(row.user_id, []).append(NormVersion(*row))
    return found


def norm_on(versions: Sequence[NormVersion], day: date) -> NormVersion | None:
    """The version in force on `day` among one user's `versions` (oldest first, as get_norms
    gives them); the oldest stands for the days before it."""
    for at, version in enumerate(versions):
        if version.holds(day) or (at == 0 and day < version.valid_from.date()):
            return version
    return None


@database_call
def save_schedules(
    engine: Engine, portal: str, schedules: Iterable[ScheduleLike], seen_at: datetime
) -> VersionsSaved:
    """Store the schedules read at `seen_at`, a new version for each one that changed.

    The first shift that is not deleted gives shift_start, shift_end, shift_break and
    work_days; `shifts` holds every shift.
    """
    rows = {(schedule.schedule_id,): schedule_values(schedule) for schedule in schedules}
    with engine.begin() as connection:
        return save_versions(
            connection, schedules_table, portal, ("schedule_id",), rows, seen_at, compared=SCHEDULE_COLUMNS
        )


def schedule_values(schedule: ScheduleLike) -> dict[str, Any]:
    """The schedules row of `schedule`, without its key and validity."""
    shifts = [
        {
            "id": shift.shift_id,
            "name": shift.name,
            "start": shift.start,
            "end": shift.end,
            "break": shift.break_seconds,
            "work_days": _days(shift.work_days),
            "deleted": shift.deleted,
        }
        for shift in schedule.shifts
    ]
    first = next((shift for shift in shifts if not shift["deleted"]), None) or {}
    return {
        "name": schedule.name,
        "schedule_type": schedule.schedule_type,
        "report_period": schedule.report_period,
        "shifts": shifts,
        "shift_start": first.get("start"),
        "shift_end": first.get("end"),
        "shift_break": first.get("break"),
        "work_days": first.get("work_days"),
        "violation_rules": dict(schedule.violation_rules),
        "raw": dict(schedule.raw),
    }


def _days(days: Collection[int]) -> str:
    """{1, 2, 3, 4, 5} as "12345"."""
    return "".join(str(day) for day in sorted(days))


@database_call
def save_schedule_assignments(
    engine: Engine, portal: str, assignments: Mapping[tuple[str, int], int], seen_at: datetime
) -> VersionsSaved:
    """Store the config's whole map, (subject, id) -> schedule id, subject 'user' or
    'department': an entry gone from the map is closed at `seen_at`."""
    for subject, _ in assignments:
        if subject not in SUBJECTS:
            raise ValueError(f"schedule assignment subject {subject!r}: expected one of {SUBJECTS}")
    rows = {key: {"schedule_id": schedule_id} for key, schedule_id in assignments.items()}
    with engine.begin() as connection:
        return save_versions(
            connection,
            schedule_assignments_table,
            portal,
            ("subject", "subject_id"),
            rows,
            seen_at,
            compared=("schedule_id",),
            complete=True,
        )
