"""A client-side token bucket shaped like ECS's own, so we spend the API budget instead of failing on it.

ECS refills per-account buckets continuously (e.g. RunTask: 100 burst, 40/s). Pacing calls to the same
shape keeps ThrottlingExceptions rare. When ECS throttles anyway (other clients share the account's
budget), ``throttled()`` cuts the rate in proportion to the share of calls throttled over the last two
seconds (like DCTCP's window), but never below what ECS accepted meanwhile, and by at most a factor 4
per second. The rate grows back by 10 % a second, 40 % once 5 s pass without a cut. A real limit is
found within a few rounds; sporadic throttles cost about their share of calls per round.
One bucket per ECS budget (the engine's: RunTask and StopTask; DescribeTasks and ListTasks): a throttled
RunTask never slows DescribeTasks (botocore's adaptive mode slows the whole client, docs/benchmarks.md).

The same bucket paces threads that must not queue (CloudWatch Logs reads): ``book()`` reserves a turn
only if it comes soon enough and leaves the sleeping to the caller; a ``min_rate`` equal to the rate
makes a fixed quota, and a ``guard`` lock makes booking thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

# After a cut the rate grows back by this fraction of itself per second: slowly while close to the
# limit just found (a sawtooth that overshoots less; docs/benchmarks.md), then fast, so a passing squeeze
# costs seconds, not minutes.
RECOVERY_NEAR_CUT = 0.1
NEAR_CUT_SECONDS = 5.0
RECOVERY_PER_SECOND = 0.4
# Throttles answered within this long after a cut were sent at the old rate: one cut per round.
CUT_SPACING = 1.0
# A cut looks at the calls answered within this window.
WINDOW = 2.0
# One cut divides the rate by at most this much (a single throttle must not stall launching).
MAX_CUT = 4.0
EPSILON = 1e-9
# Growth is computed over at most this long (a long idle period must not overflow a float).
GROWTH_HORIZON = 60.0


class TokenBucket:
    """Continuous-refill bucket; ``acquire()`` waits first come, first served at the current rate.

    ``guard`` is held while ``book()`` or ``throttled()`` changes the bucket: a ``threading.Lock`` when
    several threads share it (the event loop needs none).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_rate: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        guard: contextlib.AbstractContextManager[Any] | None = None,
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
        self._guard = guard if guard is not None else contextlib.nullcontext()
        self._tokens = float(burst)
        self._stamp = clock()
        self._last_cut = float("-inf")
        self._round_rate = rate  # the rate when the current round of cuts began
        self._waiting = 0
        self._lock: asyncio.Lock | None = None
        # (time, throttled) of recent answers, for the cuts.
        self._answers: deque[tuple[float, bool]] = deque(maxlen=int(rate * WINDOW) + burst)

    def _projected(self, now: float) -> tuple[float, float]:
        """Tokens and rate at ``now``; pure, so other threads may call it."""
        elapsed = max(0.0, now - self._stamp)
        tokens = min(self.burst, self._tokens + elapsed * self.rate)
        rate = self.rate
        if rate < self.max_rate:
            growth = RECOVERY_NEAR_CUT if now - self._last_cut < NEAR_CUT_SECONDS else RECOVERY_PER_SECOND
            rate = min(self.max_rate, rate * (1 + growth) ** min(elapsed, GROWTH_HORIZON))
        return tokens, rate

    def _refill(self) -> None:
        """Only on the owning event loop: the scheduler thread reads through the pure methods."""
        now = self._clock()
        self._tokens, self.rate = self._projected(now)
        self._stamp = max(self._stamp, now)

    def available(self) -> float:
        """Tokens now minus callers already waiting (negative when there is a queue). Read-only."""
        tokens, _ = self._projected(self._clock())
        return tokens - self._waiting

    def current_rate(self) -> float:
        """The rate now, including growth since the last call (read-only)."""
        return self._projected(self._clock())[1]

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

    def book(self, max_wait: float = 0.0) -> float | None:
        """Reserve the next turn if it comes within ``max_wait`` seconds: the seconds until it (the caller
        sleeps them, outside any lock). None, reserving nothing, when it is further away.

        Turns are spaced ``1/rate`` apart once the burst is spent (tokens go negative: turns booked), so
        the calls sent in any ``T`` seconds never exceed ``burst + rate * T``, however many ask.
        """
        with self._guard:
            self._refill()
            wait = 0.0 if self._tokens >= 1.0 - EPSILON else (1.0 - self._tokens) / self.rate
            if wait > max_wait + EPSILON:
                return None
            self._tokens -= 1.0
            return wait

    def accepted(self) -> None:
        """A call paid for by this bucket was not throttled (whatever else became of it)."""
        self._answers.append((self._clock(), False))

    def throttled(self) -> None:
        """The service refused a call for its rate: send nothing until refilled, and slow down.

        Every throttle re-reads the window, so the answers to one burst lower the rate as they arrive;
        a round (CUT_SPACING) lowers it by at most MAX_CUT, since they were all sent at the old rate.
        """
        with self._guard:
            self._refill()
            now = self._clock()
            self._answers.append((now, True))
            if now - self._last_cut >= CUT_SPACING:
                self._last_cut = now
                self._round_rate = self.rate
                self.cuts += 1
            recent = [throttled for t, throttled in self._answers if now - t <= WINDOW]
            accepted = recent.count(False)
            share = (len(recent) - accepted) / len(recent)
            floor = max(self._round_rate / MAX_CUT, self.min_rate)
            self.rate = min(self.rate, max(self._round_rate * (1 - share), accepted / WINDOW, floor))
            self._tokens = min(self._tokens, 0.0)
