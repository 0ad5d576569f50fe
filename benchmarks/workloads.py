"""Airflow ``ExecuteTask`` workloads built without a database, as the scheduler hands them to executors.

tests/conftest.py builds its workloads here too. Airflow is imported only inside the functions, so that
importers (conftest.py) can set AIRFLOW_HOME and config first.
"""

from __future__ import annotations

import uuid
from typing import Any

# A realistic JWT-sized token: the workload JSON ends up in every RunTask's container command.
TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 300 + ".signature-0123456789abcdef"


def build_workload(
    task_id: str,
    *,
    dag_id: str,
    run_id: str,
    token: str,
    dag_rel_path: str,
    log_path: str | None,
    try_number: int = 1,
    map_index: int = -1,
    executor_config: dict[str, Any] | None = None,
    queue: str | None = None,
) -> Any:
    """An ``ExecuteTask`` for one try of a task, with fresh ids."""
    from airflow.executors.workloads import BundleInfo, ExecuteTask, TaskInstanceDTO

    ti = TaskInstanceDTO(
        id=uuid.uuid4(),
        task_id=task_id,
        dag_id=dag_id,
        run_id=run_id,
        try_number=try_number,
        map_index=map_index,
        dag_version_id=uuid.uuid4(),
        pool_slots=1,
        priority_weight=1,
        executor_config=executor_config,
        **({"queue": queue} if queue is not None else {}),
    )
    return ExecuteTask(
        ti=ti,
        token=token,
        dag_rel_path=dag_rel_path,
        bundle_info=BundleInfo(name="dags-folder"),
        log_path=log_path,
    )


def make_workload(task_id: str, *, dag_id: str = "bench_dag", run_id: str = "bench_run") -> Any:
    """A benchmark workload: first try, realistic token and log path (both add to RunTask's size)."""
    return build_workload(
        task_id,
        dag_id=dag_id,
        run_id=run_id,
        token=TOKEN,
        dag_rel_path="bench_dag.py",
        log_path=f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt=1.log",
    )
