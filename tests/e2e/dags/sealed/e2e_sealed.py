"""End-to-end DAG for sealed workloads: a task and two mapped tasks that talk to the Execution API (XCom),
so each one's workload token, decrypted in its container, was really used."""

from __future__ import annotations

import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, default_args={"retries": 0})
def e2e_sealed():
    @task
    def produce() -> list[int]:
        return [1, 2]

    @task
    def consume(value: int) -> int:
        return value * 10

    consume.expand(value=produce())


e2e_sealed()
