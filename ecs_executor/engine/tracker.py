"""Tracking: DescribeTasks sweeps over every tracked task, grouped by cluster, in chunks of 100, and what
each description means for the try (report it, relaunch it, or wait).

A try's final word goes out when its container has an exit code (``core.task_status.task_status``),
while ECS may still be stopping the task; the task is then watched until STOPPED without another report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from ecs_executor import messages as m
from ecs_executor.aws.clients import classify_exception
from ecs_executor.core.lifecycle import Tracked, TryState
from ecs_executor.core.relaunch import FailureKind
from ecs_executor.core.task_status import Phase, TaskStatus, task_status
from ecs_executor.core.triage import Decision, Verdict, classify_stopped
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.context import Context, CrashLines
from ecs_executor.request.ecs_rules import MAX_DESCRIBE_TASKS

log = logging.getLogger(__name__)

# DescribeTasks calls in flight at once. The 20/s refill is the limit anyway (docs/benchmarks.md); fewer
# responses parsed at a time keeps a sweep's garbage, and so the RSS high-water mark, independent of the
# number of tracked tasks.
DESCRIBE_IN_FLIGHT = 4
# A freshly launched task can be briefly unknown to DescribeTasks (eventual consistency).
MISSING_POLLS_BEFORE_FAIL = 3
# Last CloudWatch lines added to a crashed task's failure reason (awslogs driver only).
CRASH_LOG_LINES = 5
CRASH_LOG_TIMEOUT = 10.0
# Events mode: how often the reconciler looks for tasks due a DescribeTasks.
RECONCILE_TICK_SECONDS = 1.0
# Events mode: tasks described per reconcile tick at most (the DescribeTasks refill: 20 calls of 100 a s).
RECONCILE_PER_TICK = 2_000
# Events mode: due-bucket entries looked at per reconcile tick at most (the rest waits for the next tick).
RECONCILE_VISITS_PER_TICK = 10_000
# Events mode: a task ECS answered MISSING for is asked again this soon (not after a full interval).
MISSING_RECHECK_SECONDS = 5.0

Relaunch = Callable[[Tracked, Decision], Coroutine[Any, Any, None]]


class Tracker:
    def __init__(self, ctx: Context, calls: EcsCalls, relaunch: Relaunch, crash_lines: CrashLines | None):
        self.ctx = ctx
        self.calls = calls
        self._relaunch = relaunch
        self._crash_lines = crash_lines
        self._gate = asyncio.Semaphore(DESCRIBE_IN_FLIGHT)
        self.last_sweep_seconds: float | None = None
        self.suspects: set[str] = set()  # events mode: ARNs to describe at the next reconcile tick
        # Events mode: when each tracked task is due a describe, without a scan: ARNs in one-second
        # buckets by when they were last heard of (a task already due goes into the oldest bucket). An
        # entry counts only while _bucket_of names its bucket; a task heard of since moves on when met.
        self._buckets: dict[int, list[str]] = {}
        self._bucket_of: dict[str, int] = {}
        self._first_bucket: int | None = None  # no entry is in an earlier bucket
        self.due_visits = 0  # bucket entries looked at (the work of finding what is due)

    async def poll_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("DescribeTasks sweep failed; will retry")
            elapsed = time.monotonic() - started
            if self.ctx.registry.by_arn or elapsed > 0.001:
                self.last_sweep_seconds = elapsed
            await asyncio.sleep(max(0.05, self.ctx.settings.poll_interval - elapsed))

    async def poll_once(self) -> None:
        await self._describe_grouped(self.ctx.registry.arns_by_cluster())

    async def _describe_grouped(self, grouped: Mapping[str, list[str]]) -> None:
        calls = []
        for cluster, arns in grouped.items():
            calls += [
                self._describe(cluster, arns[i : i + MAX_DESCRIBE_TASKS])
                for i in range(0, len(arns), MAX_DESCRIBE_TASKS)
            ]
        await asyncio.gather(*calls)

    # ---- events mode: describe only what events did not settle --------------------------------------

    def suspect(self, tracked: Tracked) -> None:
        """Describe this task at the next reconcile tick (its event stream shows a gap)."""
        if tracked.arn:
            self.suspects.add(tracked.arn)

    async def reconcile_once(self) -> int:
        """Describe suspects, then tasks not heard of within reconcile_interval; returns how many.

        At most RECONCILE_PER_TICK a tick (the DescribeTasks bucket's refill), so tasks launched together,
        and so due together, are described over several ticks instead of one burst that would parse
        thousands of descriptions at once while the scheduler thread waits for the GIL."""
        registry = self.ctx.registry
        by_arn = registry.by_arn
        stale_before = time.monotonic() - self.ctx.settings.reconcile_interval
        if self._first_bucket is None:
            self._first_bucket = math.floor(stale_before) - 1
        if registry.fresh is None:  # the first tick: everything tracked so far, then only what is added
            registry.fresh = list(by_arn)
        fresh, registry.fresh = registry.fresh, []
        self._schedule(fresh)
        due = [arn for arn in self.suspects if arn in by_arn][:RECONCILE_PER_TICK]
        self.suspects.difference_update(due)
        if len(due) < RECONCILE_PER_TICK:
            due += self._take_due(stale_before, RECONCILE_PER_TICK - len(due), set(due))
        if not due:
            return 0
        grouped: dict[str, list[str]] = {}
        for arn in due:
            grouped.setdefault(by_arn[arn].cluster, []).append(arn)
        self.ctx.counters["reconcile_describes"] += len(due)
        try:
            await self._describe_grouped(grouped)
        finally:
            self._schedule(due)  # due again reconcile_interval after they were last heard of
        return len(due)

    def _schedule(self, arns: Iterable[str]) -> None:
        """(Re)enter tasks in the bucket of when they were last heard of."""
        by_arn, bucket_of, buckets = self.ctx.registry.by_arn, self._bucket_of, self._buckets
        first = self._first_bucket or 0
        for arn in arns:
            tracked = by_arn.get(arn)
            if tracked is None:
                continue
            b = max(int(tracked.heard_at), first)
            if bucket_of.get(arn) != b:
                bucket_of[arn] = b
                buckets.setdefault(b, []).append(arn)

    def _take_due(self, stale_before: float, room: int, chosen: set[str]) -> list[str]:
        """Up to ``room`` tasks not heard of since ``stale_before``, longest unheard first. Looks only at
        the buckets that old, once at each entry (and once more at a task heard of since it was entered)."""
        by_arn, bucket_of, buckets = self.ctx.registry.by_arn, self._bucket_of, self._buckets
        assert self._first_bucket is not None
        b, last = self._first_bucket, math.floor(stale_before)
        out: list[str] = []
        visits = 0
        while b <= last and len(out) < room and visits < RECONCILE_VISITS_PER_TICK:
            entries = buckets.pop(b, None)
            if entries is None:
                b += 1
                continue
            keep: list[str] = []
            for i, arn in enumerate(entries):
                if len(out) >= room or visits >= RECONCILE_VISITS_PER_TICK:
                    keep += entries[i:]
                    break
                visits += 1
                if bucket_of.get(arn) != b:
                    continue  # entered again, in a later bucket
                tracked = by_arn.get(arn)
                if tracked is None:
                    del bucket_of[arn]  # no longer tracked
                elif tracked.heard_at <= stale_before:
                    del bucket_of[arn]  # entered again once described
                    if arn not in chosen:
                        out.append(arn)
                elif int(tracked.heard_at) == b:
                    keep.append(arn)  # the newest bucket: due within a second
                else:  # heard of since it was entered
                    bucket_of[arn] = int(tracked.heard_at)
                    buckets.setdefault(int(tracked.heard_at), []).append(arn)
            if keep:
                buckets[b] = keep + buckets.get(b, [])
                break
            b += 1
        self._first_bucket = b
        self.due_visits += visits
        out.sort(key=lambda arn: by_arn[arn].heard_at)
        return out

    async def _describe(self, cluster: str, arns: list[str]) -> None:
        async with self._gate:
            await self.calls.describe_bucket.acquire()
            await self._describe_locked(cluster, arns)

    async def _describe_locked(self, cluster: str, arns: list[str]) -> None:
        generation = self.calls.generation
        self.ctx.counters["describe_calls"] += 1
        try:
            response = await self.calls.call("describe_tasks", cluster=cluster, tasks=arns)
        except Exception as exc:
            decision = classify_exception(exc)
            if decision.verdict == Verdict.REFRESH_CREDENTIALS:
                with contextlib.suppress(Exception):
                    await self.calls.refresh(generation)
            log.warning("DescribeTasks for %d tasks on %s failed: %s", len(arns), cluster, decision.reason)
            return
        by_arn = self.ctx.registry.by_arn
        for task in response.get("tasks") or []:
            tracked = by_arn.get(str(task.get("taskArn")))
            if tracked is not None:
                tracked.missing_polls = 0
                self.observe(tracked, task)
        for failure in response.get("failures") or []:
            tracked = by_arn.get(str(failure.get("arn")))
            if tracked is not None and failure.get("reason") == "MISSING":
                self._missing(tracked)

    def _missing(self, tracked: Tracked) -> None:
        tracked.missing_polls += 1
        # Events mode describes a task again only once it is due: make a MISSING one due soon.
        tracked.heard_at = time.monotonic() - self.ctx.settings.reconcile_interval + MISSING_RECHECK_SECONDS
        if tracked.watched:
            if tracked.missing_polls >= MISSING_POLLS_BEFORE_FAIL:
                self.ctx.finish(tracked)  # nothing to report: ECS no longer knows the task it was stopping
        elif tracked.state is TryState.ADOPTED:
            arn = tracked.arn or ""
            self.ctx.finish(tracked)
            self.ctx.emit(
                m.AdoptionFailed(
                    tracked.key, arn, f"ECS does not know this task on cluster {tracked.cluster!r}"
                )
            )
        elif tracked.missing_polls >= MISSING_POLLS_BEFORE_FAIL:
            arn = tracked.arn or ""
            self.ctx.finish(tracked)
            reason = f"ECS no longer knows task {arn} on cluster {tracked.cluster!r} (DescribeTasks: MISSING)"
            self.ctx.emit(m.StateChanged(tracked.key, arn, TaskStatus(Phase.FAILED, reason)))

    def observe(self, tracked: Tracked, task: Mapping[str, Any]) -> None:
        version = task.get("version")
        if type(version) is int:
            if version < tracked.version:
                return  # an older view (an event overtaken, or a lagging read): never move backwards
            tracked.version = version
        tracked.heard_at = time.monotonic()
        status = task_status(task, self.ctx.settings.container_name)
        if tracked.watched:
            if task.get("lastStatus") == "STOPPED":
                self.ctx.finish(tracked)
            return
        if status.phase == tracked.phase:
            return
        tracked.phase = status.phase
        if not status.phase.is_terminal:
            self._progress(tracked, status.phase)
            if status.phase != Phase.RUNNING:
                return  # PENDING and STOPPING change nothing in the executor; not sending them halves results
        else:
            # A try with a fallback target not yet used is relaunched there when Spot interrupts it.
            spot = self.ctx.settings.relaunch_on_spot_interruption or (
                tracked.fallback is not None and tracked.fallback_reason is None
            )
            decision = classify_stopped(status, relaunch_spot=spot)
            if decision is not None and decision.kind == FailureKind.SPOT:
                self.ctx.counters["spot_interruptions"] += 1
            if decision is not None and decision.verdict == Verdict.RELAUNCH and self._may_relaunch(tracked):
                self.ctx.registry.untrack_arn(tracked)
                tracked.phase = None
                tracked.launch_future = self.ctx.spawn(self._relaunch(tracked, decision))
                return
            if decision is not None and decision.verdict in (Verdict.FAIL, Verdict.RELAUNCH):
                status = TaskStatus(
                    Phase.FAILED, decision.reason, status.exit_code, status.stop_code, status.task_stopped
                )
            self.ctx.reported(tracked, status.task_stopped)
        arn = str(task.get("taskArn"))
        if status.phase == Phase.FAILED and status.exit_code not in (None, 0):
            # A crash: the last container lines usually say why. Fetched off the loop, bounded.
            self.ctx.spawn(self._report_crash(tracked, arn, str(task.get("taskDefinitionArn") or ""), status))
            return
        self.ctx.emit(m.StateChanged(tracked.key, arn, status))

    def _progress(self, tracked: Tracked, phase: Phase) -> None:
        if tracked.stopping:
            return
        if phase == Phase.RUNNING:
            tracked.source = None  # a task that ran is never relaunched; free the workload JSON
            tracked.move(TryState.RUNNING)
        elif phase == Phase.PENDING and tracked.state is TryState.ADOPTED:
            tracked.move(TryState.PENDING)

    def _may_relaunch(self, tracked: Tracked) -> bool:
        # A try we saw RUNNING is never relaunched (its source is gone): Airflow's Execution API refuses to
        # start a try that is already running (409 invalid_state), Spot interruption included.
        return tracked.source is not None and not tracked.stopping and tracked.state is not TryState.RUNNING

    async def _report_crash(
        self, tracked: Tracked, arn: str, task_definition_arn: str, status: TaskStatus
    ) -> None:
        lines: list[str] = []
        if self._crash_lines is not None:
            try:
                lines = await asyncio.wait_for(
                    asyncio.to_thread(self._crash_lines, arn, task_definition_arn), CRASH_LOG_TIMEOUT
                )
            except Exception as exc:  # logs are a bonus; never delay or lose the failure
                log.debug("Could not read the last log lines of %s: %s", arn, exc)
        if lines:
            tail = " | ".join(line.strip()[:300] for line in lines[-CRASH_LOG_LINES:])
            status = TaskStatus(
                status.phase, f"{status.reason}; last log lines: {tail}", status.exit_code, status.stop_code
            )
        self.ctx.emit(m.StateChanged(tracked.key, arn, status))
