"""The client-side token bucket, on a fake clock (no sleeping, no timing)."""

from __future__ import annotations

import pytest

from ecs_executor.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=40, burst=100, clock=clock)
    waits = [bucket.take() for _ in range(100)]
    assert waits == [0.0] * 100
    # The 101st call must wait one refill interval, the 140th 40 intervals (1 s at 40/s).
    assert bucket.take() == pytest.approx(1 / 40)
    for _ in range(38):
        bucket.take()
    assert bucket.take() == pytest.approx(40 / 40)
    clock.now = 10.0  # long idle: refills to the burst, not beyond
    assert [bucket.take() for _ in range(60)] == [0.0] * 60


def test_bound_for_1000_launches_matches_the_ecs_formula() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=40, burst=100, clock=clock)
    last = max(bucket.take() for _ in range(1000))
    assert last == pytest.approx((1000 - 100) / 40)  # 22.5 s: the ECS throttle bound


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


async def test_acquire_waits_for_its_reservation() -> None:
    bucket = TokenBucket(rate=1000, burst=1)
    await bucket.acquire()
    await bucket.acquire()  # ~1 ms wait; completes
