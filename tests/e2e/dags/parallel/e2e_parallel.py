"""End-to-end DAG: parallel tasks that succeed, fail in Python, crash the worker, and sleep.

``ok_a`` also proves that a worker runs without Airflow's signing key: it fails if any form of the key
is in its environment, and logs a digest of the ``[api_auth] jwt_secret`` its Airflow config resolves
to, which the test compares with the scheduler's."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import time

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, default_args={"retries": 0})
def e2e_parallel():
    @task
    def ok_a() -> str:
        held = sorted(k for k in os.environ if re.match(r"AIRFLOW__API_AUTH__JWT_(SECRET|PRIVATE_KEY)", k))
        if held:
            raise RuntimeError(f"the worker holds Airflow's signing key: {held}")
        from airflow.configuration import conf

        resolved = conf.get("api_auth", "jwt_secret", fallback="") or ""
        print("jwt_secret sha256:", hashlib.sha256(resolved.encode()).hexdigest())
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
