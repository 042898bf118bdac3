"""storage.plain_days beside the full way within one write: the moment of change of the
write's revisions, many users (executemany, and COPY on PostgreSQL), a replay's statistics.

A write's revisions are dated at its newest poll (DayChanges.see over every poll), and "final
and past" is decided at that moment, whichever way the newest poll's own day was stored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from test_directory import DEPARTMENTS, user
from test_plain_days import HOUR, PORTAL, START, YESTERDAY, answer, both_ways, write

from poller import storage
from poller.status import parse_status
from poller.storage import statistics
from poller.storage.directory import save_departments

SECOND = timedelta(seconds=1)


def directory(engine: Engine) -> None:
    storage.save_users(engine, PORTAL, [user(user_id) for user_id in (1, 3)], START)
    save_departments(engine, PORTAL, DEPARTMENTS, START)


def test_a_revision_is_dated_at_the_newest_poll_of_its_write(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """User 3's closed day of yesterday is shortened by a manager; user 1's poll of the same
    write (a plain one) came 30 s later: the revision is dated at user 1's poll."""
    closed = {"start": YESTERDAY, "finish": YESTERDAY + 8 * HOUR}

    def play(engine: Engine) -> None:
        directory(engine)
        write(engine, (3, START + HOUR, answer("CLOSED", **closed, duration="08:00:00")))
        write(
            engine,
            (3, START + 2 * HOUR, answer("CLOSED", **closed, duration="07:30:00")),
            (1, START + 2 * HOUR + 30 * SECOND, answer("OPENED")),  # a new day: plain
        )

    plain, full = both_ways(engine, monkeypatch, play)
    assert [r["changed_at"] for r in full[1]] == [START + 2 * HOUR + 30 * SECOND]  # the newest poll
    assert plain == full


def test_a_day_past_at_the_newest_poll_of_its_write_leaves_its_revision(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """User 3 closed today's day (Istanbul); a manager shortens it in a write whose polls span
    local midnight: user 3 polled at 23:59:50, user 1 (plain) at 00:00:10. "Past" is decided at
    the newest poll: a revision (and corrections 1)."""
    midnight = START.replace(hour=21)  # 00:00 of Tuesday in Istanbul (UTC+3)
    finish = START + 8 * HOUR

    def play(engine: Engine) -> None:
        directory(engine)
        write(engine, (3, finish + HOUR, answer("CLOSED", finish=finish, duration="07:30:00")))
        write(
            engine,
            (3, midnight - 10 * SECOND, answer("CLOSED", finish=finish, duration="07:00:00")),
            (1, midnight + 10 * SECOND, answer("OPENED", start=midnight - 2 * HOUR)),  # plain
        )

    plain, full = both_ways(engine, monkeypatch, play)
    assert len(full[1]) == 1 and full[0][0]["corrections"] + full[0][1]["corrections"] == 1
    assert plain == full


@pytest.mark.parametrize("mode", ["all", "changes"])
@pytest.mark.parametrize("users", [20, 60])  # executemany, and COPY on PostgreSQL (>= 50 rows)
def test_many_plain_polls_with_some_refused_store_what_the_full_way_stores(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, mode: str, users: int
) -> None:
    """A cycle of many users where some days are refused by the condition (a zone that moves
    the work date, a closed day that changes, a late answer) beside plain ones."""
    if users >= 50 and engine.dialect.name == "sqlite":
        pytest.skip("the COPY path is PostgreSQL's")
    ids = range(1, users + 1)

    def cycle(engine: Engine, when: Any, answers: dict[int, dict[str, Any]]) -> None:
        rows = [storage.SnapshotRow(PORTAL, u, when, parse_status(a)) for u, a in answers.items()]
        storage.save_portal_cycle(engine, None, rows, [], mode)  # type: ignore[arg-type]

    def play(engine: Engine) -> None:
        storage.save_users(engine, PORTAL, [user(u) for u in ids], START)
        save_departments(engine, PORTAL, DEPARTMENTS, START)
        closed = {"start": YESTERDAY, "finish": YESTERDAY + 8 * HOUR}
        first = {u: answer("OPENED", ID=1000 + u) if u % 2 else answer("CLOSED", **closed) for u in ids}
        cycle(engine, START + HOUR, first)
        cycle(engine, START + 2 * HOUR, first)
        moved = [user(u, TIME_ZONE="America/Los_Angeles") for u in ids if u % 3 == 0]
        storage.save_users(engine, PORTAL, [*(user(u) for u in ids if u % 3), *moved], START)
        second = {u: answer("CLOSED", **closed, duration="07:00:00") if u % 4 == 0 else first[u] for u in ids}
        cycle(engine, START + 3 * HOUR, second)
        cycle(engine, START + 3 * HOUR, second)  # replayed
        cycle(engine, START + 4 * HOUR, {u: answer("OPENED", ID=2000 + u) for u in ids})

    plain, full = both_ways(engine, monkeypatch, play)
    assert plain == full


def test_a_replayed_write_adds_no_snapshots_to_the_planner_statistics(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spool replays a write that was stored: its snapshots are dropped before the insert,
    none counted for the planner's statistics (the plain path finds their days seen already)."""
    added: list[int] = []

    def snapshots_added() -> int:
        growth = statistics._TABLES.get(engine, {}).get("snapshots")
        return growth.added if growth else 0

    def play(engine: Engine) -> None:
        directory(engine)
        answers = [(u, START + HOUR, answer("OPENED")) for u in (1, 3)]
        write(engine, *answers)
        before = snapshots_added()
        write(engine, *answers)  # the replay
        added.append(snapshots_added() - before)

    plain, full = both_ways(engine, monkeypatch, play)
    assert plain == full
    assert added[0] == added[1]
