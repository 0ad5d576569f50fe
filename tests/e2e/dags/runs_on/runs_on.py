"""Tasks that ask for what they run on (issue 24): another image, ARM, a bigger task, more storage on
Fargate (through the queue profile ``fargate``)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

OTHER_IMAGE = "registry.example.com/etl:2"


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def runs_on() -> None:
    @task
    def base_image() -> str:
        return "the base task definition"

    @task(executor_config={"image": OTHER_IMAGE})
    def other_image() -> str:
        return "a derived task definition"

    @task(executor_config={"image": OTHER_IMAGE, "environment": {"STAGE": "second"}})
    def same_other_image() -> str:
        return "the same derived task definition"

    @task(executor_config={"runtime_platform": {"cpu_architecture": "ARM64"}})
    def on_arm() -> str:
        return "a derived task definition for ARM"

    @task(executor_config={"cpu": 1024, "memory": 4096})
    def more_memory() -> str:
        return "the base task definition, a bigger task"

    @task(queue="fargate", executor_config={"ephemeral_storage": 30})
    def more_storage() -> str:
        return "the fargate profile's task definition, on Fargate with 30 GiB of storage"

    base_image()
    other_image()
    same_other_image()
    on_arm()
    more_memory()
    more_storage()


runs_on()
