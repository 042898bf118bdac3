"""The attendance view on hand-built rows: one row per user and calendar day, its kind, and every
flag with its figure, the expected values worked out here from the rows written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, text

from poller import storage
from poller.models import users_table, workdays_table

H = 3600
MOSCOW = 3 * H
SEEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
CHANGED = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)  # user 1's max start moves from 09:00 to 10:00


@dataclass(frozen=True)
class Norms:
    user_id: int
    max_start: int | None = 9 * H
    min_finish: int | None = 18 * H
    min_duration: int | None = 8 * H
    allowed_delta: int | None = 900
    tracked: bool | None = True
    free: bool | None = False
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Absence:
    user_id: int
    event_id: str
    first_day: date
    last_day: date
    name: str | None = "Vacation"
    whole_day: bool = True
    starts_at: datetime = SEEN
    ends_at: datetime = SEEN


def _workday(
    user_id: int, day: date, start: int, finish: int | None, worked: int, *, offset: int = MOSCOW,
    leaks: int = 0, status: str = "CLOSED", pending: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A workdays row; `start` and `finish` in seconds from the day's local midnight."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(seconds=offset)
    return {
        "portal": "acme", "user_id": user_id, "work_date": day, "tz_offset": offset, "status": status,
        "time_start": midnight + timedelta(seconds=start),
        "time_finish": None if finish is None else midnight + timedelta(seconds=finish),
        "worked_seconds": worked, "worked_is_estimate": False, "leaks_seconds": leaks,
        "pending_approval": pending, "source": "polls",
    }  # fmt: skip


def _march(day: int) -> date:
    return date(2026, 3, day)


def _fill(engine: Engine) -> None:
    storage.save_calendar(
        engine, "acme", 2026, holidays=[_march(9)], moved_workdays=[_march(7)], week_holidays=[5, 6],
        source="portal", seen_at=SEEN,
    )  # fmt: skip
    storage.save_norms(engine, "acme", [Norms(1), Norms(3, tracked=False)], SEEN)
    storage.save_norms(engine, "acme", [Norms(1, max_start=10 * H)], CHANGED)
    storage.save_norms(engine, "acme", [Norms(4)], datetime(2026, 3, 20, tzinfo=UTC))
    window = (_march(1), _march(31))
    first = [Absence(1, "a", _march(4), _march(5))]
    storage.save_absences(engine, "acme", [1], *window, first, SEEN)
    storage.save_absences(engine, "acme", [1], *window, [Absence(1, "a", _march(5), _march(5))], CHANGED)
    rows = [
        _workday(1, _march(2), 9 * H + 20 * 60, 18 * H + 30 * 60, 8 * H + 1800, leaks=1800),
        _workday(1, _march(3), 9 * H + 10 * 60, 17 * H + 30 * 60, 7 * H + 1800),
        _workday(1, _march(6), 9 * H, None, H, status="EXPIRED", pending=True),
        _workday(1, _march(9), 10 * H, 14 * H, 4 * H),
        _workday(1, _march(10), 9 * H, 25 * H, 15 * H),
        _workday(1, _march(13), 9 * H + 1800, 18 * H, 8 * H),
        _workday(1, _march(16), 9 * H + 1800, 18 * H, 8 * H),
        _workday(2, _march(2), 11 * H, 19 * H, 8 * H, offset=0),
        _workday(4, _march(2), 9 * H + 1800, 18 * H, 8 * H),
        _workday(5, _march(2), 9 * H, 18 * H, 8 * H),
    ]
    with engine.begin() as connection:
        connection.execute(insert(workdays_table), rows)
        connection.execute(
            insert(users_table),
            [{"portal": "acme", "user_id": 5, "active": False, "updated_at": SEEN}],
        )


COLUMNS = (
    "work_date", "day_kind", "worked_seconds", "break_seconds", "start_seconds", "finish_seconds",
    "start_local", "finish_local", "late", "late_seconds", "early_leave", "early_leave_seconds",
    "short_day", "short_seconds", "overtime_seconds", "no_show", "unclosed", "pending_approval",
)  # fmt: skip
FLAGS = ("late", "early_leave", "short_day", "no_show", "unclosed", "pending_approval")


def _view(engine: Engine, user_id: int, last: date) -> list[dict[str, Any]]:
    query = text(
        f"SELECT {', '.join(COLUMNS)} FROM attendance WHERE portal = 'acme' AND user_id = :user"
        " AND work_date <= :last ORDER BY work_date"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"user": user_id, "last": last.isoformat()}).mappings()
        return [
            {name: bool(row[name]) if name in FLAGS else str(row[name]) if name == "work_date" else row[name]
             for name in COLUMNS}
            for row in rows
        ]  # fmt: skip


def _day(day: date, kind: str, **values: Any) -> dict[str, Any]:
    """The expected row: no work, no flag, unless `values` say otherwise."""
    row: dict[str, Any] = {name: None for name in COLUMNS} | {flag: False for flag in FLAGS}
    return row | {"work_date": day.isoformat(), "day_kind": kind} | values


def _worked(start: int, finish: int | None, worked: int, breaks: int = 0) -> dict[str, Any]:
    def clock(seconds: int) -> str:
        seconds %= 86400
        return f"{seconds // H:02d}:{seconds % H // 60:02d}:{seconds % 60:02d}"

    return {
        "worked_seconds": worked, "break_seconds": breaks, "start_seconds": start, "finish_seconds": finish,
        "start_local": clock(start), "finish_local": None if finish is None else clock(finish),
    }  # fmt: skip


def test_every_flag_of_a_month_with_its_figure(engine: Engine) -> None:
    _fill(engine)
    delta, max_start, min_finish, min_duration = 900, 9 * H, 18 * H, 8 * H
    march_2 = _worked(9 * H + 1200, 18 * H + 1800, 8 * H + 1800, 1800)
    march_3 = _worked(9 * H + 600, 17 * H + 1800, 7 * H + 1800)
    expected = [
        _day(_march(1), "weekend"),
        _day(_march(2), "workday", **march_2, late=True, late_seconds=1200, overtime_seconds=1800),
        _day(_march(3), "workday", **march_3, early_leave=True,
             early_leave_seconds=min_finish - (17 * H + 1800),
             short_day=True, short_seconds=min_duration - (7 * H + 1800), overtime_seconds=0),
        _day(_march(4), "workday", no_show=True),  # its absence was removed in the portal
        _day(_march(5), "absent"),
        _day(_march(6), "workday", **_worked(9 * H, None, H), overtime_seconds=0, unclosed=True,
             pending_approval=True),  # no finish: neither early nor short
        _day(_march(7), "workday", no_show=True),  # a moved working day on a Saturday
        _day(_march(8), "weekend"),
        _day(_march(9), "holiday", **_worked(10 * H, 14 * H, 4 * H)),  # late by the clock, but a holiday
        _day(_march(10), "workday", **_worked(9 * H, 25 * H, 15 * H), overtime_seconds=7 * H),  # to 01:00
        _day(_march(11), "workday", no_show=True),
        _day(_march(12), "workday", no_show=True),
        _day(_march(13), "workday", **_worked(9 * H + 1800, 18 * H, 8 * H), late=True,
             late_seconds=1800, overtime_seconds=0),
        _day(_march(14), "weekend"),
        _day(_march(15), "weekend"),
        _day(_march(16), "workday", **_worked(9 * H + 1800, 18 * H, 8 * H), overtime_seconds=0),  # 10:00 now
    ]  # fmt: skip
    assert 9 * H + 600 <= max_start + delta < 9 * H + 1200  # late on the 2nd, not on the 3rd
    assert _view(engine, 1, _march(16)) == expected


def test_no_norms_no_judgement_untracked_no_no_show_and_the_first_norms_stand_for_before(
    engine: Engine,
) -> None:
    _fill(engine)
    no_norms = _view(engine, 2, _march(3))
    assert no_norms == [
        _day(_march(2), "workday", **_worked(11 * H, 19 * H, 8 * H)),  # nothing to be late against
        _day(_march(3), "workday", no_show=True),
    ]
    untracked = _view(engine, 3, _march(3))
    assert untracked == [_day(_march(1), "weekend"), _day(_march(2), "workday"), _day(_march(3), "workday")]
    first_seen_later = _view(engine, 4, _march(2))  # norms first seen on the 20th judge the 2nd
    assert first_seen_later == [
        _day(_march(2), "workday", **_worked(9 * H + 1800, 18 * H, 8 * H), late=True, late_seconds=1800,
             overtime_seconds=0),
    ]  # fmt: skip


def test_the_days_run_to_today_unless_the_directory_marks_the_user_inactive(engine: Engine) -> None:
    _fill(engine)
    today = datetime.now(UTC).date()
    with engine.connect() as connection:
        spans = connection.execute(
            text(
                "SELECT user_id, count(*), min(work_date), max(work_date)"
                " FROM attendance GROUP BY user_id ORDER BY user_id"
            )
        ).all()
    days_to_today = (today - _march(1)).days + 1
    assert [(row[0], row[1], str(row[2]), str(row[3])) for row in spans] == [
        (1, days_to_today, "2026-03-01", today.isoformat()),
        (2, days_to_today - 1, "2026-03-02", today.isoformat()),
        (3, days_to_today, "2026-03-01", today.isoformat()),
        (4, days_to_today - 1, "2026-03-02", today.isoformat()),
        (5, 1, "2026-03-02", "2026-03-02"),  # inactive: nothing after the last day known
    ]


def test_no_show_waits_for_the_day_to_come(engine: Engine) -> None:
    today = datetime.now(UTC).date()
    storage.save_norms(engine, "acme", [Norms(1)], SEEN)
    later = [Absence(1, "b", today + timedelta(days=5), today + timedelta(days=5))]
    storage.save_absences(engine, "acme", [1], today, today + timedelta(days=10), later, SEEN)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT work_date, day_kind, no_show FROM attendance"
                " WHERE work_date > :today ORDER BY work_date"
            ),
            {"today": today.isoformat()},
        ).all()
    assert [(str(day), kind) for day, kind, _ in rows][-1] == (
        (today + timedelta(days=5)).isoformat(),
        "absent",
    )
    assert len(rows) == 5 and not any(no_show for _, _, no_show in rows)
