"""Young garbage collections are put off while a cycle is written, and come back after; other
threads' garbage is still collected while writes overlap."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from poller import storage
from poller.status import parse_status
from poller.storage.collector import WRITE_THRESHOLD, young_collections_put_off

AT = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


@pytest.fixture
def collections() -> Iterator[list[tuple[int, int]]]:
    """The collections that ran while the test ran: (generation, young threshold at the time)."""
    ran: list[tuple[int, int]] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            ran.append((info["generation"], gc.get_threshold()[0]))

    gc.callbacks.append(note)
    try:
        yield ran
    finally:
        gc.callbacks.remove(note)


def test_a_write_of_many_answers_runs_no_collection_and_restores_the_threshold(
    engine: Engine, collections: list[tuple[int, int]]
) -> None:
    answer = {"STATUS": "OPENED", "TIME_START": "2026-11-16T09:00:00+03:00", "TZ_OFFSET": 10800}
    rows = [storage.SnapshotRow("p", user_id, AT, parse_status(answer)) for user_id in range(1, 3001)]
    suite = gc.get_threshold()
    gc.set_threshold(700, *suite[1:])  # Python's own: a collection every 700 containers held
    try:
        gc.collect()
        collections.clear()
        storage.save_portal_cycle(engine, None, rows, [])
        after = gc.get_threshold()
    finally:
        gc.set_threshold(*suite)

    # Some 15,000 objects held at once: about 20 collections at 700 without the hold. With it:
    # none while the threshold is raised, at most one once it is back (the objects still held).
    assert [threshold for _, threshold in collections] in ([], [700])
    assert after == (700, *suite[1:])


def test_garbage_is_collected_while_writes_overlap_and_the_threshold_comes_back_after_the_last() -> None:
    before = gc.get_threshold()
    inside, release = threading.Event(), threading.Event()

    def other_write() -> None:
        with young_collections_put_off():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_write)
    with young_collections_put_off():
        assert gc.get_threshold()[0] == WRITE_THRESHOLD
        thread.start()
        assert inside.wait(10)
    assert gc.get_threshold()[0] == WRITE_THRESHOLD  # the other write is still under way
    assert gc.isenabled()
    collected_before = gc.get_stats()[0]["collections"]
    kept = [[] for _ in range(WRITE_THRESHOLD + 1000)]  # another thread's objects meanwhile
    assert gc.get_stats()[0]["collections"] > collected_before and len(kept) > WRITE_THRESHOLD
    release.set()
    thread.join(10)
    assert gc.get_threshold() == before


def test_a_threshold_of_zero_or_one_changed_meanwhile_is_left_alone() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(0, *before[1:])  # automatic collection off
        with young_collections_put_off():
            assert gc.get_threshold()[0] == 0
        gc.set_threshold(*before)
        with young_collections_put_off():
            gc.set_threshold(5000, *before[1:])  # changed by someone else
        assert gc.get_threshold()[0] == 5000
        gc.set_threshold(*before)
        with young_collections_put_off():
            gc.set_threshold(WRITE_THRESHOLD, before[1] + 1, before[2])  # the older generations' only
        assert gc.get_threshold() == (WRITE_THRESHOLD, before[1] + 1, before[2])
    finally:
        gc.set_threshold(*before)
