"""When to try a launch again, and after how long. Pure: numbers in, decisions out, no clock of its own.

Two kinds of "again" exist and share one backoff formula:

* a *retry* repeats the same RunTask (same clientToken) after throttling, a 5xx or a lost reply: it
  uses up nothing, because ECS may not even have seen the call;
* a *relaunch* is a new launch attempt (new clientToken) after ECS said no task will run from the last
  one: capacity shortages are bounded by time (cluster auto scaling takes minutes), everything else by
  ``max_run_task_attempts``; both by the workload token's expiry.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

# Retries of one RunTask: 0.25-0.5 s, doubling, at most 10-20 s apart.
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 20.0
# Relaunches after a failed attempt: 1-2 s, doubling, at most 30-60 s apart.
RELAUNCH_BASE_SECONDS = 2.0
RELAUNCH_CAP_SECONDS = 60.0


class FailureKind(str, enum.Enum):
    """Why a launch attempt produced no running task; decides which budget a relaunch spends."""

    CAPACITY = "capacity"  # no room in the cluster (yet): bounded by capacity_wait_seconds
    START = "start"  # the task stopped before its container started (ENI, pull i/o, host lost)
    SPOT = "spot"  # Spot reclaimed the capacity before the try was seen running (opt-in relaunch)


def backoff_seconds(n: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter in the upper half: ``base * 2**(n-1)`` capped, times 0.5-1.

    The one formula for every wait between RunTask attempts in the engine (retries and relaunches).
    """
    ceiling = min(cap, base * 2 ** min(max(0, n - 1), 30))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class RelaunchDecision:
    allowed: bool
    delay: float = 0.0
    why_not: str = ""  # for the task's failure reason when not allowed
    kind: str = "gave_up"  # metric dimension of the failure when not allowed: gave_up | expired


@dataclass(frozen=True, slots=True)
class RelaunchPolicy:
    """The budgets for relaunching one Airflow try (from the executor's settings)."""

    max_attempts: int
    capacity_wait_seconds: float

    def retry_delay(self, retries: int, rng: random.Random | None = None) -> float:
        """Before repeating the same RunTask for the ``retries``-th time."""
        return backoff_seconds(retries, RETRY_BASE_SECONDS, RETRY_CAP_SECONDS, rng)

    def decide(
        self,
        kind: FailureKind,
        attempt: int,
        *,
        now: float,
        capacity_since: float | None,
        deadline: float | None,
        rng: random.Random | None = None,
    ) -> RelaunchDecision:
        """May launch attempt ``attempt + 1`` follow, and when.

        ``capacity_since`` is when this try first met a capacity failure; ``deadline`` is when its Airflow
        token expires (a task that starts later cannot report back).
        """
        if kind == FailureKind.CAPACITY:
            since = now if capacity_since is None else capacity_since
            if now - since >= self.capacity_wait_seconds:
                return RelaunchDecision(
                    False,
                    why_not=f"no capacity for {now - since:.0f}s (capacity_wait_seconds="
                    f"{self.capacity_wait_seconds:g})",
                )
            # Capacity returns in minutes, not seconds: keep the pace moderate, never stop early.
            delay = backoff_seconds(attempt, RELAUNCH_BASE_SECONDS, RELAUNCH_CAP_SECONDS / 2, rng)
            delay = min(delay, max(0.0, since + self.capacity_wait_seconds - now))
        else:
            if attempt >= self.max_attempts:
                return RelaunchDecision(False, why_not=f"gave up after {attempt} launch attempts")
            delay = backoff_seconds(attempt, RELAUNCH_BASE_SECONDS, RELAUNCH_CAP_SECONDS, rng)
        if deadline is not None and now + delay > deadline:
            return RelaunchDecision(
                False,
                why_not="no relaunch: it could not start before the task's Airflow token expires",
                kind="expired",
            )
        return RelaunchDecision(True, delay)
