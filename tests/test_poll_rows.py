"""A write's Poll of an answer (made as a bare tuple, for speed) is the Poll its stored row gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from poller import storage
from poller.status import parse_status
from poller.storage.snapshots import _poll, _written_tuple
from poller.storage.workday_rules import Poll

AT = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
START = "2026-11-16T09:00:00+03:00"
ANSWERS = [
    {"STATUS": "OPENED", "TIME_START": START, "TIME_LEAKS": "00:05:00", "TZ_OFFSET": 10800, "ACTIVE": True,
     "ID": 7},
    {"STATUS": "PAUSED", "TIME_START": START, "TIME_FINISH": "2026-11-16T12:00:00+03:00",
     "TIME_LEAKS": "00:30:00", "ACTIVE": False},
    {"STATUS": "CLOSED", "TIME_START": START, "TIME_FINISH": "2026-11-16T18:00:00+03:00",
     "DURATION": "08:00:00", "TIME_LEAKS": "01:00:00"},
    {"STATUS": "EXPIRED", "TIME_START": "2026-11-15T09:00:00+03:00",
     "TIME_FINISH_DEFAULT": "2026-11-15T18:00:00+03:00"},
]  # fmt: skip


@pytest.mark.parametrize("answer", ANSWERS, ids=[answer["STATUS"] for answer in ANSWERS])
def test_the_poll_of_an_answer_is_the_poll_of_its_stored_row(answer: dict[str, object]) -> None:
    row = storage.SnapshotRow("p", 1, AT, parse_status(answer))
    made = _poll(_written_tuple(row))
    assert type(made) is Poll and len(made) == len(Poll._fields)
    assert made == Poll.from_row(storage.snapshot_values(row))
    assert made._asdict()["time_start"] == datetime(
        2026, 11, 16 if answer["STATUS"] != "EXPIRED" else 15, 6, tzinfo=UTC
    )
