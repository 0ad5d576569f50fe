"""What the engine's parts share: the settings, the tracked tries, and how to report and spawn.

Everything here is touched only on the engine thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ecs_executor import messages as m
from ecs_executor.config.settings import EcsExecutorSettings
from ecs_executor.core.handback import handed_back
from ecs_executor.core.lifecycle import Tracked, TryState
from ecs_executor.core.relaunch import RelaunchPolicy
from ecs_executor.engine.airflow_db import TryStateReader

#: The engine's counters, each with the metric name the facade sends it under (None: not sent).
COUNTERS: dict[str, str | None] = {
    "run_task_calls": "run_task_calls",
    "run_task_retries": "run_task_retries",
    "describe_calls": "describe_calls",
    "throttled": "throttles",
    "credential_refreshes": "credential_refreshes",
    "relaunches": None,
    "relaunches_capacity": "relaunches.capacity",
    "spot_interruptions": "spot_interruptions",
    "fallbacks": "fallbacks",  # tries moved to their fallback launch target (core.fallback)
    # events mode
    "events_received": "events.received",
    "events_applied": "events.applied",
    "events_duplicate": "events.duplicate",
    "events_stale": "events.stale",
    "events_gap": "events.gap",
    "events_unknown": "events.unknown",
    "events_dropped": "events.dropped",
    "reconcile_describes": "reconcile_describes",
    # managed task definitions
    "definitions_registered": "task_definitions.registered",
    "definitions_reused": "task_definitions.reused",
    "definition_retries": "task_definitions.retries",
    "definitions_converged": None,  # a simultaneous registration of the same content, settled on the earliest
    # the orphan sweep
    "orphans_stopped": "orphans_stopped",
    # the clean-up of derived task definitions
    "definitions_deregistered": "task_definitions_deregistered",
    "definitions_deleted": "task_definitions_deleted",
    # sealed workloads (workload_kms_key): GenerateDataKey calls, and those that failed
    "kms_calls": "kms_calls",
    "kms_failures": "kms_failures",
}

log = logging.getLogger(__name__)


class Registry:
    """The tries the engine tracks, by Airflow key and by ECS task ARN.

    ``by_key`` holds the try that answers for each key; ``by_arn`` every ECS task being described, which
    includes the watched ones (``Tracked.watched``) that no longer answer for their key."""

    def __init__(self) -> None:
        self.by_key: dict[Hashable, Tracked] = {}
        self.by_arn: dict[str, Tracked] = {}
        self.superseded: dict[Hashable, list[Tracked]] = {}  # key -> its earlier queueings' ECS tasks
        # Events mode: ARNs added to by_arn since the reconciler last took them (None: nobody takes them).
        self.fresh: list[str] | None = None

    def add(self, tracked: Tracked) -> None:
        old = self.by_key.get(tracked.key)
        if old is not None:
            self.forget(old)
        self.by_key[tracked.key] = tracked
        if tracked.arn:
            self.by_arn[tracked.arn] = tracked
            if self.fresh is not None:
                self.fresh.append(tracked.arn)

    def watch(self, tracked: Tracked, state: TryState) -> None:
        """Describe the try's ECS task until STOPPED, reporting nothing; the key is free to queue again."""
        tracked.move(state)
        if self.by_key.get(tracked.key) is tracked:
            del self.by_key[tracked.key]
        if state is TryState.SUPERSEDED:
            self.superseded.setdefault(tracked.key, []).append(tracked)

    def track_arn(self, tracked: Tracked, arn: str) -> None:
        if arn != tracked.arn:
            tracked.version = 0  # versions count per ECS task: a relaunch starts again at 1
        tracked.arn = arn
        self.by_arn[arn] = tracked
        if self.fresh is not None:
            self.fresh.append(arn)

    def untrack_arn(self, tracked: Tracked) -> None:
        if tracked.arn and self.by_arn.get(tracked.arn) is tracked:
            del self.by_arn[tracked.arn]
        tracked.arn = None

    def forget(self, tracked: Tracked) -> None:
        if self.by_key.get(tracked.key) is tracked:
            del self.by_key[tracked.key]
        if tracked.arn and self.by_arn.get(tracked.arn) is tracked:
            del self.by_arn[tracked.arn]
        earlier = self.superseded.get(tracked.key)
        if earlier and tracked in earlier:
            earlier.remove(tracked)
            if not earlier:
                del self.superseded[tracked.key]

    def arns_by_cluster(self) -> dict[str, list[str]]:
        """DescribeTasks answers only for one cluster per call: a task of another cluster is MISSING."""
        grouped: dict[str, list[str]] = {}
        for arn, tracked in self.by_arn.items():
            grouped.setdefault(tracked.cluster, []).append(arn)
        return grouped


@dataclass
class Context:
    settings: EcsExecutorSettings
    channel: m.Channel
    policy: RelaunchPolicy
    registry: Registry = field(default_factory=Registry)
    rng: random.Random = field(default_factory=random.Random)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    capacity_waiting: set[Hashable] = field(default_factory=set)
    # Events mode: seconds from an ECS change to its result being queued for the executor, since the
    # facade last took them (it swaps the list out each heartbeat).
    event_lags: list[float] = field(default_factory=list)

    # Reads the DB state of tries whose container exited (engine.airflow_db); None: report unread.
    try_states: TryStateReader | None = None
    _ends: list[m.StateChanged] = field(default_factory=list, init=False)
    _ends_flush: asyncio.Task[Any] | None = field(default=None, init=False)

    def emit(self, result: m.Result) -> None:
        if (
            self.try_states is not None
            and isinstance(result, m.StateChanged)
            and result.status.phase.is_terminal
            and self.try_states.wanted([result.key])
        ):
            self._ends.append(result)
            if self._ends_flush is None:
                self._ends_flush = self.spawn(self._flush_ends())
            return
        self.channel.put_result(result)

    async def ends_sent(self, timeout: float) -> None:
        """Shutdown: let the last batch of ends through its DB read."""
        if self._ends_flush is not None:
            await asyncio.wait([self._ends_flush], timeout=timeout)

    async def _flush_ends(self) -> None:
        """One DB read for the ends of one DescribeTasks answer or one SQS receive, then report them."""
        await asyncio.sleep(0)  # the rest of this answer's ends join the batch
        batch, self._ends, self._ends_flush = self._ends, [], None
        reader = self.try_states
        assert reader is not None
        states = await asyncio.to_thread(reader.read, [r.key for r in batch])
        for result in batch:
            primary = getattr(result.key, "primary", None)
            found = states.get(primary) if primary is not None else None
            back = handed_back(result.key, *found) if found else None
            self.channel.put_result(dataclasses.replace(result, handed_back=back) if back else result)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def finish(self, tracked: Tracked) -> None:
        """The try leaves the engine: its final word was sent (or it was revoked), or its watched ECS task
        stopped."""
        self.registry.forget(tracked)
        if not tracked.watched:
            self.capacity_waiting.discard(tracked.key)
        if tracked.state is not TryState.DONE:
            tracked.move(TryState.DONE)

    def reported(self, tracked: Tracked, task_stopped: bool) -> None:
        """The try's final word is on its way to the executor: done, or watched until ECS stops its task."""
        if task_stopped or not tracked.arn:
            self.finish(tracked)
        else:
            self.capacity_waiting.discard(tracked.key)
            self.registry.watch(tracked, TryState.EXITED)

    def fail_launch(self, tracked: Tracked, reason: str, kind: str = "permanent") -> None:
        stopping = tracked.stopping
        self.finish(tracked)
        if not stopping:
            self.emit(m.LaunchFailed(tracked.key, reason, kind))


CrashLines = Callable[[str, str], list[str]]
# How often a try waiting (for its derived task definition, for a data key) looks whether it was revoked
# or expired.
DERIVE_CHECK_SECONDS = 0.2


async def wait_while_live(
    tracked: Tracked, waiting: asyncio.Future[Any], *, expire: Callable[[Tracked, bool], Awaitable[None]]
) -> bool:
    """Wait for ``waiting`` without holding up other launches; False once the try was revoked or its token
    expired (then ``expire``). Cancels only this try's wait: the shared work (a registration, a data key)
    is shielded."""
    try:
        while not waiting.done():
            if tracked.stopping:
                return False
            if tracked.deadline is not None and time.monotonic() > tracked.deadline:
                await expire(tracked, False)
                return False
            await asyncio.wait({waiting}, timeout=DERIVE_CHECK_SECONDS)
        return True
    finally:
        if not waiting.done():
            waiting.cancel()


async def every(interval: float, work: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run ``work`` every ``interval`` seconds on the engine's loop, the first time one interval after
    start; a failure is logged and the next round still comes (periodic sweeps must never end)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; will retry in %.0fs", what, interval)
