"""The cyclic garbage collector is held off while a cycle is written, and comes back after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from poller import storage
from poller.status import parse_status
from poller.storage.collector import collector_held_off

AT = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations of the collections that ran while the test ran."""
    ran: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            ran.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield ran
    finally:
        gc.callbacks.remove(note)


def test_a_write_of_many_answers_runs_no_collection_and_leaves_the_collector_on(
    engine: Engine, collections: list[int]
) -> None:
    answer = {"STATUS": "OPENED", "TIME_START": "2026-11-16T09:00:00+03:00", "TZ_OFFSET": 10800}
    rows = [storage.SnapshotRow("p", user_id, AT, parse_status(answer)) for user_id in range(1, 3001)]
    assert gc.isenabled()
    gc.collect()
    collections.clear()

    storage.save_portal_cycle(engine, None, rows, [])

    assert collections == []  # some 30,000 objects made and freed: young collections without the hold
    assert gc.isenabled()
    made_after = [[] for _ in range(2 * gc.get_threshold()[0])]  # containers made after the write
    assert collections != [] and len(made_after) > 0


def test_the_collector_comes_back_when_the_last_of_overlapping_writes_ends() -> None:
    inside, release = threading.Event(), threading.Event()

    def other_write() -> None:
        with collector_held_off():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_write)
    with collector_held_off():
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other write is still under way
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_held_off():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
