"""storage.plain_days against the full way over seeded random histories: polls of every
status, pauses with and without their moment, record IDs, approvals, offsets, two polls of a
user in one write, replays, late answers, records saved between cycles, zones that move, days
that go past; in both storage modes. The workdays table, its revisions and the new days the
planner's statistics are told of must come out the same.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from test_directory import DEPARTMENTS, user
from test_plain_days import HOUR, PORTAL, START, YESTERDAY, answer, both_ways, local, record

from poller import storage
from poller.models import snapshots_table, workdays_table
from poller.status import ParsedStatus, parse_status
from poller.storage import plain_days, snapshots, statistics
from poller.storage.bulk import driver_rows
from poller.storage.directory import save_departments
from poller.storage.driver_values import converter
from poller.storage.raw_json import raw_conversion
from poller.storage.workday_rules import polled_day

USERS = range(1, 13)
MINUTE = timedelta(minutes=1)
ZONES = ("Europe/Istanbul", "America/Los_Angeles", "Asia/Tokyo")


def random_answer(rng: random.Random, user_id: int, when: datetime) -> dict[str, Any]:
    start = rng.choice([YESTERDAY, START, START + 30 * MINUTE, START - HOUR])
    status = rng.choice(["OPENED", "OPENED", "PAUSED", "CLOSED", "CLOSED", "EXPIRED"])
    leaks = rng.choice(["00:00:00", "00:20:00", "00:45:00"])
    more: dict[str, Any] = {"leaks": leaks}
    record_id = rng.choice([None, 100 + user_id, 100 + user_id, 200 + user_id])
    if record_id:
        more["ID"] = record_id
    if rng.random() < 0.2:
        more["ACTIVE"] = False
    if rng.random() < 0.15:
        more["TZ_OFFSET"] = rng.choice([10800, 14400, -28800])
    if status == "CLOSED":
        closed = min(start + rng.choice([4, 8, 9]) * HOUR, when)
        return answer(
            "CLOSED", start, closed, duration=rng.choice(["07:00:00", "07:30:00", "08:00:00"]), **more
        )
    if status == "EXPIRED":
        more["TIME_FINISH_DEFAULT"] = local(start + 9 * HOUR)
    finish: datetime | None = None
    if status == "PAUSED" and rng.random() < 0.5:
        finish = when - rng.choice([1, 5, 20]) * MINUTE  # a 2024 build's pause moment
    return answer(status, start, finish if finish and finish > start else None, **more)


def random_record(rng: random.Random, user_id: int, when: datetime) -> dict[str, Any]:
    record_id = rng.choice([100 + user_id, 200 + user_id])
    start = rng.choice([START, START, START - HOUR, YESTERDAY, START + 30 * MINUTE])
    end = start + 8 * HOUR if rng.random() < 0.6 and start + 8 * HOUR <= when + 24 * HOUR else None
    item = record(record_id, user_id, start, end)
    if rng.random() < 0.3:
        item["duration"] = rng.choice([20000, 25200, 27000]) if end else 0
    if rng.random() < 0.3:
        item["isApproved"] = False
    return item


def play_random(seed: int, mode: str, count: int = len(USERS)) -> Any:
    users = range(1, count + 1)

    def play(engine: Engine) -> None:
        rng = random.Random(seed)
        storage.save_users(engine, PORTAL, [user(u) for u in users], START)
        save_departments(engine, PORTAL, DEPARTMENTS, START)
        now = START + HOUR
        writes: list[list[storage.SnapshotRow]] = []

        def save(rows: list[storage.SnapshotRow]) -> None:
            storage.save_portal_cycle(engine, None, rows, [], mode)  # type: ignore[arg-type]
            writes.append(rows)

        for _ in range(40):
            kind = rng.random()
            if kind < 0.55:
                now += rng.choice([10, 30, 60, 240]) * MINUTE
                chosen = rng.sample(list(users), rng.randint(1, len(users)))
                rows = [
                    storage.SnapshotRow(PORTAL, u, now, parse_status(random_answer(rng, u, now)))
                    for u in chosen
                ]
                if rng.random() < 0.3:  # a user polled twice in the write (a spool)
                    twice = chosen[0]
                    earlier = now - 5 * MINUTE
                    rows.append(
                        storage.SnapshotRow(
                            PORTAL, twice, earlier, parse_status(random_answer(rng, twice, earlier))
                        )
                    )
                save(rows)
            elif kind < 0.65 and writes:
                save(rng.choice(writes))  # a replay
            elif kind < 0.72:
                late = now - rng.choice([3, 7, 50]) * MINUTE  # a late answer of one user
                u = rng.choice(list(users))
                save([storage.SnapshotRow(PORTAL, u, late, parse_status(random_answer(rng, u, late)))])
            elif kind < 0.87:
                chosen = rng.sample(list(users), rng.randint(1, 4))
                storage.save_records(engine, PORTAL, [random_record(rng, u, now) for u in chosen], now)
            elif kind < 0.95:
                moved = {u: rng.choice(ZONES) for u in rng.sample(list(users), 3)}
                storage.save_users(
                    engine, PORTAL, [user(u, TIME_ZONE=moved.get(u, ZONES[0])) for u in users], now
                )
            else:
                now += 20 * HOUR  # days go past

    return play


@pytest.mark.parametrize("mode", ["all", "changes"])
@pytest.mark.parametrize("seed", range(3))
def test_random_histories_store_what_the_full_way_stores(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, seed: int, mode: str
) -> None:
    plain, full = both_ways(engine, monkeypatch, play_random(seed, mode))
    assert plain[0] == full[0]
    assert plain[1] == full[1]


@pytest.mark.parametrize("mode", ["all", "changes"])
@pytest.mark.parametrize("seed", range(1))
def test_random_histories_of_many_users_store_what_the_full_way_stores(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, seed: int, mode: str
) -> None:
    """60 users: a cycle's plain days go in by COPY on PostgreSQL (copy_in.MIN_ROWS)."""
    if engine.dialect.name == "sqlite":
        pytest.skip("the COPY path is PostgreSQL's (SQLite's executemany: the histories above)")
    play = play_random(100 + seed, mode, 60)
    added: list[int] = []  # the new days the planner's statistics were told of, per way

    def counted(engine: Engine) -> None:
        growth = statistics._TABLES.get(engine, {}).get("workdays")
        before = growth.added if growth else 0
        play(engine)
        growth = statistics._TABLES.get(engine, {}).get("workdays")
        added.append((growth.added if growth else 0) - before)

    plain, full = both_ways(engine, monkeypatch, counted)
    assert plain[0] == full[0]
    assert plain[1] == full[1]
    assert added[0] == added[1]


def test_a_plain_day_row_is_its_polled_day_converted(engine: Engine) -> None:
    """plain_days builds a day's driver values from its snapshot's: the same values, of the same
    types, as converting polled_day(None, poll) (random answers of every status, both databases)."""
    rng = random.Random(7)
    now = START + 3 * HOUR
    rows = [
        storage.SnapshotRow(PORTAL, user_id, now, parse_status(random_answer(rng, user_id, now)))
        for user_id in range(1, 201)
    ]
    for user_id, odd in ((201, {"record_id": 0.4}), (202, {"time_leaks_seconds": 600.5, "record_id": 7.0})):
        parsed = parse_status(answer("OPENED"))  # values no parser makes: floats for integers
        rows.append(
            storage.SnapshotRow(PORTAL, user_id, now, ParsedStatus({**parsed.values, **odd}, parsed.raw))
        )
    columns = snapshots._COLUMNS
    with engine.connect() as connection:
        own = (("raw", raw_conversion(connection.dialect)),)
        sources = driver_rows(
            connection, snapshots_table, columns, [snapshots._written_tuple(r) for r in rows], own=own
        )
        polls = [(row.user_id, snapshots._poll(snapshots._written_tuple(row))) for row in rows]
        names = {user_id: (f"User {user_id}", "Sales") for user_id in range(1, 100)}
        chosen = list(range(len(rows)))
        dialect = connection.dialect
        whole = converter(workdays_table.c.worked_seconds.type, dialect.name, dialect)
        made = plain_days.day_rows(PORTAL, polls, chosen, names, sources, columns, whole)
        expected = driver_rows(
            connection,
            workdays_table,
            plain_days._COLUMNS,
            [
                (PORTAL, user_id, poll.time_start, *polled_day(None, poll), *names.get(user_id, (None, None)))
                for user_id, poll in polls
            ],
        )
    assert [[(value, type(value)) for value in row] for row in made] == [
        [(value, type(value)) for value in row] for row in expected
    ]
    assert {poll.status for _, poll in polls} == {"OPENED", "PAUSED", "CLOSED", "EXPIRED"}


def test_a_cycle_of_odd_integer_values_is_written_whole_by_copy_as_by_the_full_way(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Floats where integers belong (no parser makes them) go into a plain day's row through the
    integer column's conversion: COPY takes the cycle at once, and the days are the full way's."""
    if engine.dialect.name == "sqlite":
        pytest.skip("the COPY path is PostgreSQL's (SQLite stores what it is given either way)")
    users = range(1, 61)

    def play(engine: Engine) -> None:
        storage.save_users(engine, PORTAL, [user(u) for u in users], START)
        for hours in (1, 2):
            rows = []
            for user_id in users:
                parsed = parse_status(answer("OPENED"))
                odd = {**parsed.values, "time_leaks_seconds": 600.5, "record_id": float(user_id)}
                rows.append(
                    storage.SnapshotRow(PORTAL, user_id, START + hours * HOUR, ParsedStatus(odd, parsed.raw))
                )
            storage.save_portal_cycle(engine, None, rows, [])

    with caplog.at_level("WARNING", logger="poller.storage"):
        plain, full = both_ways(engine, monkeypatch, play)
    assert plain == full
    assert {day["worked_seconds"] for day in plain[0]} == {2 * 3600 - 600}  # 6599.5, half to even
    assert not [record for record in caplog.records if "refused" in record.getMessage()]
