"""A worker that stops heartbeating: the task stops its own supervisor (the ECS task's main process), so
Airflow's scheduler fails the try after ``task_instance_heartbeat_timeout`` while the container hangs."""

from __future__ import annotations

from airflow.sdk import DAG, task

with DAG("e2e_hung", schedule=None, catchup=False, default_args={"retries": 0}) as dag:

    @task
    def hangs() -> None:
        import os
        import signal
        import time

        os.kill(os.getppid(), signal.SIGSTOP)  # the task SDK's supervisor: no more heartbeats
        time.sleep(900)

    hangs()
