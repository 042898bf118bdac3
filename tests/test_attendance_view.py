"""The attendance view on hand-built rows: one row per user and calendar day, its kind, and every
flag with its figure, the expected values worked out here from the rows written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import norm_rows
from sqlalchemy import Engine, insert, text

from poller import storage
from poller.models import users_table, workdays_table

H = 3600
MOSCOW = 3 * H
SEEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
CHANGED = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)  # user 1's max start moves from 09:00 to 10:00


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
    storage.save_norms(
        engine,
        "acme",
        [norm_rows.norms(1, allowed_delta=900), norm_rows.norms(3, tracked=False, allowed_delta=900)],
        SEEN,
    )
    storage.save_norms(engine, "acme", [norm_rows.norms(1, max_start=10 * H, allowed_delta=900)], CHANGED)
    storage.save_norms(
        engine, "acme", [norm_rows.norms(4, allowed_delta=900)], datetime(2026, 3, 20, tzinfo=UTC)
    )
    window = (_march(1), _march(31))
    first = [norm_rows.absence(1, _march(4), _march(5), event_id="a", starts_at=SEEN, ends_at=SEEN)]
    storage.save_absences(engine, "acme", [1], *window, first, SEEN)
    storage.save_absences(
        engine,
        "acme",
        [1],
        *window,
        [norm_rows.absence(1, _march(5), _march(5), event_id="a", starts_at=SEEN, ends_at=SEEN)],
        CHANGED,
    )
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
    """Each user's today at the offset of their last workday (Moscow for 1 and 4), else UTC's."""
    _fill(engine)
    query = text(
        "SELECT user_id, count(*), min(work_date), max(work_date)"
        " FROM attendance GROUP BY user_id ORDER BY user_id"
    )
    spans, (utc, moscow) = _at_today(engine, query, 0, MOSCOW)
    assert [(row[0], row[1], str(row[2]), str(row[3])) for row in spans] == [
        (1, (moscow - _march(1)).days + 1, "2026-03-01", moscow.isoformat()),
        (2, (utc - _march(2)).days + 1, "2026-03-02", utc.isoformat()),
        (3, (utc - _march(1)).days + 1, "2026-03-01", utc.isoformat()),  # no workday: UTC
        (4, (moscow - _march(2)).days + 1, "2026-03-02", moscow.isoformat()),
        (5, 1, "2026-03-02", "2026-03-02"),  # inactive: nothing after the last day known
    ]


def _at_today(engine: Engine, query: Any, *offsets: int) -> tuple[list[Any], list[date]]:
    """`query`'s rows and the dates now at `offsets` (seconds east of UTC), read again if a date
    changed while the query ran."""

    def dates() -> list[date]:
        now = datetime.now(UTC)
        return [(now + timedelta(seconds=offset)).date() for offset in offsets]

    for _ in range(2):
        before = dates()
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        if dates() == before:
            break
    return rows, before


def test_no_show_waits_for_the_day_to_end_in_the_users_own_zone(engine: Engine) -> None:
    """A user at UTC-12 and one at UTC+14, every day a working day: each user's today (whatever
    UTC's date) is listed and not yet a no-show; their yesterday is one."""
    far_west, far_east = -12 * H, 14 * H
    now = datetime.now(UTC)
    for year in sorted({2026, now.year, (now + timedelta(days=1)).year}):
        storage.save_calendar(
            engine,
            "acme",
            year,
            holidays=[],
            moved_workdays=[],
            week_holidays=[],
            source="config",
            seen_at=SEEN,
        )
    storage.save_norms(
        engine, "acme", [norm_rows.norms(7, allowed_delta=900), norm_rows.norms(8, allowed_delta=900)], SEEN
    )
    with engine.begin() as connection:
        connection.execute(
            insert(workdays_table),
            [
                _workday(7, _march(2), 9 * H, 18 * H, 8 * H, offset=far_west),
                _workday(8, _march(2), 9 * H, 18 * H, 8 * H, offset=far_east),
            ],
        )
    recent = (now - timedelta(days=3)).date().isoformat()
    query = text(
        "SELECT user_id, work_date, no_show FROM attendance"
        f" WHERE work_date >= '{recent}' ORDER BY user_id, work_date"
    )
    rows, (west, east) = _at_today(engine, query, far_west, far_east)
    last_two = {
        user: [(str(day), bool(flag)) for user_id, day, flag in rows if user_id == user][-2:]
        for user in (7, 8)
    }
    assert last_two == {
        7: [((west - timedelta(days=1)).isoformat(), True), (west.isoformat(), False)],
        8: [((east - timedelta(days=1)).isoformat(), True), (east.isoformat(), False)],
    }


def test_no_show_waits_for_the_day_to_come(engine: Engine) -> None:
    today = datetime.now(UTC).date()
    storage.save_norms(engine, "acme", [norm_rows.norms(1, allowed_delta=900)], SEEN)
    later = [
        norm_rows.absence(
            1,
            today + timedelta(days=5),
            today + timedelta(days=5),
            event_id="b",
            starts_at=SEEN,
            ends_at=SEEN,
        )
    ]
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


def test_a_start_the_offset_dates_outside_its_day_is_not_judged_by_the_clock(engine: Engine) -> None:
    """The autumn DST night in Berlin: a start at 00:30 local on the 25th (22:30 UTC) dated the
    25th, while the portal's TZ_OFFSET is already 3600: start_seconds comes out as -1800. Late
    and early_leave are null for that day; short_day, on worked time alone, stands."""
    night = date(2026, 10, 25)  # a Sunday: every day a working day here
    storage.save_calendar(
        engine, "acme", 2026, holidays=[], moved_workdays=[], week_holidays=[], source="config", seen_at=SEEN
    )
    storage.save_norms(engine, "acme", [norm_rows.norms(9, allowed_delta=900)], SEEN)
    start = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)
    rows = [
        {
            **_workday(9, night, 0, None, 6 * H, offset=H),
            "time_start": start,
            "time_finish": start + timedelta(hours=6),
        },
        _workday(9, night + timedelta(days=1), 10 * H, 16 * H, 6 * H, offset=H),  # a day judged as usual
    ]
    with engine.begin() as connection:
        connection.execute(insert(workdays_table), rows)
    found = _view(engine, 9, night + timedelta(days=1))[-2:]
    assert [
        (row["start_seconds"], row["late"], row["early_leave"], row["short_day"], row["short_seconds"])
        for row in found
    ] == [(-1800, False, False, True, 2 * H), (10 * H, True, True, True, 2 * H)]
    with engine.connect() as connection:
        flags = connection.execute(
            text(
                "SELECT late, late_seconds, early_leave, early_leave_seconds FROM attendance"
                f" WHERE user_id = 9 AND work_date = '{night.isoformat()}'"
            )
        ).one()
    assert tuple(flags) == (None, None, None, None)


# Overtime over a schedule's shift. Schedule 1: 09:00-18:00 with an hour's break, Monday to
# Friday (8 h); from the 16th 08:00-17:00 with half an hour (8.5 h). Schedule 2: a night shift,
# 22:00-07:00 with half an hour's break, Monday to Thursday (8.5 h). No calendar: SA,SU off.
DAY_SHIFT, LONGER_DAY_SHIFT, NIGHT_SHIFT = 8 * H, 8 * H + 1800, 8 * H + 1800


WEEK = (1, 2, 3, 4, 5)


def _fill_schedules(engine: Engine) -> None:
    """Users 11-15 (see each test) and their schedules; user 14's own schedule and user 15's map
    entry change on the 16th (CHANGED), as does schedule 1's shift."""
    day, night = norm_rows.shift(9 * H, 18 * H, H, WEEK), norm_rows.shift(22 * H, 7 * H, 1800, (1, 2, 3, 4))
    storage.save_schedules(
        engine, "acme", [norm_rows.schedule(1, (day,)), norm_rows.schedule(2, (night,))], SEEN
    )
    storage.save_schedules(
        engine, "acme", [norm_rows.schedule(1, (norm_rows.shift(8 * H, 17 * H, 1800, WEEK),))], CHANGED
    )
    first = {("user", 11): 2, ("user", 14): 1, ("department", 7): 1}
    storage.save_schedule_assignments(engine, "acme", first, SEEN)
    storage.save_schedule_assignments(engine, "acme", first | {("user", 14): 2, ("user", 15): 2}, CHANGED)
    norms = [
        norm_rows.norms(11, allowed_delta=900),
        norm_rows.norms(12, min_duration=6 * H, allowed_delta=900),
        norm_rows.norms(13, min_duration=7 * H, allowed_delta=900),
    ]
    storage.save_norms(engine, "acme", norms, SEEN)
    departments = {11: None, 12: [7, 8], 13: [8, 7], 14: [7], 15: [7]}
    rows = [
        _workday(11, _march(2), 22 * H, 31 * H, 9 * H),  # 22:00 to 07:00 the next morning
        _workday(11, _march(3), 22 * H, 29 * H, 7 * H),
        _workday(11, _march(5), 22 * H, 30 * H + 1800, NIGHT_SHIFT),
        _workday(11, _march(6), 22 * H, 30 * H, 8 * H),  # a Friday: off the night schedule
        _workday(11, _march(8), 10 * H, 15 * H, 5 * H),  # a Sunday
        _workday(12, _march(2), 9 * H, 19 * H, 9 * H),
        _workday(12, _march(3), 9 * H, 17 * H, 7 * H),
        _workday(12, _march(17), 8 * H, 18 * H, 9 * H),
        _workday(13, _march(2), 9 * H, 19 * H, 9 * H),
        _workday(14, date(2026, 2, 27), 9 * H, 19 * H, 9 * H),  # before the map was first read
        _workday(14, _march(13), 9 * H, 19 * H, 9 * H),
        _workday(14, _march(16), 22 * H, 31 * H, 9 * H),
        _workday(14, _march(20), 9 * H, 11 * H, 2 * H),  # a Friday: off the night schedule
        _workday(15, _march(2), 9 * H, 19 * H, 9 * H),
        _workday(15, _march(16), 22 * H, 31 * H, 9 * H),
    ]
    users = [
        {"portal": "acme", "user_id": user, "active": True, "department_ids": ids, "updated_at": SEEN}
        for user, ids in departments.items()
    ]
    with engine.begin() as connection:
        connection.execute(insert(workdays_table), rows)
        connection.execute(insert(users_table), users)


def _overtime(engine: Engine, user_id: int, first: date, last: date) -> list[tuple[Any, ...]]:
    """(day, kind, worked, overtime, basis, schedule id, no-show) of `user_id`'s days."""
    query = text(
        "SELECT work_date, day_kind, worked_seconds, overtime_seconds, overtime_basis, schedule_id, no_show"
        " FROM attendance WHERE portal = 'acme' AND user_id = :user AND work_date BETWEEN :first AND :last"
        " ORDER BY work_date"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"user": user_id, "first": str(first), "last": str(last)})
        return [(str(row[0]), *row[1:6], bool(row[6])) for row in rows]


def _on(engine: Engine, user_id: int, *days: date) -> list[tuple[Any, ...]]:
    """The `_overtime` rows of `days`."""
    return [row for day in days for row in _overtime(engine, user_id, day, day)]


def test_overtime_over_the_night_shift_of_the_users_own_schedule_and_all_of_a_day_off_it(
    engine: Engine,
) -> None:
    _fill_schedules(engine)
    assert _overtime(engine, 11, _march(2), _march(8)) == [
        ("2026-03-02", "workday", 9 * H, 9 * H - NIGHT_SHIFT, "schedule", 2, False),  # min_duration: 1 h
        ("2026-03-03", "workday", 7 * H, 0, "schedule", 2, False),
        ("2026-03-04", "workday", None, None, None, 2, True),
        ("2026-03-05", "workday", NIGHT_SHIFT, 0, "schedule", 2, False),
        ("2026-03-06", "workday", 8 * H, 8 * H, "schedule", 2, False),  # a Friday: all of it
        ("2026-03-07", "weekend", None, None, None, 2, False),
        ("2026-03-08", "weekend", 5 * H, None, None, 2, False),  # days off: in worked_seconds only
    ]
    # A workday the schedule does not work is no no-show.
    assert _on(engine, 11, _march(13)) == [
        ("2026-03-13", "workday", None, None, None, 2, False),
    ]


def test_overtime_over_the_first_departments_schedule_else_over_the_minimum_duration(
    engine: Engine,
) -> None:
    _fill_schedules(engine)
    via_department = _overtime(engine, 12, _march(2), _march(3)) + _on(engine, 12, _march(17))
    assert via_department == [
        ("2026-03-02", "workday", 9 * H, 9 * H - DAY_SHIFT, "schedule", 1, False),
        ("2026-03-03", "workday", 7 * H, 0, "schedule", 1, False),  # 1 h over min_duration
        ("2026-03-17", "workday", 9 * H, 9 * H - LONGER_DAY_SHIFT, "schedule", 1, False),  # the new shift
    ]
    # Department 7 has a schedule, but it is the user's second department.
    assert _on(engine, 13, _march(2)) == [
        ("2026-03-02", "workday", 9 * H, 2 * H, "min_duration", None, False),
    ]


def test_overtime_follows_the_assignment_in_force_on_each_day(engine: Engine) -> None:
    _fill_schedules(engine)
    own_changed = _on(engine, 14, date(2026, 2, 27), _march(13), _march(16), _march(20))
    assert own_changed == [
        ("2026-02-27", "workday", 9 * H, H, "schedule", 1, False),  # the first read stands for before
        ("2026-03-13", "workday", 9 * H, H, "schedule", 1, False),
        ("2026-03-16", "workday", 9 * H, 9 * H - NIGHT_SHIFT, "schedule", 2, False),
        ("2026-03-20", "workday", 2 * H, 2 * H, "schedule", 2, False),
    ]
    # An entry added to the map on the 16th holds from then; the department's schedule before.
    assert _on(engine, 15, _march(2), _march(16)) == [
        ("2026-03-02", "workday", 9 * H, H, "schedule", 1, False),
        ("2026-03-16", "workday", 9 * H, 9 * H - NIGHT_SHIFT, "schedule", 2, False),
    ]
