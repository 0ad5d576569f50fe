"""Airflow ``ExecuteTask`` workloads built without a database, as the scheduler hands them to executors."""

from __future__ import annotations

import uuid
from typing import Any

# A realistic JWT-sized token: the workload JSON ends up in every RunTask's container command.
TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 300 + ".signature-0123456789abcdef"


def make_workload(task_id: str, *, dag_id: str = "bench_dag", run_id: str = "bench_run") -> Any:
    from airflow.executors.workloads import BundleInfo, ExecuteTask, TaskInstanceDTO

    ti = TaskInstanceDTO(
        id=uuid.uuid4(),
        task_id=task_id,
        dag_id=dag_id,
        run_id=run_id,
        try_number=1,
        map_index=-1,
        dag_version_id=uuid.uuid4(),
        pool_slots=1,
        priority_weight=1,
        executor_config=None,
    )
    return ExecuteTask(
        ti=ti,
        token=TOKEN,
        dag_rel_path="bench_dag.py",
        bundle_info=BundleInfo(name="dags-folder"),
        log_path=f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt=1.log",
    )
