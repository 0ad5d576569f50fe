"""A client-side token bucket shaped like ECS's own, so we spend the API budget instead of failing on it.

ECS refills per-account buckets continuously (e.g. RunTask: 100 burst, 40/s). Pacing calls to the same
shape keeps ThrottlingExceptions rare. When ECS throttles anyway (other clients share the account's
budget), ``throttled()`` lowers the rate to what ECS did not throttle over the last seconds (at most
halving it per round) and the rate grows back by 40 % a second. Scoped to one operation, so a throttled
RunTask never slows DescribeTasks (botocore's adaptive mode slows the whole client, docs/benchmarks.md).
Measuring what got through, rather than halving on every throttle, keeps sporadic throttles (14 % of
calls in tests/test_fault_injection.py) from driving the rate to the floor.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

# After a cut, the rate grows by this fraction of itself per second until it is back at the maximum
# (20/s → 40/s in about 2 s): an isolated throttle at the burst edge costs ~15 launches, not seconds.
RECOVERY_PER_SECOND = 0.4
# Throttles answered within this long after a cut were sent at the old rate: one cut per round.
CUT_SPACING = 1.0
# A throttle sets the rate to the calls ECS accepted per second over this window.
ACCEPTED_WINDOW = 2.0
EPSILON = 1e-9


class TokenBucket:
    """Continuous-refill bucket; ``acquire()`` waits first come, first served at the current rate."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_rate: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.max_rate = rate
        self.rate = rate
        self.min_rate = min(min_rate, rate)
        self.burst = burst
        self.cuts = 0
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._last_cut = float("-inf")
        self._waiting = 0
        self._lock: asyncio.Lock | None = None
        self._accepted: deque[float] = deque(maxlen=int(rate * ACCEPTED_WINDOW) + burst)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._stamp
        if elapsed <= 0:
            return
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate * (1 + RECOVERY_PER_SECOND) ** elapsed)
        self._stamp = now

    def available(self) -> float:
        """Tokens now minus callers already waiting (negative when there is a queue)."""
        self._refill()
        return self._tokens - self._waiting

    async def acquire(self) -> None:
        # An asyncio.Lock wakes waiters in order: first come, first served. The holder re-reads the
        # rate after each sleep, so a cut applies to every caller still waiting.
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._waiting += 1
        try:
            async with self._lock:
                while True:
                    self._refill()
                    if self._tokens >= 1.0 - EPSILON:  # refill arithmetic is not exact
                        self._tokens -= 1.0
                        return
                    await self._sleep((1.0 - self._tokens) / self.rate)
        finally:
            self._waiting -= 1

    def accepted(self) -> None:
        """A call paid for by this bucket was not throttled (whatever else became of it)."""
        self._accepted.append(self._clock())

    def throttled(self) -> None:
        """The service refused a call for its rate: send nothing until refilled, and slow down."""
        self._refill()
        now = self._clock()
        if now - self._last_cut >= CUT_SPACING:
            recent = sum(1 for t in self._accepted if now - t <= ACCEPTED_WINDOW)
            target = max(recent / ACCEPTED_WINDOW, self.rate / 2, self.min_rate)
            self.rate = min(self.rate, target)
            self._last_cut = now
            self.cuts += 1
        self._tokens = min(self._tokens, 0.0)
