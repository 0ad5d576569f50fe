"""Stopping: revoked tries, unknown RunTask outcomes settled, every task stopped on terminate()."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

from ecs_executor.aws.clients import classify_exception, may_have_been_applied
from ecs_executor.core.lifecycle import Tracked, TryState
from ecs_executor.core.triage import Verdict
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.context import Context
from ecs_executor.request.ecs_rules import MAX_STOP_REASON

log = logging.getLogger(__name__)


class Stopper:
    def __init__(self, ctx: Context, calls: EcsCalls):
        self.ctx = ctx
        self.calls = calls

    def revoke_key(self, key: Hashable, reason: str) -> None:
        """Airflow gave up on this try: its current ECS task and any earlier queueing's still running."""
        registry = self.ctx.registry
        for earlier in list(registry.superseded.get(key, ())):
            self.revoke(earlier, reason)
        current = registry.by_key.get(key)
        if current is not None:
            self.revoke(current, reason)

    def revoke(self, tracked: Tracked, reason: str) -> None:
        """Forget the try at once; stop its ECS task if it has one (a launch in flight settles itself)."""
        if tracked.live or tracked.state is TryState.SUPERSEDED:
            tracked.move(TryState.STOPPING)
        self.ctx.registry.forget(tracked)
        self.ctx.capacity_waiting.discard(tracked.key)
        if tracked.arn:
            self.ctx.spawn(self.stop(tracked.cluster, tracked.arn, reason))

    async def stop(self, cluster: str, arn: str, reason: str) -> None:
        """Paced and persistent (``EcsCalls.insist``): a mass stop must not give up on throttles."""
        try:
            answer = await self.calls.insist(
                "stop_task",
                lambda exc: classify_exception(exc).verdict == Verdict.FAIL,
                cluster=cluster,
                task=arn,
                reason=reason[:MAX_STOP_REASON],
            )
        except Exception as exc:
            log.warning("StopTask %s failed: %s", arn, classify_exception(exc).reason)
            return
        if answer is None:
            log.warning("StopTask %s kept failing; the ECS task may still be running", arn)

    async def settle(self, tracked: Tracked) -> None:
        """Resolve an unknown RunTask outcome: the same clientToken returns the task if one was started
        (and starts it otherwise), so whatever comes back is stopped. No orphan is left running."""
        if tracked.kwargs is None:
            return

        def nothing_started(exc: BaseException) -> bool:
            return not may_have_been_applied(exc) and classify_exception(exc).verdict == Verdict.FAIL

        try:
            response = await self.calls.insist("run_task", nothing_started, **tracked.kwargs)
        except Exception:
            return
        if response is None:
            log.warning(
                "Could not settle RunTask for %s after revoke; an ECS task may be left", tracked.identity
            )
            return
        for task in response.get("tasks") or []:
            await self.stop(tracked.cluster, str(task["taskArn"]), "Airflow revoked the task")

    async def stop_all(self, reason: str) -> None:
        """terminate(): every tracked task, and every superseded one still running, each on its own
        cluster, concurrently."""
        registry = self.ctx.registry
        everything = list(registry.by_key.values())
        everything += [tracked for earlier in registry.superseded.values() for tracked in earlier]
        targets = [(tracked.cluster, tracked.arn) for tracked in everything if tracked.arn]
        for tracked in everything:
            if tracked.live or tracked.state is TryState.SUPERSEDED:
                tracked.move(TryState.STOPPING)
        await asyncio.gather(*(self.stop(c, arn, reason) for c, arn in targets), return_exceptions=True)
