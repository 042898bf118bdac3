"""The workdays table: kept up to date on write, honest about pauses, never out of bounds.

Snapshots go in through storage.save_portal_cycle, as the daemon writes them; the emulator's
world (without HTTP) gives a week of answers and the truth to compare with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from poller import storage, views
from poller.emulator import SimClock, World
from poller.emulator.world import EXPIRED_USER, Workday, shows_pause_moment
from poller.models import workdays_table
from poller.status import parse_status
from poller.storage import maintenance, workdays

PORTAL = "acme"
OPENED_AT = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)  # Monday 09:00 at UTC+3
MINUTE = timedelta(minutes=1)
MODES = ["all", "changes"]


def at(minutes: float) -> datetime:
    return OPENED_AT + minutes * MINUTE


def local(instant: datetime) -> str:
    """`instant` as Bitrix24 renders it for a user at UTC+3."""
    return (instant + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S+03:00")


def answer(
    state: str, *, finish: datetime | None = None, leaks: str = "00:00:00", **more: Any
) -> dict[str, Any]:
    return {
        "STATUS": state, "TIME_START": local(more.pop("start", OPENED_AT)),
        "TIME_FINISH": local(finish) if finish else None, "DURATION": more.pop("duration", "00:00:00"),
        "TIME_LEAKS": leaks, "ACTIVE": True, "TZ_OFFSET": 10800, **more,
    }  # fmt: skip


def poll(engine: Engine, when: datetime, result: dict[str, Any], mode: str = "all", user_id: int = 1) -> None:
    row = storage.SnapshotRow(PORTAL, user_id, when, parse_status(result))
    storage.save_portal_cycle(engine, None, [row], [], mode)  # type: ignore[arg-type]


def stored_days(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        table = workdays_table.c
        query = select(workdays_table).order_by(table.portal, table.user_id, table.time_start)
        return [dict(row) for row in connection.execute(query).mappings()]


def worked(engine: Engine) -> int:
    [day] = stored_days(engine)
    return int(day["worked_seconds"])


@pytest.mark.parametrize("mode", MODES)
def test_a_running_pause_with_null_finish_never_counts_as_worked(engine: Engine, mode: str) -> None:
    """Paused at 3:03 (truth), polled every 10 minutes: 3:00 while paused, exact once resumed."""
    poll(engine, at(180), answer("OPENED"), mode)
    assert worked(engine) == 180 * 60
    for minutes in (190, 200, 210, 220, 230):
        poll(engine, at(minutes), answer("PAUSED"), mode)
        assert worked(engine) == 180 * 60  # the pause began after the last poll that saw the day running
    poll(engine, at(240), answer("OPENED", leaks="00:37:00"), mode)
    assert worked(engine) == (240 - 37) * 60  # 3:03: the truth
    poll(engine, at(550), answer("CLOSED", finish=at(540), leaks="00:37:00", duration="08:23:00"), mode)
    assert stored_days(engine) == [
        {
            "portal": PORTAL, "user_id": 1, "work_date": OPENED_AT.date(), "time_start": OPENED_AT,
            "time_finish": at(540), "tz_offset": 10800, "status": "CLOSED", "worked_seconds": 503 * 60,
            "worked_is_estimate": False, "leaks_seconds": 37 * 60, "first_seen_at": at(180),
            "last_seen_at": at(550), "pending_approval": False, "user_name": None, "department": None,
            "source": "polls", "record_id": None, "corrections": 0, "corrections_after_close": 0,
        }
    ]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_a_pause_moment_is_taken_within_the_polls_that_bound_it(engine: Engine, mode: str) -> None:
    poll(engine, at(180), answer("OPENED"), mode)
    poll(engine, at(190), answer("PAUSED", finish=at(183)), mode)
    assert worked(engine) == 183 * 60
    poll(engine, at(240), answer("OPENED", leaks="00:37:00"), mode)
    # A portal clock ahead of ours: the moment is held at the first poll that saw the pause.
    poll(engine, at(300), answer("PAUSED", finish=at(330), leaks="00:37:00"), mode)
    assert worked(engine) == (300 - 37) * 60


def test_a_day_first_seen_paused_with_null_finish_counts_nothing_it_cannot_vouch_for(engine: Engine) -> None:
    poll(engine, at(190), answer("PAUSED"))
    assert worked(engine) == 0
    poll(engine, at(240), answer("OPENED", leaks="00:37:00"))
    assert worked(engine) == (240 - 37) * 60


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (answer("OPENED", start=at(30)), 0),  # a portal clock ahead: TIME_START after the poll
        (answer("OPENED", leaks="05:00:00"), 0),  # breaks longer than the time since the start
        (answer("PAUSED", finish=at(-20)), 0),  # a pause moment before the start
        (answer("CLOSED", finish=at(-10), duration="01:00:00", start=at(-70), leaks="00:20:00"), 40 * 60),
        (answer("CLOSED", finish=at(-10), duration="00:30:00", start=at(-70), leaks="00:20:00"), 30 * 60),
        (answer("EXPIRED", TIME_FINISH_DEFAULT=local(at(-5)), start=at(-65), leaks="00:10:00"), 50 * 60),
        (answer("EXPIRED", TIME_FINISH_DEFAULT=local(at(60)), start=at(-65), leaks="00:10:00"), 55 * 60),
    ],
)
def test_worked_is_never_negative_nor_more_than_the_time_elapsed_less_breaks(
    engine: Engine, result: dict[str, Any], expected: int
) -> None:
    poll(engine, at(0), result)
    assert worked(engine) == expected


@pytest.mark.parametrize("mode", MODES)
def test_a_replayed_cycle_changes_nothing_and_a_late_poll_gives_the_in_order_day(
    engine: Engine, mode: str
) -> None:
    polls = [
        (at(180), answer("OPENED")),
        (at(190), answer("PAUSED")),
        (at(200), answer("PAUSED")),
        (at(240), answer("OPENED", leaks="00:37:00")),
    ]
    for user_id, sequence in ((1, polls), (2, [polls[0], polls[2], polls[3], polls[1]])):
        for when, result in sequence:
            poll(engine, when, result, mode, user_id)
    before = stored_days(engine)
    for when, result in polls:  # the spool replays everything once more
        poll(engine, when, result, mode, user_id=1)
    assert stored_days(engine) == before
    in_order, late = ({k: v for k, v in day.items() if k != "user_id"} for day in before)
    assert in_order["worked_seconds"] == (240 - 37) * 60
    if mode == "all":  # "changes" drops the late poll: it is older than what the user's row has seen
        assert late == in_order


def test_pruning_snapshots_keeps_the_days(engine: Engine) -> None:
    poll(engine, at(180), answer("OPENED"))
    poll(engine, at(550), answer("CLOSED", finish=at(540), leaks="00:37:00", duration="08:23:00"))
    poll(engine, at(600), answer("CLOSED", start=at(1440), finish=at(1900), duration="07:40:00"))
    before = stored_days(engine)
    assert maintenance.prune_history(engine, at(10_000)).snapshots == 2
    assert stored_days(engine) == before and len(before) == 2


# -- a simulated week against the emulator's world -------------------------------------------

MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
USERS = list(range(1, 17))
STEP = 20 * 60


def simulate(engine: Engine, days: float) -> tuple[World, datetime, dict[str, int]]:
    """Poll the world's users every 20 minutes into a portal per storage mode (named after it);
    after each cycle check the open days."""
    world = World(len(USERS), SimClock(MONDAY, speed=0))
    coverage = {"open": 0, "paused, null finish": 0, "paused, pause moment": 0}
    now = MONDAY
    for _ in range(int(days * 24 * 3600 // STEP)):
        answers = [(u, parse_status(world.status(u, now))) for u in USERS]
        for mode in MODES:
            rows = [storage.SnapshotRow(mode, u, now, parsed) for u, parsed in answers]
            storage.save_portal_cycle(engine, None, rows, [], mode)  # type: ignore[arg-type]
            check_open_days(engine, mode, world, now, coverage)
        now += timedelta(seconds=STEP)
    return world, now - timedelta(seconds=STEP), coverage


def truth(day: Workday, when: datetime) -> int:
    """Worked up to `when`, every pause excluded; a closed day: the portal's DURATION."""
    closed = day.closed is not None and when >= day.closed
    return (day.worked_seconds() or 0) if closed else day.worked_until(when)


def check_open_days(
    engine: Engine, portal: str, world: World, now: datetime, coverage: dict[str, int]
) -> None:
    rows = storage.get_view_rows(engine, views.workdays, portals=[portal])
    by_key = {(r["user_id"], r["time_start"]): r for r in rows}
    for user in USERS:
        day = world.last_workday(user, now)
        if day is None or user == EXPIRED_USER or (day.closed is not None and day.closed <= now):
            continue
        if world.state(day, now)[0] == "EXPIRED":  # turned EXPIRED during the week (user 11)
            continue
        row = by_key[(user, day.opened)]
        assert row["worked_is_estimate"] is True
        assert 0 <= row["worked_seconds"] <= (now - day.opened).total_seconds() - row["leaks_seconds"]
        assert abs(row["worked_seconds"] - truth(day, now)) <= STEP, (user, now, row)
        state, _, _ = world.state(day, now)
        coverage["open"] += 1
        if state == "PAUSED" and day.pause_start and (now - day.pause_start).total_seconds() > STEP:
            coverage["paused, pause moment" if shows_pause_moment(user) else "paused, null finish"] += 1


def test_a_polled_week_matches_the_worlds_truth_in_both_modes_and_a_rebuild(engine: Engine) -> None:
    world, last_poll, coverage = simulate(engine, days=2.5)
    assert min(coverage.values()) > 0, coverage
    days = stored_days(engine)
    by_mode = {
        mode: {(r["user_id"], r["time_start"]): r for r in days if r["portal"] == mode} for mode in MODES
    }
    closed = 0
    for (user, start), row in by_mode["all"].items():
        day = world.last_workday(user, start)
        assert day is not None and day.opened == start
        expected = (day.work_date, user % 7 == 0, "polls", world.tz_offset(user))
        assert (row["work_date"], row["pending_approval"], row["source"], row["tz_offset"]) == expected
        if day.closed is not None and day.closed <= last_poll:
            assert (row["status"], row["time_finish"], row["worked_seconds"], row["leaks_seconds"]) == (
                "CLOSED", day.closed, truth(day, day.closed), day.leaks_seconds
            )  # fmt: skip
            closed += 1
    assert closed >= 2 * (len(USERS) - 2)
    assert {key: {**row, "portal": "all"} for key, row in by_mode["changes"].items()} == by_mode["all"]
    with engine.begin() as connection:
        for mode in MODES:
            workdays.rebuild_days(connection, mode, set(by_mode[mode]))
    assert stored_days(engine) == days
