"""End-to-end DAG: parallel tasks that succeed, fail in Python, crash the worker, and sleep."""

from __future__ import annotations

import datetime
import time

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, default_args={"retries": 0})
def e2e_parallel():
    @task
    def ok_a() -> str:
        return "a"

    @task
    def ok_b() -> str:
        return "b"

    @task
    def fails() -> None:
        raise ValueError("this task fails on purpose")

    # The worker cannot reach the Execution API, so the container itself exits non-zero: only the
    # executor can report this one, with the exit code and reason from ECS.
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

    @task
    def sleeps() -> str:
        time.sleep(8)
        return "slept"

    ok_a()
    ok_b()
    fails()
    crashes()
    sleeps()


e2e_parallel()
