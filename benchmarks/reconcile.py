"""``python -m benchmarks.reconcile [--tracked N] [--ticks T]``: CPU of events mode's reconciler.

The engine's own Tracker, Context and EcsCalls, N tracked RUNNING tasks and an in-process ECS stand-in
that answers DescribeTasks at once (no network, no pacing: the describe bucket is opened wide), on a
simulated clock (one reconcile tick = one second), so T ticks take only their CPU time. Two cases:

* ``quiet``: every task was heard of within ``reconcile_interval`` (as when events keep arriving): nothing
  is due, and the tick's work is only finding that out;
* ``spread``: the tasks were last heard of evenly over the last ``reconcile_interval``: about N/60 are
  due each tick and are described (the describe and the reading of the answers count too).

Reported: the engine thread's CPU per tick (mean over T ticks), and tasks described per tick.
Run it from a tree with another ``ecs_executor`` on the path to measure that code instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import types
from typing import Any

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.core.lifecycle import Tracked, TryState
from ecs_executor.core.pacing import TokenBucket
from ecs_executor.core.relaunch import RelaunchPolicy
from ecs_executor.core.task_status import Phase
from ecs_executor.engine import tracker as tracker_module
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.context import Context
from ecs_executor.engine.tracker import Tracker
from ecs_executor.request.run_task import TryIdentity

INTERVAL = 60.0
OPTIONS = {
    "cluster": "main",
    "container_name": "w",
    "region_name": "us-east-1",
    "task_definition": "td",
    "reconcile_interval": str(int(INTERVAL)),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def monotonic(self) -> float:
        return self.now


class Describer:
    """Answers DescribeTasks for every ARN: RUNNING, same version."""

    def __init__(self) -> None:
        self.calls = 0

    async def describe_tasks(self, cluster: str, tasks: list[str], **_: Any) -> Any:
        self.calls += 1
        return {
            "tasks": [
                {"taskArn": a, "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "version": 1}
                for a in tasks
            ],
            "failures": [],
        }


async def measure(tracked: int, ticks: int, case: str) -> dict[str, float]:
    clock = Clock()
    tracker_module.time = types.SimpleNamespace(monotonic=clock.monotonic)  # type: ignore[assignment]
    describer = Describer()

    async def factory() -> tuple[Any, contextlib.AsyncExitStack]:
        return describer, contextlib.AsyncExitStack()

    async def no_relaunch(t: Tracked, decision: Any) -> None:
        raise AssertionError("nothing is relaunched here")

    ctx = Context(settings_from_mapping(OPTIONS), m.Channel(), RelaunchPolicy(3, 600))
    calls = EcsCalls(ctx, factory)
    calls.describe_bucket = TokenBucket(1e9, 1_000_000_000)
    tracker = Tracker(ctx, calls, no_relaunch, None)
    for i in range(tracked):
        arn = f"arn:aws:ecs:us-east-1:123456789012:task/main/{i:032x}"
        t = Tracked(f"k{i}", TryIdentity("dag", f"k{i}", "run", 1), "main", state=TryState.RUNNING)
        t.arn, t.phase, t.version = arn, Phase.RUNNING, 1
        t.heard_at = clock.now - (INTERVAL * (i + 0.5) / tracked if case == "spread" else 0.0)
        ctx.registry.add(t)
    await tracker.reconcile_once()  # the first tick (the new code enters every task in its heap once)
    described = 0
    cpu = worst = 0.0
    for _ in range(ticks):
        clock.now += 1.0
        if case == "quiet":  # events keep every task heard of
            for t in ctx.registry.by_arn.values():
                t.heard_at = clock.now
        started = time.thread_time()
        described += await tracker.reconcile_once()
        spent = time.thread_time() - started
        cpu, worst = cpu + spent, max(worst, spent)
    return {
        "cpu_ms_per_tick": cpu / ticks * 1000,
        "worst_tick_ms": worst * 1000,
        "described_per_tick": described / ticks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracked", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=120)
    args = parser.parse_args(argv)
    import ecs_executor

    print(f"code: {ecs_executor.__file__}; {args.tracked:,} tracked, {args.ticks} ticks")
    for case in ("quiet", "spread"):
        r = asyncio.run(measure(args.tracked, args.ticks, case))
        print(
            f"{case:>6}: {r['cpu_ms_per_tick']:.2f} ms CPU a tick (worst {r['worst_tick_ms']:.1f} ms), "
            f"{r['described_per_tick']:.0f} described per tick",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
