"""A real Airflow schedules task instances that the local ECS endpoint runs in the worker image.

The scheduler and API server run on this host (SQLite); each task instance becomes an ECS task whose
container is the image, started by podman with the image's entrypoint, the executor's command and
overrides, the DAGs mounted from tests/image/dags and the host network to reach the Execution API.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from ecs_executor.demo.deployment import LocalDeployment
from tests.image.conftest import Image

DAGS = Path(__file__).with_name("dags")


@pytest.fixture
def stack(tmp_path: Path, default_image: Image):
    s = LocalDeployment(tmp_path / "stack", dags_folder=DAGS, worker_image=default_image.tag)
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.timeout(420)
def test_task_instances_run_in_the_image_and_report_success_and_failure(stack: LocalDeployment) -> None:
    stack.start()
    stack.wait_for_dag("image_worker")
    run_id = stack.trigger("image_worker")
    state = stack.wait_for_run("image_worker", run_id, timeout=300)
    rows = {r["task_id"]: r for r in stack.task_rows("image_worker", run_id)}
    states = {k: v["state"] for k, v in rows.items()}
    assert states == {"in_image": "success", "fails": "failed", "crashes": "failed"}, rows
    assert state == "failed"
    arns = {r["external_executor_id"] for r in rows.values()}
    assert len(arns) == 3 and all(":task/airflow-local/" in arn for arn in arns)
    # The crash's exit code came out of the container (dumb-init, entrypoint.sh, podman) to the
    # executor, which wrote the reason into the task's log in the UI.
    with contextlib.closing(sqlite3.connect(stack.db_path)) as db:
        events = db.execute(
            "SELECT extra FROM log WHERE dag_id = 'image_worker' AND task_id = 'crashes' "
            "AND event = 'ECS task failed'"
        ).fetchall()
    assert events and "exited with code 1" in events[0][0], events
    # Both containers ran the image's entrypoint and then Airflow's task runner; their output is the
    # ECS task log (CloudWatch on ECS).
    task_logs = sorted((stack.logs / "tasks").glob("*.log"))
    assert len(task_logs) == 3
    # The task's own log, written in the container to the mounted log folder, is where the API
    # server reads it for the UI.
    [log] = (stack.home / "logs").glob("dag_id=image_worker/run_id=*/task_id=in_image/attempt=1.log")
    assert "running in the worker image" in log.read_text()
    [log] = (stack.home / "logs").glob("dag_id=image_worker/run_id=*/task_id=fails/attempt=1.log")
    assert "this task fails on purpose" in log.read_text()
