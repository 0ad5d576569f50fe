"""What the scheduler hands the executor, turned into what the engine launches.

Runs on the scheduler thread, once per workload: only cheap work here (~5 µs); RunTask arguments are
built on the engine thread.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from airflow.executors.base_executor import BaseExecutor
from airflow.executors.workloads import ExecuteCallback, ExecuteTask

from ecs_executor import messages as m
from ecs_executor.run_task import TaskIdentity, new_launch_id

# Workloads admitted per heartbeat at most, whatever the RunTask bucket allows.
MAX_ADMITTED_PER_HEARTBEAT = 250


class AdmittingExecutor(BaseExecutor):
    """Admission per heartbeat: what ECS will accept within about a second, at most
    MAX_ADMITTED_PER_HEARTBEAT; the rest stays in queued_tasks, still queued for the scheduler and offered
    again, highest priority first."""

    _engine: Any  # the engine, once started
    _admit: int | None = None  # inside trigger_tasks: workloads taken this heartbeat

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
        """The base class's order (highest priority_weight first, ties in queueing order); inside
        trigger_tasks only the first ``_admit``, instead of sorting a backlog every heartbeat."""
        if self._admit is None:
            return super().order_queued_tasks_by_priority()
        return heapq.nlargest(
            self._admit, self.queued_tasks.items(), key=lambda item: item[1].ti.priority_weight
        )


def callback_identity(workload: ExecuteCallback) -> TaskIdentity:
    """Tags and idempotency tokens for a callback (its log path carries the DAG and run ids)."""
    parts = (workload.log_path or "").split("/")
    dag_id, run_id = (parts[1], parts[2]) if len(parts) >= 4 else ("callback", str(workload.callback.id))
    return TaskIdentity(dag_id, f"callback:{workload.display_name}", run_id, 1, -1)


def to_launch(workload: Any, deadline: float) -> tuple[Any, m.Launch, bool]:
    """The Airflow key, the Launch command, and whether it is a callback (not a task instance)."""
    if isinstance(workload, ExecuteTask):
        key: Any = workload.ti.key
        identity = TaskIdentity.from_key(key)
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


class RetainingDeque(deque):  # type: ignore[type-arg]
    """Works around Airflow 3.3.2 losing every task event log line.

    The scheduler drains ``_task_event_logs`` with ``popleft()`` inside a generator handed to
    ``session.bulk_save_objects``; SQLAlchemy keeps only weak references to the objects, so each ``Log``
    is garbage-collected before the INSERT and the batch fails ("NOT NULL constraint failed: log.event").
    Holding the drained objects until the next append (the next heartbeat, after the save) fixes it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._drained: list[Any] = []

    def popleft(self) -> Any:
        item = super().popleft()
        self._drained.append(item)
        return item

    def append(self, item: Any) -> None:
        if self._drained and not self:
            self._drained = []
        super().append(item)
