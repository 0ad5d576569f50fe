"""What the scheduler hands the executor, turned into what the engine launches.

Runs on the scheduler thread, once per workload: only cheap work here (its cost: docs/benchmarks.md);
RunTask arguments are built on the engine thread.
"""

from __future__ import annotations

import heapq
from typing import Any

from airflow.executors.base_executor import BaseExecutor
from airflow.executors.workloads import ExecuteCallback, ExecuteTask

from ecs_executor import messages as m
from ecs_executor.request.run_task import TryIdentity, new_launch_id

# Workloads admitted per heartbeat at most, whatever the RunTask bucket allows.
MAX_ADMITTED_PER_HEARTBEAT = 250


class AdmittingExecutor(BaseExecutor):
    """Admission per heartbeat: what ECS will accept within about a second, at most
    MAX_ADMITTED_PER_HEARTBEAT; the rest stays in queued_tasks, still queued for the scheduler and offered
    again, highest priority first.

    The order is the base class's (highest ``priority_weight`` first, then queueing order), kept in a heap
    as tasks are queued, so a heartbeat looks only at what it takes (and at entries of tasks no longer
    queued), not at the whole backlog."""

    _engine: Any  # the engine, once started
    _admit: int | None = None  # inside trigger_tasks: workloads taken this heartbeat
    _order: list[tuple[int, int, Any, Any]]  # (-priority_weight, queued number, key, workload)
    _queued_count: int = 0

    def queue_workload(self, workload: Any, session: Any) -> None:
        super().queue_workload(workload, session)
        if isinstance(workload, ExecuteTask):
            self._push(workload.ti.key, workload)

    def _push(self, key: Any, workload: Any) -> None:
        if not hasattr(self, "_order"):
            self._order = []
        self._queued_count += 1
        heapq.heappush(self._order, (-workload.ti.priority_weight, self._queued_count, key, workload))

    def _admission(self) -> int:
        allowance = self._engine.launch_allowance() if self._engine is not None else 1
        return min(MAX_ADMITTED_PER_HEARTBEAT, max(1, allowance))

    def trigger_tasks(self, open_slots: int) -> None:
        # The base class lists (and orders) only as many queued workloads as it is offered slots for.
        self._admit = min(open_slots, self._admission())
        try:
            super().trigger_tasks(self._admit)
        finally:
            self._admit = None

    def order_queued_tasks_by_priority(self) -> list[tuple[Any, Any]]:
        """Inside trigger_tasks: the first ``_admit`` in the base class's order, taken off the heap (all of
        them are admitted: ``_process_workloads`` takes ``_admit``)."""
        if self._admit is None:
            return super().order_queued_tasks_by_priority()
        order, queued = getattr(self, "_order", []), self.queued_tasks
        # Order them all again when tasks were queued other than through queue_workload, or when entries
        # of tasks no longer queued pile up.
        if len(order) < len(queued) or len(order) > 2 * len(queued) + 1000:
            self._order = []
            for key, workload in queued.items():
                self._push(key, workload)
            order = self._order
        room = self._admit - min(len(self.queued_callbacks), self._admit)  # callbacks go first
        out: list[tuple[Any, Any]] = []
        while order and len(out) < room:
            _, _, key, workload = heapq.heappop(order)
            if queued.get(key) is workload:  # else revoked, admitted, or queued again since
                out.append((key, workload))
        return out


def callback_identity(workload: ExecuteCallback) -> TryIdentity:
    """Tags and idempotency tokens for a callback (its log path carries the DAG and run ids)."""
    parts = (workload.log_path or "").split("/")
    dag_id, run_id = (parts[1], parts[2]) if len(parts) >= 4 else ("callback", str(workload.callback.id))
    return TryIdentity(dag_id, f"callback:{workload.display_name}", run_id, 1, -1)


def to_launch(workload: Any, deadline: float) -> tuple[Any, m.Launch, bool]:
    """The Airflow key, the Launch command, and whether it is a callback (not a task instance)."""
    if isinstance(workload, ExecuteTask):
        key: Any = workload.ti.key
        identity = TryIdentity.from_key(key)
        executor_config, queue, is_callback = workload.ti.executor_config, workload.ti.queue, False
    elif isinstance(workload, ExecuteCallback):
        key = workload.key
        identity = callback_identity(workload)
        executor_config, queue, is_callback = None, None, True
    else:
        raise ValueError(f"EcsExecutor cannot run {type(workload).__name__} workloads")
    launch = m.Launch(
        key,
        identity,
        workload.model_dump_json(),
        executor_config,
        deadline,
        launch_id=new_launch_id(),
        queue=queue,
    )
    return key, launch, is_callback
