"""Demo DAG (``make demo ARGS="--image A --other-image B"``): tasks that ask, through ``executor_config``,
for two different worker images in one DAG run.

The images come from the environment the demo gives the DAG processor; a worker that parses this file in
its container does not need them (only the task ids matter there).
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import dag, task

FIRST_IMAGE = os.environ.get("ECS_DEMO_FIRST_IMAGE", "first-image")
SECOND_IMAGE = os.environ.get("ECS_DEMO_SECOND_IMAGE", "second-image")


@dag(
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["ecs-executor", "demo"],
)
def ecs_two_images_demo():
    @task(executor_config={"image": FIRST_IMAGE})
    def in_first_image(n: int) -> str:
        return f"{n}: ECS_DEMO_IMAGE_MARK={os.environ.get('ECS_DEMO_IMAGE_MARK', '(unset)')}"

    @task(executor_config={"image": SECOND_IMAGE})
    def in_second_image(n: int) -> str:
        return f"{n}: ECS_DEMO_IMAGE_MARK={os.environ.get('ECS_DEMO_IMAGE_MARK', '(unset)')}"

    in_first_image.expand(n=[0, 1])
    in_second_image.expand(n=[0, 1])


ecs_two_images_demo()
