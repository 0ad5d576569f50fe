"""Each cluster's default capacity provider strategy, read once (DescribeClusters) and kept.

A request that names neither a launch type nor a strategy runs on that default; without one we choose
Fargate (``layering.fill_launch_target``). Clusters named by queue profiles are read at start-up,
others (a task's ``executor_config``) on first use.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ecs_executor.aws.clients import classify_exception
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.request.ecs_rules import MAX_DESCRIBE_CLUSTERS

log = logging.getLogger(__name__)

# After a failed read, tasks use the fallback for this long before the cluster is read again.
RETRY_READ_SECONDS = 30.0


class ClusterDefaults:
    def __init__(self, calls: EcsCalls):
        self._calls = calls
        self._known: dict[str, asyncio.Future[list[Any] | None]] = {}
        self._failed_at: dict[str, float] = {}

    async def prime(self, clusters: list[str]) -> None:
        """Read these clusters in as few calls as ECS allows."""
        todo = [c for c in dict.fromkeys(clusters) if c not in self._known]
        loop = asyncio.get_running_loop()
        for name in todo:
            self._known[name] = loop.create_future()
        for i in range(0, len(todo), MAX_DESCRIBE_CLUSTERS):
            await self._describe(todo[i : i + MAX_DESCRIBE_CLUSTERS])

    async def strategy(self, cluster: str) -> list[Any] | None:
        failed_at = self._failed_at.get(cluster)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_READ_SECONDS:
            return None
        if cluster not in self._known:
            await self.prime([cluster])
        future = self._known.get(cluster)
        if future is None:  # the read just failed (and was forgotten, to be retried later)
            return None
        return await asyncio.shield(future)

    def known(self) -> dict[str, list[Any] | None]:
        """What was read so far (for the start-up log line)."""
        return {name: f.result() for name, f in self._known.items() if f.done() and not f.exception()}

    async def _describe(self, names: list[str]) -> None:
        found: dict[str, list[Any] | None] = {}
        failed = False
        try:
            answer = await self._calls.call("describe_clusters", clusters=names)
            for cluster in answer.get("clusters") or []:
                strategy = cluster.get("defaultCapacityProviderStrategy") or None
                found[str(cluster.get("clusterName"))] = strategy
                found[str(cluster.get("clusterArn"))] = strategy
        except Exception as exc:
            failed = True
            # Not fatal: the task then names Fargate itself, as before this was read.
            log.warning(
                "Could not read the default capacity provider strategy of %s (%s); tasks without a "
                "launch type or strategy of their own will use launch type FARGATE",
                ", ".join(names),
                classify_exception(exc).reason,
            )
        for name in names:
            future = self._known[name]
            if not future.done():
                future.set_result(found.get(name))
            if failed:
                del self._known[name]
                self._failed_at[name] = time.monotonic()
            else:
                self._failed_at.pop(name, None)
