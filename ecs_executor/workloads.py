"""What the scheduler hands the executor, turned into what the engine launches.

Runs on the scheduler thread, once per workload: only cheap work here (~5 µs); RunTask arguments are
built on the engine thread.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from airflow.executors.workloads import ExecuteCallback, ExecuteTask

from ecs_executor import messages as m
from ecs_executor.run_task import TaskIdentity, new_launch_id


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
