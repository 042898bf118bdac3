"""A value the database refuses in the middle of a write (storage.cycles stores the
write again in halves, each in a transaction of its own) leaves the same workdays and
revisions whichever way the plain days go (storage.plain_days or the full way), in both modes,
on the executemany path and (60 users, PostgreSQL) the COPY path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, select
from test_plain_days import both_ways
from test_plain_days_random import play_random

from poller import storage
from poller.models import PollError


def _refusing(save: Any) -> Any:
    """save_portal_cycle with, in some writes (chosen by their content, so a replay and the
    second way get the same), one user's answer carrying a value no column takes."""

    def saving(
        engine: Engine, run_id: Any, rows: Sequence[storage.SnapshotRow], errors: Any, mode: Any
    ) -> Any:
        rows = list(rows)
        if rows and (len(rows) + rows[0].polled_at.minute) % 3 == 0:
            index = len(rows) // 2
            parsed = rows[index].parsed
            column = "tz_offset" if rows[0].polled_at.minute % 2 else "duration_seconds"
            rows[index] = replace(
                rows[index], parsed=replace(parsed, values={**parsed.values, column: 2**70})
            )
        return save(engine, run_id, rows, errors, mode)

    return saving


@pytest.mark.parametrize("users", [12, 60])
@pytest.mark.parametrize("mode", ["all", "changes"])
@pytest.mark.parametrize("seed", range(1))
def test_a_refused_value_mid_write_stores_what_the_full_way_stores(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, seed: int, mode: str, users: int
) -> None:
    if users == 60 and engine.dialect.name == "sqlite":
        pytest.skip("the COPY path is PostgreSQL's")
    monkeypatch.setattr(storage, "save_portal_cycle", _refusing(storage.save_portal_cycle))
    refused: list[int] = []

    def play(engine: Engine) -> None:
        play_random(seed, mode, users)(engine)
        with engine.connect() as connection:
            refused.append(
                len(connection.execute(select(PollError.id).where(PollError.code == "BAD_VALUE")).all())
            )

    plain, full = both_ways(engine, monkeypatch, play)
    assert refused[0] > 0  # the case happened
    assert plain[0] == full[0]
    assert plain[1] == full[1]
