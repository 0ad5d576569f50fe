"""The client-side token bucket on a fake clock: acquire() really runs, but sleeping advances the clock."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ecs_executor.core.pacing import CUT_SPACING, TokenBucket


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


def test_a_lone_throttle_cuts_at_most_4x_once_per_round_and_empties_the_bucket() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    bucket.throttled()
    assert bucket.rate == 10 and bucket.available() == 0 and bucket.cuts == 1
    clock.now += CUT_SPACING / 2  # same round: sent at the old rate, so still at most 4x below it
    bucket.throttled()
    assert bucket.cuts == 1 and bucket.rate == 10
    for _ in range(30):  # every call throttled for 30 s: down to the floor, never below
        clock.now += CUT_SPACING
        bucket.throttled()
        assert bucket.rate >= 1.0
    assert bucket.rate == 1.0


async def simulate_ecs_limit(capacity: float, rate: float, seconds: int) -> list[tuple[float, bool]]:
    """Calls as fast as the bucket allows against an ECS-like bucket of ``capacity`` per second."""
    clock = Clock()
    bucket = bucket_on(clock, rate=rate, burst=100)
    ecs_tokens, last, answers = capacity, 0.0, []
    while clock.now < seconds:
        await bucket.acquire()
        ecs_tokens = min(capacity, ecs_tokens + (clock.now - last) * capacity)
        last = clock.now
        throttled = ecs_tokens < 1
        if throttled:
            bucket.throttled()
        else:
            ecs_tokens -= 1
            bucket.accepted()
        answers.append((clock.now, throttled))
    return answers


@pytest.mark.parametrize("capacity, rate", [(5, 100), (4, 40), (20, 40)])
async def test_a_real_limit_is_used_fully_with_few_throttles(capacity: float, rate: float) -> None:
    """ECS grants less than the bucket allows (the benchmark's 10x oversubscription is 4 of 40/s)."""
    answers = await simulate_ecs_limit(capacity, rate, seconds=20)
    late = [throttled for t, throttled in answers if t > 10]
    accepted = late.count(False)
    assert accepted >= 0.9 * capacity * 10  # the budget ECS grants is used
    assert late.count(True) <= 0.25 * accepted  # a fixed 100/s pace: 19 throttles per accepted call


def test_throttle_lowers_the_rate_in_proportion_to_the_calls_throttled() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    for i in range(45):  # 45 calls accepted within the last second
        clock.now = i / 60
        bucket.accepted()
    bucket.throttled()  # then one throttled: 1 of 46 answers
    assert bucket.rate == pytest.approx(40 * 45 / 46, rel=1e-3)
    for i in range(15):  # a quarter of the calls throttled in the next round
        clock.now = 1.0 + i / 60
        bucket.throttled()
    clock.now = 2.5
    before = bucket.current_rate()
    bucket.throttled()
    # Window (0.5 s .. 2.5 s): 15 accepted, 16 + 1 throttled.
    assert bucket.rate == pytest.approx(max(before * 15 / 32, 15 / 2.0, before / 4))


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
    for _ in range(20):
        clock.now += 0.5
        seen.append(bucket.current_rate())
    assert seen == sorted(seen) and seen[0] == pytest.approx(10 * 1.1**0.5)  # 10 % a second at first
    assert seen[-1] == 40  # back at the maximum within a few seconds, never above
    clock.now += 60
    assert bucket.current_rate() == 40


async def test_a_cut_slows_callers_already_waiting() -> None:
    clock = Clock()
    bucket = bucket_on(clock, rate=10, burst=1)
    await bucket.acquire()
    bucket.throttled()  # a lone throttle: rate 2.5/s, tokens 0; the next caller waits 0.4 s, not 0.1 s
    await bucket.acquire()
    assert clock.now == pytest.approx(1 / 2.5)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


async def test_acquire_with_the_real_clock() -> None:
    bucket = TokenBucket(rate=1000, burst=1)
    await bucket.acquire()
    await bucket.acquire()  # ~1 ms real wait; completes


def test_reads_from_other_threads_change_nothing() -> None:
    """available() and current_rate() run on the scheduler thread: they must not write the bucket."""
    clock = Clock()
    bucket = bucket_on(clock)
    bucket.throttled()
    state = (bucket._tokens, bucket.rate, bucket._stamp)
    clock.now += 3
    assert bucket.available() > 0 and bucket.current_rate() > bucket.rate
    assert (bucket._tokens, bucket.rate, bucket._stamp) == state


async def test_a_long_idle_period_after_a_cut_does_not_overflow() -> None:
    clock = Clock()
    bucket = bucket_on(clock)
    bucket.throttled()
    clock.now += 3600  # an hour without calls: (1.4 ** 3600) would overflow a float
    assert bucket.current_rate() == 40 and bucket.available() == 100
    await bucket.acquire()
    assert bucket.rate == 40


def test_book_gives_turns_within_the_rate_across_threads() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, 10, clock, guard=threading.Lock())
    with ThreadPoolExecutor(max_workers=50) as pool:
        waits = list(pool.map(lambda _: bucket.book(max_wait=2.0), range(50)))
    sends = sorted(w for w in waits if w is not None)
    # The burst at once, then one turn every 1/rate s up to the 2 s wait budget; the rest are refused.
    assert len(sends) == 10 + 20
    for start in sends:
        assert len([t for t in sends if start <= t < start + 1.0 - 1e-9]) <= 10 + 10
    assert max(sends) <= 2.0 + 1e-9


def test_book_without_wait_budget_books_only_the_tokens_there() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, 3, clock)
    assert [bucket.book(0.0) for _ in range(5)] == [0.0, 0.0, 0.0, None, None]
    clock.now += 0.1  # one token refilled
    assert bucket.book(0.0) == 0.0 and bucket.book(0.0) is None


def test_a_throttle_on_a_fixed_quota_spends_the_saved_tokens_and_keeps_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, 10, clock, min_rate=10.0)
    bucket.throttled()
    assert bucket.book(0.0) is None and bucket.rate == 10.0
