from __future__ import annotations

from poller.ratelimit import LeakyBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_burst_goes_out_at_once_then_the_rate_holds() -> None:
    fake = FakeTime()
    bucket = LeakyBucket(2.0, 50, headroom=5, clock=fake.clock, sleep=fake.sleep)
    for _ in range(45):
        bucket.acquire()
    assert fake.slept == []
    for _ in range(20):
        bucket.acquire()
    assert fake.now - 1000.0 == 10.0  # 20 more requests at 2 per second


def test_the_level_never_passes_the_capacity_as_the_portal_counts_it() -> None:
    fake = FakeTime()
    bucket = LeakyBucket(5.0, 250, clock=fake.clock, sleep=fake.sleep)
    for _ in range(600):
        bucket.acquire()
        assert bucket.level <= bucket.capacity + 1e-9
    assert bucket.capacity == 225  # 10% headroom


def test_fill_makes_the_next_request_wait_for_a_drained_slot() -> None:
    fake = FakeTime()
    bucket = LeakyBucket(2.0, 50, headroom=5, clock=fake.clock, sleep=fake.sleep)
    bucket.fill()
    waited = bucket.acquire()
    assert waited == 0.5
