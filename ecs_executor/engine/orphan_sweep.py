"""The orphan sweep (``orphan_sweep``): every ``orphan_sweep_interval``, ListTasks by our startedBy on each
cluster we launch into, DescribeTasks (with tags) for the tasks this scheduler does not track, one read
of Airflow's DB per 100 of them in a worker thread, then StopTask for those nobody has expected for
``orphan_grace_seconds`` (``ecs_executor.core.orphans`` decides). A sweep whose DB read fails stops nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from ecs_executor.aws.clients import classify_exception
from ecs_executor.core.orphans import (
    Candidate,
    GraceClock,
    TiKey,
    TiRow,
    candidate,
    decide,
    describe_tags,
    stop_reason,
)
from ecs_executor.core.triage import Verdict
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.context import Context, every
from ecs_executor.request.ecs_rules import MAX_DESCRIBE_TASKS, MAX_LIST_RESULTS

log = logging.getLogger(__name__)

# Task instances read per DB query: one DescribeTasks answer's worth.
DB_BATCH = MAX_DESCRIBE_TASKS

SessionFactory = Callable[[], Any]  # a context manager yielding an Airflow (SQLAlchemy) session


class TaskInstanceReader:
    """The task instances some ECS tasks' tags name, from Airflow's metadata DB. Raises when it cannot."""

    def __init__(self, session_factory: SessionFactory | None = None):
        self._session_factory = session_factory

    def read(self, keys: Sequence[TiKey]) -> dict[TiKey, TiRow]:
        from airflow.jobs.job import Job, health_check_threshold
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.models.taskinstancekey import TaskInstanceKey
        from sqlalchemy import select

        threshold = float(health_check_threshold("SchedulerJob", 0))  # [scheduler] ..._health_check_threshold
        rows: dict[TiKey, TiRow] = {}
        unique = list(dict.fromkeys(keys))
        factory = self._session_factory or _airflow_session
        with factory() as session:
            for i in range(0, len(unique), DB_BATCH):
                batch = [TaskInstanceKey(d, t, r, 0, m) for d, t, r, m in unique[i : i + DB_BATCH]]
                condition = TI.filter_for_tis(batch)
                if condition is None:
                    continue
                query = (
                    select(TI.dag_id, TI.task_id, TI.run_id, TI.map_index, TI.state, TI.try_number)
                    .add_columns(TI.external_executor_id, Job.id, Job.state, Job.latest_heartbeat)
                    .outerjoin(Job, Job.id == TI.queued_by_job_id)
                    .where(condition)
                )
                now = datetime.now(timezone.utc)
                for r in session.execute(query).all():
                    # Airflow's Job.is_alive for a scheduler: running, heartbeat within the threshold.
                    alive = (
                        getattr(r[8], "value", r[8]) == "running"
                        and r[9] is not None
                        and _age(now, r[9]) < threshold
                    )
                    state = None if r[4] is None else str(getattr(r[4], "value", r[4]))
                    row = TiRow(state, int(r[5]), r[6], int(r[7]) if alive else None)
                    rows[(r[0], r[1], r[2], int(r[3]))] = row
        return rows


def _age(now: Any, then: Any) -> float:
    if then.tzinfo is None:  # SQLite without Airflow's UtcDateTime conversion: naive UTC
        now = now.replace(tzinfo=None)
    return float((now - then).total_seconds())


def _airflow_session() -> Any:
    from airflow.utils.session import create_session

    return create_session()


class OrphanSweeper:
    def __init__(
        self,
        ctx: Context,
        calls: EcsCalls,
        *,
        started_by: str,
        clusters: Callable[[], Iterable[str]],
        reader: TaskInstanceReader | None = None,
        grace_seconds: float | None = None,
        interval: float | None = None,
        job_id: int | None = None,
    ):
        s = ctx.settings
        self.ctx = ctx
        self.calls = calls
        self.started_by = started_by
        self._clusters = clusters
        self.reader = reader or TaskInstanceReader()
        self.grace = s.orphan_grace_seconds if grace_seconds is None else grace_seconds
        self.interval = s.orphan_sweep_interval if interval is None else interval
        self.job_id = job_id  # this scheduler's job (Airflow sets executor.job_id before start())
        self.clock = GraceClock()
        self._warned: set[str] = set()

    async def run_forever(self) -> None:
        # The first sweep waits one interval: adoption at start-up has then reached the registry.
        await every(self.interval, self.sweep_once, "Orphan sweep")

    async def sweep_once(self) -> list[str]:
        """One sweep over every cluster; returns the ARNs it stopped."""
        found: dict[str, Candidate] = {}
        clusters = list(dict.fromkeys(self._clusters()))
        for cluster in clusters:
            arns = await self._list(cluster)
            untracked = [a for a in arns if a not in self._tracked() and a not in found]
            for i in range(0, len(untracked), MAX_DESCRIBE_TASKS):
                for task in await self._describe(cluster, untracked[i : i + MAX_DESCRIBE_TASKS]):
                    c = candidate(task, cluster, self.ctx.settings.container_name)
                    found[c.arn] = c
        self.clock.keep_only(found)
        keys = [c.key for c in found.values() if c.key is not None and not c.finishing]
        if not keys:
            return []
        try:
            rows = await asyncio.to_thread(self.reader.read, keys)
        except Exception as exc:
            log.warning(
                "Orphan sweep: could not read task instances from Airflow's DB (%s: %s); stopping "
                "nothing this time",
                type(exc).__name__,
                exc,
            )
            return []
        now = time.monotonic()
        due = decide(
            found.values(),
            rows,
            self._tracked(),
            self.clock,
            now=now,
            wall_now=time.time(),
            grace=self.grace,
            own_job=self.job_id,
        )
        stopped = await asyncio.gather(*(self._stop(c, why, now) for c, why in due))
        return [arn for arn in stopped if arn]

    def _tracked(self) -> dict[str, Any]:
        return self.ctx.registry.by_arn

    async def _list(self, cluster: str) -> list[str]:
        """Every task with our startedBy that ECS wants RUNNING (ListTasks' default desiredStatus; ECS
        documents startedBy as a filter to be used alone)."""
        arns: list[str] = []
        token: str | None = None
        while True:
            await self.calls.describe_bucket.acquire()  # ListTasks spends ECS's cluster read bucket
            kwargs: dict[str, Any] = {
                "cluster": cluster,
                "startedBy": self.started_by,
                "maxResults": MAX_LIST_RESULTS,
            }
            if token:
                kwargs["nextToken"] = token
            try:
                page = await self.calls.call("list_tasks", **kwargs)
            except Exception as exc:
                self._warn_once(cluster, "ListTasks", exc)
                return arns
            arns += [str(a) for a in page.get("taskArns") or []]
            token = page.get("nextToken")
            if not token:
                return arns

    async def _describe(self, cluster: str, arns: list[str]) -> list[Any]:
        await self.calls.describe_bucket.acquire()
        self.ctx.counters["describe_calls"] += 1
        try:
            answer = await self.calls.call("describe_tasks", cluster=cluster, tasks=arns, include=["TAGS"])
        except Exception as exc:
            self._warn_once(cluster, "DescribeTasks", exc)
            return []
        return list(answer.get("tasks") or [])

    async def _stop(self, c: Candidate, why: str, now: float) -> str | None:
        if c.arn in self._tracked():  # launched or adopted here since the DB read
            self.clock.forget(c.arn)
            return None
        reason = stop_reason(why, self.grace)
        log.warning(
            "Stopping orphaned ECS task %s on cluster %s (%s): %s; untracked for %.0fs, created %s",
            c.arn,
            c.cluster,
            describe_tags(c),
            why,
            self.clock.unknown_for(c.arn, now),
            f"{time.time() - c.created_at:.0f}s ago" if c.created_at is not None else "at an unknown time",
        )
        try:
            answer = await self.calls.insist(
                "stop_task",
                lambda exc: classify_exception(exc).verdict == Verdict.FAIL,
                cluster=c.cluster,
                task=c.arn,
                reason=reason,
            )
        except Exception as exc:
            log.warning("StopTask %s (orphan) failed: %s", c.arn, classify_exception(exc).reason)
            return None
        if answer is None:
            log.warning("StopTask %s (orphan) kept failing; it may still be running", c.arn)
            return None
        self.clock.forget(c.arn)
        self.ctx.counters["orphans_stopped"] += 1
        return c.arn

    def _warn_once(self, cluster: str, call: str, exc: BaseException) -> None:
        reason = classify_exception(exc).reason
        seen = f"{cluster}|{call}|{reason}"
        level = logging.DEBUG if seen in self._warned else logging.WARNING
        self._warned.add(seen)
        log.log(level, "Orphan sweep: %s on cluster %s failed: %s", call, cluster, reason)
