"""Demo DAG: fan out 20 mapped tasks, each in its own (local) ECS task, then join."""

from __future__ import annotations

import datetime
import os
import time

from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["ecs-executor", "demo"],
)
def ecs_fanout_demo():
    @task
    def plan() -> list[int]:
        return list(range(20))

    @task
    def work(n: int) -> dict:
        time.sleep(1 + n % 3)
        return {"n": n, "square": n * n, "pid": os.getpid()}

    @task
    def join(results: list[dict]) -> int:
        total = sum(r["square"] for r in results)
        print(f"{len(results)} ECS tasks returned; sum of squares = {total}")
        assert total == sum(n * n for n in range(20))
        return total

    join(work.expand(n=plan()))  # type: ignore[arg-type]


ecs_fanout_demo()
