"""The client-side token bucket on a fake clock: acquire() really runs, but sleeping advances the clock."""

from __future__ import annotations

import asyncio

import pytest

from ecs_executor.ratelimit import CUT_SPACING, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def bucket_on(clock: Clock, rate: float = 40, burst: int = 100, **kwargs: float) -> TokenBucket:
    return TokenBucket(rate=rate, burst=burst, clock=clock, sleep=clock.sleep, **kwargs)


async def test_burst_then_refill_rate() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    for _ in range(100):
        await bucket.acquire()
    assert clock.now == 0.0 and clock.sleeps == []
    await bucket.acquire()  # the 101st waits one refill interval
    assert clock.now == pytest.approx(1 / 40)
    for _ in range(39):
        await bucket.acquire()
    assert clock.now == pytest.approx(40 / 40)
    clock.now = 10.0  # long idle: refills to the burst, not beyond
    start = clock.now
    for _ in range(100):
        await bucket.acquire()
    assert clock.now == start
    await bucket.acquire()
    assert clock.now > start


async def test_bound_for_1000_launches_matches_the_ecs_formula() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    await asyncio.gather(*(bucket.acquire() for _ in range(1000)))
    assert clock.now == pytest.approx((1000 - 100) / 40)  # 22.5 s: the ECS throttle bound


async def test_waiters_are_counted_in_available() -> None:
    clock = Clock()
    bucket = bucket_on(clock, rate=10, burst=2)
    assert bucket.available() == pytest.approx(2)
    gate = asyncio.Event()

    async def frozen_sleep(seconds: float) -> None:
        await gate.wait()

    bucket._sleep = frozen_sleep
    waiters = [asyncio.create_task(bucket.acquire()) for _ in range(5)]
    await asyncio.sleep(0)
    # Two took the burst; three are waiting: the admission figure must see them.
    assert bucket.available() == pytest.approx(-3)
    gate.set()
    bucket._sleep = clock.sleep
    await asyncio.gather(*waiters)
    assert bucket.available() < 1


def test_throttle_without_accepted_calls_halves_the_rate_once_per_round() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    bucket.throttled()
    assert bucket.rate == 20 and bucket.available() == 0 and bucket.cuts == 1
    clock.now += CUT_SPACING / 2  # answers to calls sent before the cut: no second cut
    bucket.throttled()
    assert bucket.cuts == 1 and bucket.rate == pytest.approx(20 * 1.4**0.5)  # grew meanwhile, no cut
    for _ in range(30):  # every call throttled for 30 s: down to the floor, never below
        clock.now += CUT_SPACING
        bucket.throttled()
        assert bucket.rate >= 1.0
    assert bucket.rate == 1.0


def test_throttle_lowers_the_rate_to_what_was_accepted() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    for i in range(60):  # ECS took 30 calls/s over the last 2 s
        clock.now = i / 30
        bucket.accepted()
    bucket.throttled()
    assert bucket.rate == pytest.approx(30, abs=0.6)


def test_sporadic_throttles_do_not_drive_the_rate_down() -> None:
    """Throttles on 1 call in 7 while ECS accepts the rest (the fault-injection mix) cost little rate."""
    clock = Clock()
    bucket = bucket_on(clock)
    for i in range(40 * 30):  # 30 s of calls at the bucket's pace
        clock.now = i / 40
        if i % 7 == 3:
            bucket.throttled()
        else:
            bucket.accepted()
    assert bucket.cuts >= 25
    assert bucket.rate >= 0.8 * bucket.max_rate


def test_rate_recovers_to_the_maximum_while_calls_succeed() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    bucket.throttled()
    seen = []
    for _ in range(10):
        clock.now += 0.5
        bucket.available()
        seen.append(bucket.rate)
    assert seen == sorted(seen) and seen[0] == pytest.approx(20 * 1.4**0.5)  # 40 % a second
    assert seen[-1] == 40  # back at the maximum within a few seconds, never above
    clock.now += 60
    bucket.available()
    assert bucket.rate == 40


async def test_a_cut_slows_callers_already_waiting() -> None:
    clock = Clock()
    bucket = bucket_on(clock, rate=10, burst=1)
    await bucket.acquire()
    bucket.throttled()  # rate 5/s, tokens 0: the next caller waits 1/5 s, not 1/10 s
    await bucket.acquire()
    assert clock.now == pytest.approx(1 / 5)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


async def test_acquire_with_the_real_clock() -> None:
    bucket = TokenBucket(rate=1000, burst=1)
    await bucket.acquire()
    await bucket.acquire()  # ~1 ms real wait; completes
