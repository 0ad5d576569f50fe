"""Throttling and fault-injection decisions.

Every random decision goes through one seeded RNG so a fault-injection run can be replayed; the
decisions are pure (they never touch the network), the server acts on them.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable

from ecs_executor.local_ecs.buckets import DEFAULT_BUCKETS, OPERATION_BUCKETS
from ecs_executor.local_ecs.knobs import Knobs
from ecs_executor.local_ecs.model import SPOT_INTERRUPTED_REASON

#: Operations that change state; a lost reply on them is the interesting case (applied, but unseen).
MUTATING_OPERATIONS = frozenset(
    {
        "CreateCluster",
        "RegisterTaskDefinition",
        "DeregisterTaskDefinition",
        "RunTask",
        "StopTask",
        "TagResource",
        "UntagResource",
    }
)

FAIL_TO_START_REASONS = (
    "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref "
    "{image}: failed to do request: Head https://registry/v2/manifests/latest: dial tcp 10.0.0.1:443: "
    "i/o timeout",
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
    "failed: unable to retrieve secret from asm: There is a connection issue between the task and AWS "
    "Secrets Manager. Check your task network configuration.",
    "ResourceInitializationError: failed to configure ENI: failed to setup regular eni: netplugin failed "
    "with no error message: signal: killed",
    "CannotPullContainerError: ref pull has been retried 1 time(s): failed to copy: httpReadSeeker: "
    "failed open: unexpected status code {image}: 429 Too Many Requests - Server message: toomanyrequests",
)


#: failures[] reason when Fargate has no capacity for a task (AWS re:Post "ecs-fargate-runtask-capacity").
CAPACITY_UNAVAILABLE = (
    "Capacity is unavailable at this time. Please try again later or in a different availability zone"
)
#: The ClientException RunTask raises once too many tasks wait in PROVISIONING.
PROVISIONING_LIMIT = "Tasks provisioning capacity limit exceeded."
SHORTAGE_REASONS = {"resource": "RESOURCE:MEMORY", "unavailable": CAPACITY_UNAVAILABLE}


def image_missing_reason(image: str) -> str:
    """The stoppedReason of a task whose image (tag) does not exist in its registry."""
    return (
        f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
        f"{image}: {image}: not found"
    )


class TokenBucket:
    """A refilling token bucket, like the ones ECS applies per account, Region and operation group."""

    __slots__ = ("burst", "clock", "refill", "stamp", "tokens")

    def __init__(self, burst: float, refill: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.refill = refill
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()

    def available(self) -> float:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        return self.tokens

    def take(self, amount: float = 1.0) -> None:
        self.tokens -= amount


class Faults:
    """Decides, per call, which fault (if any) the server injects."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.injected: Counter[str] = Counter()
        self.rng = random.Random(knobs.seed)
        self.buckets: dict[str, TokenBucket] = {}
        self.clock: Callable[[], float] = time.monotonic
        self.shortage_until = 0.0
        self.reconfigure(["seed", "throttle", "throttle_overrides", "capacity_shortage_seconds"])

    def reconfigure(self, changed: list[str]) -> None:
        """Reset the state a knob change invalidates (a new seed restarts the random sequence)."""
        if "seed" in changed:
            self.rng.seed(self.knobs.seed)
        if {"throttle", "throttle_overrides", "fargate"} & set(changed):
            sizes = {**DEFAULT_BUCKETS, **self.knobs.throttle_overrides}
            self.buckets = {group: TokenBucket(burst, refill) for group, (burst, refill) in sizes.items()}
        if "capacity_shortage_seconds" in changed:
            seconds = self.knobs.capacity_shortage_seconds
            self.shortage_until = self.clock() + seconds if seconds > 0 else 0.0

    def _applies(self, operation: str) -> bool:
        allowed = self.knobs.fault_operations
        return allowed is None or operation in allowed

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def latency(self) -> float:
        """Seconds to wait before handling a call."""
        delay = self.knobs.latency_ms
        if self._roll(self.knobs.latency_spike_rate):
            self.injected["latency_spike"] += 1
            delay += self.knobs.latency_spike_ms
        return delay / 1000.0

    def bucket_throttled(self, operation: str, fargate_launches: int) -> bool:
        """Take tokens for a call; True when a bucket is empty (nothing is taken then)."""
        if not self.knobs.throttle:
            return False
        needed: list[tuple[TokenBucket, float]] = []
        group = OPERATION_BUCKETS.get(operation)
        if group is not None:
            needed.append((self.buckets[group], 1.0))
        if self.knobs.fargate and fargate_launches:
            needed.append((self.buckets["fargate_launch"], float(fargate_launches)))
        if any(bucket.available() < amount for bucket, amount in needed):
            self.injected["bucket_throttle"] += 1
            return True
        for bucket, amount in needed:
            bucket.take(amount)
        return False

    def before_call(self, operation: str) -> str | None:
        """A fault answered instead of applying the call: throttle, server_error or reset."""
        if not self._applies(operation):
            return None
        for kind, rate in (
            ("throttle", self.knobs.throttle_rate),
            ("server_error", self.knobs.server_error_rate),
            ("reset", self.knobs.reset_rate),
        ):
            if self._roll(rate):
                self.injected[kind] += 1
                return kind
        return None

    def server_error_status(self) -> int:
        return 503 if self.rng.random() < 0.5 else 500

    def lose_reply(self, operation: str) -> bool:
        """True when an applied call should be answered by closing the connection."""
        if self._applies(operation) and self._roll(self.knobs.lost_reply_rate):
            self.injected["lost_reply"] += 1
            return True
        return False

    def run_task_failure(self) -> str | None:
        """The placement failure reason for one task of a RunTask, if it should fail."""
        if self._applies("RunTask") and self._roll(self.knobs.run_task_failure_rate):
            self.injected["run_task_failure"] += 1
            return self.knobs.run_task_failure_reason
        return None

    def capacity_shortage(self) -> str | None:
        """The capacity_shortage_kind while the shortage window set by configure is open, else None."""
        if self.shortage_until and self.clock() < self.shortage_until:
            self.injected["capacity_shortage"] += 1
            return self.knobs.capacity_shortage_kind
        return None

    def spot_shortage(self, provider: str | None) -> str | None:
        """The failures[] reason for a task placed on FARGATE_SPOT while Spot has no capacity, else None."""
        if self.knobs.spot_capacity_shortage and provider == "FARGATE_SPOT":
            self.injected["spot_capacity_shortage"] += 1
            return CAPACITY_UNAVAILABLE
        return None

    def spot_before_start(self, provider: str | None) -> str | None:
        """Spot's stoppedReason for a FARGATE_SPOT task to be interrupted before its containers start."""
        if self.knobs.spot_interruption_before_start and provider == "FARGATE_SPOT":
            self.injected["spot_interruption_before_start"] += 1
            return SPOT_INTERRUPTED_REASON
        return None

    def fail_to_start(self, image: str) -> str | None:
        """The stoppedReason for a task that should never start, if it should fail."""
        if self.knobs.image_missing:
            self.injected["image_missing"] += 1
            return image_missing_reason(image)
        if not (self._applies("RunTask") and self._roll(self.knobs.fail_to_start_rate)):
            return None
        self.injected["fail_to_start"] += 1
        if self.knobs.fail_to_start_reason:
            return self.knobs.fail_to_start_reason
        return self.rng.choice(FAIL_TO_START_REASONS).format(image=image)
