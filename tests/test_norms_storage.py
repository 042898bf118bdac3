"""Norms, schedules and calendars kept as versions, absences refreshed by window: an unchanged
read adds nothing, a change closes the current version and opens one, nothing is rewritten."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import norm_rows
import pytest
from sqlalchemy import Engine, select

from poller import storage
from poller.models import absences_table, portal_calendars_table, schedules_table, user_norms_table
from poller.storage.norms import schedule_values

T1 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)


def _rows(engine: Engine, table: Any, *columns: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        query = select(*(table.c[name] for name in columns)).order_by(table.c.id)  # in the order written
        return [tuple(row) for row in connection.execute(query)]


def test_an_unchanged_user_gets_no_row_and_a_changed_one_a_closed_and_a_new_version(engine: Engine) -> None:
    first = storage.save_norms(
        engine,
        "acme",
        [
            norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True}),
            norm_rows.norms(2, allowed_delta=900, raw={"UF_TIMEMAN": True}),
        ],
        T1,
    )
    again = storage.save_norms(
        engine,
        "acme",
        [
            norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True}),
            norm_rows.norms(2, raw={"UF_TIMEMAN": True, "ADMIN": True}, allowed_delta=900),
        ],
        T2,
    )
    changed = storage.save_norms(
        engine,
        "acme",
        [
            norm_rows.norms(1, max_start=10 * 3600, allowed_delta=900, raw={"UF_TIMEMAN": True}),
            norm_rows.norms(2, allowed_delta=900, raw={"UF_TIMEMAN": True}),
        ],
        T3,
    )
    late = storage.save_norms(
        engine, "acme", [norm_rows.norms(1, max_start=0, allowed_delta=900, raw={"UF_TIMEMAN": True})], T2
    )  # older than the current version
    assert (first.added, again.unchanged, changed.changed, changed.unchanged, late.stale) == (2, 2, 1, 1, 1)
    assert _rows(engine, user_norms_table, "user_id", "max_start", "valid_from", "valid_to", "raw") == [
        (1, 9 * 3600, T1, T3, {"UF_TIMEMAN": True}),
        (2, 9 * 3600, T1, None, {"UF_TIMEMAN": True}),  # the raw answer as first seen
        (1, 10 * 3600, T3, None, {"UF_TIMEMAN": True}),
    ]


def test_a_user_missing_from_a_read_keeps_the_current_version(engine: Engine) -> None:
    storage.save_norms(
        engine,
        "acme",
        [
            norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True}),
            norm_rows.norms(2, allowed_delta=900, raw={"UF_TIMEMAN": True}),
        ],
        T1,
    )
    storage.save_norms(engine, "acme", [norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True})], T2)
    storage.save_norms(
        engine, "beta", [norm_rows.norms(2, max_start=None, allowed_delta=900, raw={"UF_TIMEMAN": True})], T2
    )  # another portal's user 2
    assert _rows(engine, user_norms_table, "user_id", "max_start", "valid_to") == [
        (1, 9 * 3600, None),
        (2, 9 * 3600, None),
        (2, None, None),
    ]


def test_a_report_reads_the_version_in_force_each_day_and_the_first_stands_for_before(engine: Engine) -> None:
    storage.save_norms(
        engine,
        "acme",
        [
            norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True}),
            norm_rows.norms(2, max_start=8 * 3600, allowed_delta=900, raw={"UF_TIMEMAN": True}),
        ],
        T1,
    )
    storage.save_norms(
        engine,
        "acme",
        [norm_rows.norms(1, max_start=10 * 3600, allowed_delta=900, raw={"UF_TIMEMAN": True})],
        T3,
    )
    march = storage.get_norms(engine, "acme", date(2026, 2, 20), date(2026, 3, 31))
    assert [v.max_start for v in march[1]] == [9 * 3600, 10 * 3600]
    starts = {day: storage.norm_on(march[1], date(2026, 3, day)).max_start for day in (1, 15, 16, 31)}  # type: ignore[union-attr]
    assert starts == {1: 9 * 3600, 15: 9 * 3600, 16: 10 * 3600, 31: 10 * 3600}
    before = storage.norm_on(march[1], date(2026, 2, 20))
    assert before is not None and before.max_start == 9 * 3600  # seen on March 1st, stands for February
    april = storage.get_norms(engine, "acme", date(2026, 4, 1), date(2026, 4, 30), user_ids=[1])
    assert list(april) == [1] and [v.max_start for v in april[1]] == [10 * 3600]


def test_schedules_are_versioned_and_the_first_live_shift_gives_the_columns(engine: Engine) -> None:
    old = norm_rows.shift(0, 3600, 0, frozenset({6}), shift_id=1, name="night", deleted=True)
    day = norm_rows.shift(9 * 3600, 18 * 3600, 3600, frozenset({5, 1, 2, 3, 4}), shift_id=2, name="day")
    office = norm_rows.schedule(1, (old, day), name="Office", violation_rules={"MAX_EXACT_START": 32400})
    storage.save_schedules(engine, "acme", [office], T1)
    unchanged = storage.save_schedules(engine, "acme", [office], T2)
    storage.save_schedules(
        engine,
        "acme",
        [norm_rows.schedule(1, (old, day), name="Office 2", violation_rules={"MAX_EXACT_START": 32400})],
        T3,
    )
    assert unchanged.unchanged == 1
    columns = ("name", "shift_start", "shift_end", "shift_break", "work_days", "valid_from", "valid_to")
    assert _rows(engine, schedules_table, *columns) == [
        ("Office", 9 * 3600, 18 * 3600, 3600, "12345", T1, T3),
        ("Office 2", 9 * 3600, 18 * 3600, 3600, "12345", T3, None),
    ]
    assert schedule_values(office)["shifts"][0] == {
        "id": 1,
        "name": "night",
        "start": 0,
        "end": 3600,
        "break": 0,
        "work_days": "6",
        "deleted": True,
    }


def test_an_assignment_gone_from_the_config_map_is_closed(engine: Engine) -> None:
    storage.save_schedule_assignments(engine, "acme", {("user", 5): 1, ("department", 3): 4}, T1)
    saved = storage.save_schedule_assignments(engine, "acme", {("user", 5): 2}, T2)
    assert (saved.changed, saved.closed) == (1, 1)
    from poller.models import schedule_assignments_table

    assert _rows(engine, schedule_assignments_table, "subject", "subject_id", "schedule_id", "valid_to") == [
        ("user", 5, 1, T2),
        ("department", 3, 4, T2),
        ("user", 5, 2, None),
    ]
    with pytest.raises(ValueError, match="subject"):
        storage.save_schedule_assignments(engine, "acme", {("team", 1): 1}, T3)


def test_a_calendar_refresh_keeps_the_old_year_as_a_closed_version(engine: Engine) -> None:
    days = {"moved_workdays": [date(2026, 3, 7)], "week_holidays": [5, 6], "source": "portal"}
    storage.save_calendar(engine, "acme", 2026, holidays=[date(2026, 3, 9)], seen_at=T1, **days)  # type: ignore[arg-type]
    same = storage.save_calendar(engine, "acme", 2026, holidays=[date(2026, 3, 9)], seen_at=T2, **days)  # type: ignore[arg-type]
    storage.save_calendar(
        engine,
        "acme",
        2026,
        holidays=[date(2026, 3, 9), date(2026, 3, 10)],
        seen_at=T3,
        **days,  # type: ignore[arg-type]
    )
    assert same.unchanged == 1
    assert _rows(
        engine, portal_calendars_table, "holidays", "moved_workdays", "week_holidays", "valid_to"
    ) == [
        ("2026-03-09", "2026-03-07", "SA,SU", T3),
        ("2026-03-09,2026-03-10", "2026-03-07", "SA,SU", None),
    ]
    march = storage.get_calendar_days(engine, "acme", date(2026, 3, 1))
    kinds = {day.day: kind for day, kind in march.days.items() if day.day <= 10}
    assert march.source == "portal" and len(march.days) == 31
    assert kinds == {
        1: "weekend",
        2: "workday",
        3: "workday",
        4: "workday",
        5: "workday",
        6: "workday",
        7: "workday",
        8: "weekend",
        9: "holiday",
        10: "holiday",
    }
    nothing = storage.get_calendar_days(engine, "beta", date(2026, 3, 1))
    assert nothing.source is None and nothing.days[date(2026, 3, 7)] == "weekend"
    with pytest.raises(ValueError, match="another year"):
        storage.save_calendar(engine, "acme", 2027, holidays=[date(2026, 1, 1)], seen_at=T3, **days)  # type: ignore[arg-type]


def test_an_absence_removed_in_the_portal_is_marked_removed_on_refresh(engine: Engine) -> None:
    march = (date(2026, 3, 1), date(2026, 3, 31))
    first = [
        norm_rows.absence(1, date(2026, 3, 4), date(2026, 3, 5), event_id="7"),
        norm_rows.absence(2, date(2026, 3, 30), date(2026, 4, 2), event_id="9"),
    ]
    saved = storage.save_absences(engine, "acme", [1, 2, 3], *march, first, T1)
    assert (saved.added, saved.removed) == (4, 0)  # 4th, 5th; 30th, 31st (April is outside the window)
    renamed = norm_rows.absence(2, date(2026, 3, 30), date(2026, 4, 2), event_id="9", name="Sick leave")
    refreshed = storage.save_absences(engine, "acme", [1, 2], *march, [renamed], T2)
    assert (refreshed.added, refreshed.removed, refreshed.unchanged) == (2, 4, 0)
    again = storage.save_absences(engine, "acme", [1, 2], *march, [renamed], T3)
    assert (again.added, again.removed, again.unchanged) == (0, 0, 2)
    assert _rows(engine, absences_table, "user_id", "day", "name", "fetched_at", "removed_at") == [
        (1, date(2026, 3, 4), "Vacation", T1, T2),
        (1, date(2026, 3, 5), "Vacation", T1, T2),
        (2, date(2026, 3, 30), "Vacation", T1, T2),
        (2, date(2026, 3, 31), "Vacation", T1, T2),
        (2, date(2026, 3, 30), "Sick leave", T2, None),
        (2, date(2026, 3, 31), "Sick leave", T2, None),
    ]
    current = storage.get_absences(engine, "acme", *march)
    assert [(a.user_id, a.day, a.name, a.whole_day) for a in current] == [
        (2, date(2026, 3, 30), "Sick leave", True),
        (2, date(2026, 3, 31), "Sick leave", True),
    ]
    with pytest.raises(ValueError, match="not among the refreshed users"):
        storage.save_absences(engine, "acme", [1], *march, [renamed], T3)


def test_the_clients_own_values_go_in_as_they_are(engine: Engine) -> None:
    norms = pytest.importorskip("poller.bitrix.norms")
    calendar = pytest.importorskip("poller.bitrix.calendar")
    from poller.bitrix.values import Problems

    settings = {
        "UF_TIMEMAN": True,
        "UF_TM_FREE": False,
        "UF_TM_MAX_START": "09:15:00",
        "UF_TM_MIN_FINISH": "17:45:00",
        "UF_TM_MIN_DURATION": "08:00:00",
        "UF_TM_ALLOWED_DELTA": "00:15:00",
    }
    storage.save_norms(engine, "acme", [norms.parse_settings(5, settings, "test")], T1)
    schedule = {
        "NAME": "Office",
        "SCHEDULE_TYPE": "FIXED",
        "SHIFTS": [
            {
                "ID": "3",
                "WORK_TIME_START": "32400",
                "WORK_TIME_END": "64800",
                "BREAK_DURATION": "3600",
                "WORK_DAYS": "12345",
            }
        ],
        "SCHEDULE_VIOLATION_RULES": {"MAX_EXACT_START": "33300", "MIN_EXACT_END": "-1"},
    }
    storage.save_schedules(engine, "acme", [norms.parse_schedule(4, schedule, "test")], T1)
    event = {
        "ID": "12",
        "NAME": "Vacation",
        "DATE_FROM_TS_UTC": "1772409600",
        "DATE_TO_TS_UTC": "1772409600",
        "~USER_OFFSET_FROM": "0",
        "DT_SKIP_TIME": "Y",
        "ACCESSIBILITY": "absent",
    }
    absence = calendar.parse_absence(5, event, Problems("test"))
    storage.save_absences(engine, "acme", [5], date(2026, 3, 1), date(2026, 3, 31), [absence], T1)
    assert _rows(engine, user_norms_table, "max_start", "min_finish", "min_duration", "allowed_delta") == [
        (33300, 63900, 28800, 900)
    ]
    assert _rows(engine, schedules_table, "shift_start", "shift_end", "shift_break", "work_days") == [
        (32400, 64800, 3600, "12345")
    ]
    assert _rows(engine, absences_table, "user_id", "day", "whole_day") == [(5, date(2026, 3, 2), True)]


# Two writers on one key (a rebalanced replica's refresh, a backfill beside the daemon): each
# reads the current rows, then inserts. A partial unique index keeps one current row per key;
# the writer that loses the race saves again on what the other stored, or reports it stale.
# On SQLite a writer's transaction locks the database, so the race needs PostgreSQL; SQLite
# shows the index refusing a second current row.

on_postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _read_before(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, other_writer: Any) -> None:
    """`module.name` (the current rows' read) returns what it read before `other_writer` ran and
    committed, once: the interleaving of two writers that both read before either inserts."""
    real = getattr(module, name)
    calls = []

    def read_then_lose(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        if not calls:
            calls.append(1)
            other_writer()
        return found

    monkeypatch.setattr(module, name, read_then_lose)


@on_postgresql_only
def test_two_writers_of_one_users_norms_leave_one_current_row(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poller.storage import versioned

    other = storage.make_engine(engine.url.render_as_string(hide_password=False))
    _read_before(
        monkeypatch,
        versioned,
        "_current",
        lambda: storage.save_norms(
            other, "acme", [norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True})], T1
        ),
    )
    saved = storage.save_norms(
        engine,
        "acme",
        [norm_rows.norms(1, max_start=10 * 3600, allowed_delta=900, raw={"UF_TIMEMAN": True})],
        T2,
    )
    other.dispose()
    assert saved.changed == 1  # saved again on the other writer's row: nothing lost
    assert _rows(engine, user_norms_table, "user_id", "max_start", "valid_from", "valid_to") == [
        (1, 9 * 3600, T1, T2),
        (1, 10 * 3600, T2, None),
    ]


@on_postgresql_only
def test_two_writers_of_one_absence_day_leave_one_current_row(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poller.storage import absences

    days = (date(2026, 3, 1), date(2026, 3, 31))
    vacation = norm_rows.absence(1, date(2026, 3, 4), date(2026, 3, 4), event_id="7")
    other = storage.make_engine(engine.url.render_as_string(hide_password=False))
    _read_before(
        monkeypatch,
        absences,
        "_stored",
        lambda: storage.save_absences(other, "acme", [1], *days, [vacation], T1),
    )
    saved = storage.save_absences(engine, "acme", [1], *days, [vacation], T2)
    other.dispose()
    assert (saved.added, saved.removed, saved.unchanged, saved.stale) == (0, 0, 1, 0)
    assert _rows(engine, absences_table, "user_id", "day", "fetched_at", "removed_at") == [
        (1, date(2026, 3, 4), T1, None),
    ]


@on_postgresql_only
def test_a_writer_whose_snapshot_misses_the_others_row_reports_it_stale(engine: Engine) -> None:
    """A real race on two connections: the second reads (its snapshot) before the first commits
    and inserts after; it cannot add a second current row, and no error reaches the refresh."""
    from poller.storage.versioned import save_versions

    compared = ("max_start",)
    rows = {(1,): {"max_start": 9 * 3600, "raw": {}}}
    with engine.connect() as late:
        late = late.execution_options(isolation_level="REPEATABLE READ")
        with late.begin():
            late.execute(select(user_norms_table.c.id)).all()  # the snapshot is taken here
            other = storage.make_engine(engine.url.render_as_string(hide_password=False))
            with other.begin() as first:
                save_versions(first, user_norms_table, "acme", ("user_id",), rows, T1, compared=compared)
            other.dispose()
            saved = save_versions(late, user_norms_table, "acme", ("user_id",), rows, T2, compared=compared)
    assert saved.stale == 1
    assert _rows(engine, user_norms_table, "user_id", "valid_from", "valid_to") == [(1, T1, None)]


def test_the_database_refuses_a_second_current_row_for_one_key(engine: Engine) -> None:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    storage.save_norms(engine, "acme", [norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True})], T1)
    storage.save_absences(
        engine,
        "acme",
        [1],
        date(2026, 3, 1),
        date(2026, 3, 31),
        [norm_rows.absence(1, date(2026, 3, 4), date(2026, 3, 4), event_id="7")],
        T1,
    )
    second_norms = {"portal": "acme", "user_id": 1, "raw": {}, "valid_from": T2}
    vacation = norm_rows.absence(1, date(2026, 3, 4), date(2026, 3, 4), event_id="7")
    second_day = {
        "portal": "acme", "user_id": 1, "day": date(2026, 3, 4), "event_id": "7", "name": None,
        "whole_day": True, "starts_at": vacation.starts_at, "ends_at": vacation.ends_at, "fetched_at": T2,
    }  # fmt: skip
    for table, row in ((user_norms_table, second_norms), (absences_table, second_day)):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(table), row)
    with engine.begin() as connection:  # a closed version beside the current one is fine
        connection.execute(insert(user_norms_table), {**second_norms, "valid_to": T3})


def test_a_versioned_save_stays_inside_the_callers_transaction(engine: Engine) -> None:
    """Its savepoint must not commit on its own (pysqlite opens no transaction before it)."""
    from poller.storage.norms import NORM_COLUMNS
    from poller.storage.versioned import save_versions

    rows = {
        (1,): {
            **{
                name: getattr(norm_rows.norms(1, allowed_delta=900, raw={"UF_TIMEMAN": True}), name)
                for name in NORM_COLUMNS
            },
            "raw": {},
        }
    }
    with pytest.raises(RuntimeError), engine.begin() as connection:
        saved = save_versions(
            connection, user_norms_table, "acme", ("user_id",), rows, T1, compared=NORM_COLUMNS
        )
        assert saved.added == 1
        raise RuntimeError("the caller fails after the save")
    assert _rows(engine, user_norms_table, "user_id") == []
