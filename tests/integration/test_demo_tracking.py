"""The demo's events wiring (``--tracking events``): moto's SQS, a queue, the local ECS endpoint publishing
its cluster's task state change events there, and the executor options pointing at the queue.

Airflow is not started: the executor side that reads these options is built separately.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import boto3
import pytest

from ecs_executor.demo.__main__ import main as demo_main
from ecs_executor.demo.deployment import LocalDeployment
from ecs_executor.demo.task_definitions import CLUSTER, REGION, TASK_FAMILY
from tests.support.sqs_server import SqsQueue

PREFIX = "AIRFLOW__AWS_ECS_EXECUTOR__"


def test_events_stack_wires_endpoint_queue_and_executor(tmp_path: Path) -> None:
    stack = LocalDeployment(tmp_path / "stack", tracking="events")
    try:
        stack.start_local_ecs()
        env = stack.env()
        assert env[PREFIX + "TRACKING_MODE"] == "events"
        assert env[PREFIX + "EVENTS_QUEUE"] == stack.events_queue_url
        assert env["AWS_ENDPOINT_URL_SQS"] == stack.sqs_url and stack.sqs_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{stack.ecs_url}/_local_ecs/config", timeout=10) as answer:
            knobs = json.loads(answer.read())
        assert knobs["events_queue_url"] == stack.events_queue_url
        assert knobs["events_endpoint_url"] == stack.sqs_url and knobs["events_clusters"] == [CLUSTER]

        ecs = boto3.client(
            "ecs",
            endpoint_url=stack.ecs_url,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        arn = ecs.run_task(cluster=CLUSTER, taskDefinition=TASK_FAMILY, launchType="EC2")["tasks"][0][
            "taskArn"
        ]
        queue = SqsQueue(stack.sqs_url, stack.events_queue_url)
        events = queue.bodies(until=lambda got: any(e["detail"]["lastStatus"] == "STOPPED" for e in got))
        assert {e["detail"]["taskArn"] for e in events} == {arn}
        final = events[-1]["detail"]
        assert (
            final["lastStatus"] == "STOPPED" and final["containers"][0]["exitCode"] == 0
        )  # python --version
    finally:
        stack.stop()
    assert stack.sqs_url and stack._sqs is None


def test_polling_stack_sets_no_events_options(tmp_path: Path) -> None:
    stack = LocalDeployment(tmp_path)
    env = stack.env()
    assert PREFIX + "TRACKING_MODE" not in env and "AWS_ENDPOINT_URL_SQS" not in env


def test_unknown_tracking_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tracking must be one of polling, events"):
        LocalDeployment(tmp_path, tracking="carrier-pigeon")
    with pytest.raises(SystemExit):
        demo_main(["--tracking", "carrier-pigeon"])
