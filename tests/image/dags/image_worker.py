"""DAG for the worker image test: one task that succeeds only inside the image, one that fails."""

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
        print("running in the worker image")
        return "ok"

    @task
    def fails() -> None:
        raise ValueError("this task fails on purpose")

    in_image()
    fails()


image_worker()
