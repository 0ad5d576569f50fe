"""DAG for the worker image test: a task that succeeds only inside the image, one that fails in
Python (reported through the Execution API) and one whose container exits non-zero (reported by the
executor from the ECS task's exit code)."""

from __future__ import annotations

import datetime
import os
import sys

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, default_args={"retries": 0})
def image_worker():
    @task
    def in_image() -> str:
        # Each of these holds only in the worker image, started by the executor through entrypoint.sh.
        assert os.getuid() == 50000, os.getuid()
        assert sys.prefix == "/home/airflow/.local", sys.prefix
        assert os.path.exists("/opt/ecs_executor/entrypoint.sh")
        assert os.environ["ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION"]
        # Workers run without Airflow's signing key: the workload's token is all they use.
        held = [
            k
            for k in os.environ
            if k.startswith(("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API_AUTH__JWT_PRIVATE"))
        ]
        assert not held, held
        print("running in the worker image")
        return "ok"

    @task
    def fails() -> None:
        raise ValueError("this task fails on purpose")

    # The worker cannot reach the Execution API: Airflow's task runner exits 1 in the container.
    @task(
        executor_config={
            "overrides": {
                "containerOverrides": [
                    {
                        "name": "airflow-worker",
                        "environment": [
                            {
                                "name": "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                                "value": "http://127.0.0.1:9/x/",
                            }
                        ],
                    }
                ]
            }
        }
    )
    def crashes() -> None:
        raise AssertionError("never runs")

    in_image()
    fails()
    crashes()


image_worker()
