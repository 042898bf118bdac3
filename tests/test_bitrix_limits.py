"""The client's copy of the portal's limits: the leaky bucket and the per-method operating limit."""

from __future__ import annotations

import pytest

from poller.bitrix.limits import FALLBACK_BLOCK_SECONDS, LeakyBucket, OperatingLimits
from poller.clock import ManualClock
from poller.errors import OperatingTimeLimit


class CountingClock(ManualClock):
    """A ManualClock that remembers every sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        super().sleep(seconds)


def test_the_burst_goes_out_at_once_then_the_rate_holds() -> None:
    clock = CountingClock()
    started = clock.monotonic()
    bucket = LeakyBucket(2.0, 50, headroom=5, clock=clock)
    for _ in range(45):
        bucket.acquire()
    assert clock.slept == []
    for _ in range(20):
        bucket.acquire()
    assert clock.monotonic() - started == pytest.approx(10.0)  # 20 more requests at 2 per second


def test_the_level_never_passes_the_capacity_as_the_portal_counts_it() -> None:
    bucket = LeakyBucket(5.0, 250, clock=ManualClock())
    for _ in range(600):
        bucket.acquire()
        assert bucket.level <= bucket.capacity + 1e-6  # float error of Unix-sized instants
    assert bucket.capacity == 225  # 10% headroom


def test_fill_makes_the_next_request_wait_for_a_drained_slot() -> None:
    bucket = LeakyBucket(2.0, 50, headroom=5, clock=ManualClock())
    bucket.fill()
    assert bucket.acquire() == 0.5


def test_a_blocked_method_waits_for_its_own_last_seen_reset() -> None:
    clock = ManualClock()
    limits = OperatingLimits(clock)
    now = clock.time()
    limits.note("timeman.status", {"operating": 470.0, "operating_reset_at": now + 300})
    limits.note("user.get", {"operating": 1.0, "operating_reset_at": now + 30})
    assert limits.block("timeman.status") == now + 300
    assert limits.blocked_until("timeman.status") == now + 300
    assert limits.blocked_until("user.get") is None  # the portal counts methods apart
    limits.check("user.get", "acme.bitrix24.com")  # does not raise
    with pytest.raises(OperatingTimeLimit) as caught:
        limits.check("TIMEMAN.STATUS", "acme.bitrix24.com")  # method names are case-insensitive
    assert caught.value.reset_at == now + 300
    assert "timeman.status is blocked by operation_time_limit for 300 s more" in caught.value.message.lower()
    clock.advance(300)
    assert limits.blocked_until("timeman.status") is None
    limits.check("timeman.status", "acme.bitrix24.com")


def test_a_method_never_seen_with_a_reset_is_blocked_for_the_fallback_minute() -> None:
    clock = ManualClock()
    limits = OperatingLimits(clock)
    assert limits.block("batch") == clock.time() + FALLBACK_BLOCK_SECONDS


def test_a_reset_already_passed_says_nothing_and_the_fallback_applies() -> None:
    clock = ManualClock()
    limits = OperatingLimits(clock)
    limits.note("timeman.status", {"operating_reset_at": clock.time() + 10})
    clock.advance(20)
    assert limits.block("timeman.status") == clock.time() + FALLBACK_BLOCK_SECONDS


def test_a_later_block_never_shortens_an_earlier_one() -> None:
    clock = ManualClock()
    limits = OperatingLimits(clock)
    limits.note("timeman.status", {"operating_reset_at": clock.time() + 500})
    limits.block("timeman.status")
    limits.note("timeman.status", {"operating_reset_at": clock.time() + 100})
    assert limits.block("timeman.status") == clock.time() + 500


@pytest.mark.parametrize(
    "timing", [None, [], {}, {"operating_reset_at": "soon"}, {"operating_reset_at": True}]
)
def test_a_time_block_without_a_usable_reset_is_ignored(timing: object) -> None:
    clock = ManualClock()
    limits = OperatingLimits(clock)
    limits.note("timeman.status", timing)
    assert limits.block("timeman.status") == clock.time() + FALLBACK_BLOCK_SECONDS
