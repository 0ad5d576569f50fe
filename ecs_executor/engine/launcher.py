"""Launching: one RunTask per queued workload, paced by the RunTask bucket, retried and relaunched by the
triage verdicts and the relaunch policy."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ecs_executor import messages as m
from ecs_executor.aws.clients import classify_exception, is_throttle, may_have_been_applied
from ecs_executor.core.fallback import (
    capacity_switch_reason,
    launched_on,
    seconds_until_due,
    spot_switch_reason,
    switch,
)
from ecs_executor.core.lifecycle import Tracked, TryState
from ecs_executor.core.relaunch import FailureKind, RelaunchDecision
from ecs_executor.core.triage import Decision, Verdict, classify_run_task_failure
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.clusters import ClusterDefaults
from ecs_executor.engine.context import Context, wait_while_live
from ecs_executor.engine.data_keys import DataKeys
from ecs_executor.engine.definitions import Definitions, DefinitionUnavailable
from ecs_executor.engine.stopper import Stopper
from ecs_executor.request.layering import LAUNCH_TYPE, STRATEGY, fill_launch_target
from ecs_executor.request.run_task import (
    InvalidTaskConfig,
    NoQueueProfile,
    RunTaskBuilder,
    workload_command,
)
from ecs_executor.request.task_settings import Derivation

log = logging.getLogger(__name__)

Observe = Callable[[Tracked, Mapping[str, Any]], None]


class Launcher:
    def __init__(
        self,
        ctx: Context,
        calls: EcsCalls,
        clusters: ClusterDefaults,
        builder: RunTaskBuilder,
        stopper: Stopper,
        *,
        definitions: Definitions | None = None,
        data_keys: DataKeys | None = None,
    ):
        self.ctx = ctx
        self.definitions = definitions or Definitions(ctx, calls)
        self.data_keys = data_keys  # workload_kms_key set: commands carry the sealed workload
        self.calls = calls
        self.clusters = clusters
        self.builder = builder
        self.stopper = stopper
        self.observe: Observe = lambda tracked, task: None  # the tracker's, wired by the loop

    def start(self, launch: m.Launch) -> None:
        old = self.ctx.registry.by_key.get(launch.key)
        if old is not None:
            self._replaced(old)
        cluster = self.ctx.settings.cluster
        tracked = Tracked(
            launch.key, launch.identity, cluster, deadline=launch.deadline, attempt=launch.attempt
        )
        tracked.source = launch
        self.ctx.registry.add(tracked)
        tracked.launch_future = self.ctx.spawn(self.launch(tracked))

    def _replaced(self, old: Tracked) -> None:
        """Airflow queued this try again while we still tracked the previous queueing.

        Usually the previous container has just exited (a deferral, a reschedule poke) and tracking has
        not seen it yet: its ECS task is watched until it stops, reporting nothing (and stopped if Airflow
        revokes the try or the scheduler terminates). One still being launched is revoked (its launch
        stops, and a task it may have started is stopped): Airflow has given up on it."""
        if old.state in (TryState.QUEUED, TryState.LAUNCHING, TryState.RELAUNCHING, TryState.PENDING):
            self.stopper.revoke(old, "Airflow queued this try again")
        elif old.arn and old.state in (TryState.RUNNING, TryState.ADOPTED):
            self.ctx.registry.watch(old, TryState.SUPERSEDED)
        else:
            if old.live:
                old.move(TryState.STOPPING)
            self.ctx.registry.forget(old)

    async def launch(self, tracked: Tracked) -> None:
        retries = 0
        outcome_unknown = False  # the last RunTask may have started a task we never heard of
        own_client: int | None = None  # the client generation this launch itself had rebuilt
        try:
            if not tracked.stopping:
                tracked.move(TryState.LAUNCHING)
            while not tracked.stopping:
                if tracked.kwargs is None and not await self._build(tracked):
                    return
                assert tracked.kwargs is not None
                if tracked.deadline is not None and time.monotonic() > tracked.deadline:
                    await self._expire(tracked, outcome_unknown)
                    return
                await self.calls.run_bucket.acquire()
                if tracked.stopping:
                    break
                generation = self.calls.generation
                self.ctx.counters["run_task_calls"] += 1
                throttled = False
                try:
                    response = await self.calls.call("run_task", **tracked.kwargs)
                except Exception as exc:
                    decision = classify_exception(exc)
                    outcome_unknown = may_have_been_applied(exc)
                    throttled = is_throttle(exc)
                else:
                    outcome_unknown = False
                    tasks = response.get("tasks") or []
                    if tasks:
                        self._launched(tracked, tasks[0])
                        return
                    decision = _failures_decision(response.get("failures") or [])
                if decision.verdict in (Verdict.RETRY, Verdict.REFRESH_CREDENTIALS):
                    if decision.verdict == Verdict.REFRESH_CREDENTIALS:
                        own_client = await self._refresh(tracked, generation, decision, own_client)
                        if own_client is None:
                            return
                    retries += 1
                    await self._before_retry(tracked, retries, throttled, decision)
                    continue
                if decision.verdict == Verdict.RELAUNCH:
                    if await self.wait_for_relaunch(tracked, decision):
                        continue
                    return
                self.ctx.fail_launch(tracked, decision.reason)
                return
            if outcome_unknown:  # revoked while a RunTask's fate was unknown
                await self.stopper.settle(tracked)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not kill the engine; fail this try visibly
            log.exception("Unexpected error launching %s", tracked.identity)
            self.ctx.fail_launch(
                tracked, f"internal error while launching: {type(exc).__name__}: {exc}", "internal"
            )

    async def _expire(self, tracked: Tracked, outcome_unknown: bool) -> None:
        if outcome_unknown:
            await self.stopper.settle(tracked)
        reason = "the task was not started before its Airflow token expired ([scheduler] task_queued_timeout)"
        self.ctx.fail_launch(tracked, reason, "expired")

    async def _refresh(
        self, tracked: Tracked, generation: int, decision: Decision, own_client: int | None
    ) -> int | None:
        """Rebuild the client and retry; None (and the try failed) once even a client this launch had
        rebuilt is rejected after a minute of rejections. Every launch gets one attempt on a fresh client,
        so a fixed credential source heals the next launch without a restart."""
        self.calls.credentials_rejected()
        if own_client == generation and self.calls.credentials_hopeless():
            self.ctx.fail_launch(
                tracked,
                f"{decision.reason}; still rejected after the credentials were refreshed: fix the credential "
                f"source (Airflow connection {self.ctx.settings.conn_id!r}, or the scheduler's role or "
                "environment) so that it may call ecs:RunTask",
                "credentials",
            )
            return None
        try:
            await self.calls.refresh(generation)
        except Exception as exc:
            log.warning("Could not rebuild the ECS client: %s", classify_exception(exc).reason)
        return self.calls.generation

    async def _before_retry(
        self, tracked: Tracked, retries: int, throttled: bool, decision: Decision
    ) -> None:
        self.ctx.counters["run_task_retries"] += 1
        if retries in (3, 10) or retries % 50 == 0:
            self.ctx.emit(
                m.EngineNote("warning", f"RunTask for {tracked.identity} still retrying: {decision.reason}")
            )
        # A throttle already slowed the bucket (EcsCalls.on_cluster_modify_attempt): queue again at once.
        if not throttled:
            await asyncio.sleep(self.ctx.policy.retry_delay(retries, self.ctx.rng))

    async def _build(self, tracked: Tracked) -> bool:
        """RunTask arguments for this attempt; a bad executor_config or queue fails only this try."""
        source: m.Launch | None = tracked.source
        if source is None:
            self.ctx.fail_launch(tracked, "internal error: nothing to launch the task from", "internal")
            return False
        command = await self._command(tracked, source.workload_json)
        if command is None:
            return False
        try:
            kwargs = self.builder.build(
                tracked.identity,
                command,
                source.executor_config,
                launch_id=source.launch_id,
                attempt=tracked.attempt,
                queue=source.queue,
            )
            derivation = self.builder.derivation(source.executor_config, source.queue)
        except NoQueueProfile as exc:
            self.ctx.fail_launch(tracked, f"not launched: {exc}", "no_queue_profile")
            return False
        except InvalidTaskConfig as exc:
            self.ctx.fail_launch(tracked, f"not launched: {exc}", "invalid_config")
            return False
        if derivation is not None and not await self._derive(tracked, kwargs, derivation):
            return False
        tracked.cluster = str(kwargs.get("cluster") or self.ctx.settings.cluster)
        if LAUNCH_TYPE not in kwargs and STRATEGY not in kwargs:
            default_strategy = await self.clusters.strategy(tracked.cluster)
            kwargs = fill_launch_target(kwargs, default_strategy)
            try:  # the typed keys' Fargate/EC2 rules, now that the target is known
                self.builder.check_target(kwargs, source.executor_config, source.queue, default_strategy)
            except InvalidTaskConfig as exc:
                self.ctx.fail_launch(tracked, f"not launched: {exc}", "invalid_config")
                return False
        tracked.fallback = self.builder.fallback(source.executor_config, source.queue)
        if tracked.fallback is not None and tracked.fallback_reason is not None:
            kwargs = switch(kwargs, tracked.fallback)  # once moved, every later attempt stays there
        tracked.kwargs = kwargs
        return True

    async def _derive(self, tracked: Tracked, kwargs: dict[str, Any], derivation: Derivation) -> bool:
        """Name the derived task definition (full ARN) instead of the base one. The try waits in LAUNCHING
        without holding up other launches; a revoke or an expired token ends its wait (not the
        registration, which others may wait on)."""
        resolving = asyncio.ensure_future(self.definitions.resolve(str(kwargs["taskDefinition"]), derivation))
        try:
            if not await wait_while_live(tracked, resolving, expire=self._expire):
                return False
            kwargs["taskDefinition"] = resolving.result()
        except DefinitionUnavailable as exc:
            self.ctx.fail_launch(tracked, str(exc), "task_definition")
            return False
        return True

    async def _command(self, tracked: Tracked, workload_json: str) -> list[str] | None:
        """The workload, or (workload_kms_key) the workload sealed for this try (engine/data_keys.py)."""
        if self.data_keys is None:
            return workload_command(workload_json)
        return await self.data_keys.command(tracked, workload_json, self._expire)

    async def wait_for_relaunch(self, tracked: Tracked, decision: Decision) -> bool:
        """Wait and prepare the next attempt; False (and the try failed) when none is allowed."""
        if tracked.stopping:  # revoked while the last attempt was answered: nothing to relaunch
            return False
        if tracked.source is None:
            self.ctx.fail_launch(tracked, decision.reason)
            return False
        now = time.monotonic()
        if decision.kind == FailureKind.CAPACITY and tracked.capacity_since is None:
            tracked.capacity_since = now
        capacity = decision.kind == FailureKind.CAPACITY
        reason, verdict = self._fall_back(tracked, decision, now)
        if verdict is None:
            verdict = self._next_attempt(tracked, decision, now)
        if not verdict.allowed:
            self.ctx.fail_launch(tracked, f"{decision.reason} ({verdict.why_not})", verdict.kind)
            return False
        self.ctx.counters["relaunches"] += 1
        if capacity:
            tracked.capacity_relaunches += 1
            self.ctx.counters["relaunches_capacity"] += 1
            self.ctx.capacity_waiting.add(tracked.key)
        tracked.move(TryState.RELAUNCHING)
        self.ctx.emit(m.Relaunching(tracked.key, reason, tracked.attempt + 1, verdict.delay))
        await asyncio.sleep(verdict.delay)
        if tracked.stopping:
            return False
        tracked.attempt += 1
        tracked.kwargs = None  # rebuilt for the new attempt (new clientToken)
        tracked.move(TryState.LAUNCHING)
        return True

    def _next_attempt(self, tracked: Tracked, decision: Decision, now: float) -> RelaunchDecision:
        capacity = decision.kind == FailureKind.CAPACITY
        verdict = self.ctx.policy.decide(
            decision.kind,
            # Capacity waits are bounded by time: they do not spend max_run_task_attempts.
            tracked.attempt if capacity else tracked.attempt - tracked.capacity_relaunches,
            now=now,
            capacity_since=tracked.capacity_since,
            deadline=tracked.deadline,
            rng=self.ctx.rng,
        )
        if verdict.allowed and capacity and tracked.fallback is not None and tracked.fallback_reason is None:
            # Wake up when the fallback falls due, not up to a backoff later.
            due = seconds_until_due(tracked.fallback, now=now, capacity_since=tracked.capacity_since)
            if due is not None and due < verdict.delay:
                verdict = RelaunchDecision(True, due)
        return verdict

    def _fall_back(
        self, tracked: Tracked, decision: Decision, now: float
    ) -> tuple[str, RelaunchDecision | None]:
        """Move the try to its fallback target when that falls due: the next attempt goes there at once."""
        fallback = tracked.fallback
        why = None
        if fallback is not None and tracked.fallback_reason is None:
            if decision.kind == FailureKind.SPOT:
                why = spot_switch_reason()
            elif decision.kind == FailureKind.CAPACITY:
                preferred = tracked.kwargs or {}
                why = capacity_switch_reason(
                    fallback, preferred, now=now, capacity_since=tracked.capacity_since
                )
        if fallback is None or why is None:
            return decision.reason, None
        tracked.fallback_reason = why
        self.ctx.counters["fallbacks"] += 1
        log.info("%s moves to its fallback launch target %s: %s", tracked.identity, fallback.label, why)
        return f"{decision.reason}; next attempt on the fallback target {fallback.label} ({why})", (
            RelaunchDecision(True, 0.0)
        )

    async def relaunch_after_stop(self, tracked: Tracked, decision: Decision) -> None:
        try:
            if not await self.wait_for_relaunch(tracked, decision):
                return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not vanish in a background asyncio task; fail this try visibly
            log.exception("Unexpected error relaunching %s", tracked.identity)
            self.ctx.fail_launch(
                tracked, f"internal error while relaunching: {type(exc).__name__}: {exc}", "internal"
            )
            return
        await self.launch(tracked)

    def _launched(self, tracked: Tracked, task: Mapping[str, Any]) -> None:
        arn = str(task["taskArn"])
        if tracked.stopping:  # revoked while RunTask was in flight: do not leave an orphan
            self.ctx.spawn(self.stopper.stop(tracked.cluster, arn, "Airflow revoked the task"))
            return
        self.ctx.registry.track_arn(tracked, arn)
        self.ctx.capacity_waiting.discard(tracked.key)
        tracked.launch_future = None  # finished; do not keep its coroutine alive while the try is tracked
        tracked.kwargs = None  # a relaunch rebuilds them from tracked.source
        tracked.move(TryState.PENDING)
        on_fallback = launched_on(task, tracked.fallback_reason) if tracked.fallback_reason else None
        self.ctx.emit(m.Launched(tracked.key, arn, tracked.attempt, on_fallback))
        self.observe(tracked, task)


def _failures_decision(failures: list[Any]) -> Decision:
    if not failures:
        return Decision(Verdict.FAIL, "RunTask returned neither a task nor a failure")
    first = failures[0]
    return classify_run_task_failure(str(first.get("reason", "")), first.get("detail"))
