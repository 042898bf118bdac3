"""Working-time norms: `timeman.settings` per user (50 per batch) and `timeman.schedule.get` by id.

Bitrix24 calls a day late when it starts after UF_TM_MAX_START, early when it ends before
UF_TM_MIN_FINISH, short when it lasts less than UF_TM_MIN_DURATION (each beyond
UF_TM_ALLOWED_DELTA), in the user's own time zone. Times come as "HH:MM:SS" and are kept as
seconds from local midnight. A bad value becomes None with a one-line warning naming the
portal and the user; the user's other values are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from poller.bitrix.client import PortalClient
from poller.bitrix.per_user import fetch_per_user
from poller.bitrix.values import DAY, Problems, flag, hms, integer, text
from poller.errors import BitrixError, TransportError

SETTINGS_METHOD = "timeman.settings"
SCHEDULE_METHOD = "timeman.schedule.get"
# SCHEDULE_VIOLATION_RULES kept as numbers of seconds (-1 there: the rule is off, kept as None).
VIOLATION_RULES = (
    "MAX_EXACT_START",
    "MIN_EXACT_END",
    "MAX_OFFSET_START",
    "MIN_OFFSET_END",
    "RELATIVE_START_FROM",
    "RELATIVE_START_TO",
    "RELATIVE_END_FROM",
    "RELATIVE_END_TO",
    "MIN_DAY_DURATION",
    "MAX_ALLOWED_TO_EDIT_WORK_TIME",
    "MAX_WORK_TIME_LACK_FOR_PERIOD",
    "MAX_SHIFT_START_DELAY",
)


@dataclass(frozen=True)
class UserNorms:
    """One user's `timeman.settings`: times of day and durations in seconds, None when unset or bad."""

    user_id: int
    tracked: bool | None  # UF_TIMEMAN: time tracking on
    free: bool | None  # UF_TM_FREE: a free schedule, changes need no approval
    max_start: int | None
    min_finish: int | None
    min_duration: int | None
    allowed_delta: int | None
    raw: Mapping[str, Any]
    warnings: tuple[str, ...] = ()


@dataclass
class NormsFetch:
    """The norms of the users that answered; the users whose sub-call failed, with its error."""

    norms: dict[int, UserNorms] = field(default_factory=dict)
    errors: dict[int, BitrixError] = field(default_factory=dict)


def fetch_settings(client: PortalClient, user_ids: Sequence[int]) -> NormsFetch:
    """Read `timeman.settings` of every user, 50 per batch request (ceil(N/50) requests).

    An error that hits the whole portal (scope, rights, credentials, the method's time
    budget) is raised; "User not found" and the like stay with their user in `errors`.
    """
    answers = fetch_per_user(client, SETTINGS_METHOD, user_ids)
    fetched = NormsFetch(errors=answers.errors)
    for user_id, result in answers.results.items():
        fetched.norms[user_id] = parse_settings(
            user_id, result, f"portal {client.portal.name} user {user_id}"
        )
    return fetched


def parse_settings(user_id: int, result: Any, whose: str) -> UserNorms:
    """Parse one `timeman.settings` result; `whose` opens each warning."""
    problems = Problems(whose)
    if not isinstance(result, dict):
        problems.add("result", result, "is not an object")
        return UserNorms(
            user_id, None, None, None, None, None, None, {"_unparsed": result}, tuple(problems.lines)
        )
    return UserNorms(
        user_id=user_id,
        tracked=flag(result, "UF_TIMEMAN", problems),
        free=flag(result, "UF_TM_FREE", problems),
        max_start=hms(result, "UF_TM_MAX_START", problems),
        min_finish=hms(result, "UF_TM_MIN_FINISH", problems),
        min_duration=hms(result, "UF_TM_MIN_DURATION", problems),
        allowed_delta=hms(result, "UF_TM_ALLOWED_DELTA", problems),
        raw=result,
        warnings=tuple(problems.lines),
    )


@dataclass(frozen=True)
class Shift:
    """A shift of a schedule: start and end in seconds from local midnight (an end below the
    start ends the next day), its break, and its weekdays (1 = Monday ... 7 = Sunday)."""

    shift_id: int | None
    name: str | None
    start: int | None
    end: int | None
    break_seconds: int | None
    work_days: frozenset[int]
    deleted: bool | None

    @property
    def work_days_text(self) -> str:
        """The weekdays as the portal writes them: "12345"."""
        return "".join(str(day) for day in sorted(self.work_days))


@dataclass(frozen=True)
class Schedule:
    """A work schedule: FIXED / SHIFT / FLEXTIME, its shifts, and its violation rules in seconds."""

    schedule_id: int
    name: str | None
    schedule_type: str | None
    report_period: str | None
    for_all_users: bool | None
    shifts: tuple[Shift, ...]
    exclusions: Any  # CALENDAR.EXCLUSIONS as sent (its shape is not documented)
    violation_rules: Mapping[str, int | None]
    raw: Mapping[str, Any]
    warnings: tuple[str, ...] = ()


def fetch_schedule(client: PortalClient, schedule_id: int) -> Schedule | None:
    """Read one schedule; None when the portal has none with this id (it answers `[]`)."""
    result = client.call(SCHEDULE_METHOD, {"id": schedule_id}).get("result")
    if result in ([], None, {}):
        return None
    if not isinstance(result, dict):
        raise TransportError(
            f"portal {client.portal.host}: {SCHEDULE_METHOD} result is not an object",
            code="BAD_RESPONSE",
            http_status=200,
        )
    return parse_schedule(schedule_id, result, f"portal {client.portal.name} schedule {schedule_id}")


def parse_schedule(schedule_id: int, result: dict[str, Any], whose: str) -> Schedule:
    """Parse one `timeman.schedule.get` result; `whose` opens each warning."""
    problems = Problems(whose)
    shifts = result.get("SHIFTS")
    if not isinstance(shifts, list):
        if shifts is not None:
            problems.add("SHIFTS", shifts, "is not a list")
        shifts = []
    rules = result.get("SCHEDULE_VIOLATION_RULES")
    rules = rules if isinstance(rules, dict) else {}
    calendar = result.get("CALENDAR")
    return Schedule(
        schedule_id=schedule_id,
        name=text(result, "NAME", problems),
        schedule_type=text(result, "SCHEDULE_TYPE", problems, length=20),
        report_period=text(result, "REPORT_PERIOD", problems, length=20),
        for_all_users=flag(result, "IS_FOR_ALL_USERS", problems),
        shifts=tuple(_shift(shift, problems) for shift in shifts if isinstance(shift, dict)),
        exclusions=calendar.get("EXCLUSIONS") if isinstance(calendar, dict) else None,
        violation_rules={key: _rule(rules, key, problems) for key in VIOLATION_RULES},
        raw=result,
        warnings=tuple(problems.lines),
    )


def _shift(row: dict[str, Any], problems: Problems) -> Shift:
    days = row.get("WORK_DAYS")
    work_days = frozenset(int(c) for c in str(days) if c in "1234567") if days is not None else frozenset()
    if days is not None and (not isinstance(days, str | int) or len(work_days) != len(set(str(days)))):
        problems.add("WORK_DAYS", days, "is not a string of weekday digits 1-7")
    return Shift(
        shift_id=integer(row, "ID", problems, low=0),
        name=text(row, "NAME", problems),
        start=integer(row, "WORK_TIME_START", problems, low=0, high=DAY),
        end=integer(row, "WORK_TIME_END", problems, low=0, high=DAY),
        break_seconds=integer(row, "BREAK_DURATION", problems, low=0, high=DAY),
        work_days=work_days,
        deleted=flag(row, "DELETED", problems),
    )


def _rule(rules: dict[str, Any], key: str, problems: Problems) -> int | None:
    value = integer(rules, key, problems, low=-1, high=7 * DAY)
    return None if value == -1 else value
