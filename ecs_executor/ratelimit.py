"""A client-side token bucket shaped like ECS's own, so we spend the API budget instead of failing on it.

ECS refills per-account buckets continuously (e.g. RunTask: 100 burst, 40/s). Pacing calls to the same
shape keeps ThrottlingExceptions rare; the SDK's adaptive retry mops up the rest (shared accounts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Continuous-refill bucket. ``delay()`` is pure bookkeeping; ``acquire()`` awaits it, FIFO."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def available(self) -> float:
        """Tokens now (negative when callers already wait); a cheap read for admission decisions."""
        now = self._clock()
        return min(self.burst, self._tokens + (now - self._stamp) * self.rate)

    def take(self) -> float:
        """Reserve one token; return how long the caller must wait before using it (0 if at once)."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        # Reservations are taken in call order, so waiters are served first come, first served.
        wait = self.take()
        if wait > 0:
            await asyncio.sleep(wait)
