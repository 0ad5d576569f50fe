"""What each task runs on (issue 24), with a real Airflow: tasks that ask for another image, ARM and a
bigger task run on exactly that (the local ECS endpoint's records of what each ECS task ran with), one
derived task definition serves every task asking for the same, and the clean-up removes the derived
definitions once unused for the (scaled-down) retention, never the base one.

Ephemeral storage is Fargate-only and the local deployment launches with EC2: the task asking for it is
on the queue profile ``fargate`` (a Fargate-shaped base definition, launch type FARGATE, a subnet), which
the local endpoint runs as it does any task, recording the storage its launch asked for.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ecs_executor.demo.deployment import LocalDeployment
from ecs_executor.demo.task_definitions import CONTAINER, REGION, TASK_FAMILY, task_definition

DAGS = Path(__file__).parent / "dags" / "runs_on"
OTHER_IMAGE = "registry.example.com/etl:2"
CLEANUP_WAIT = 300.0  # retention 60 s, a sweep every 60 s: two sweeps after the run, with slack


FARGATE_FAMILY = f"{TASK_FAMILY}-fargate"
FARGATE_PROFILE = {
    "fargate": {
        "task_definition": FARGATE_FAMILY,
        "launch_type": "FARGATE",
        "subnets": "subnet-0local000000001",
        "security_groups": "sg-0local000000001",
    }
}


def fargate_definition() -> dict[str, Any]:
    """The worker's definition shaped for Fargate: awsvpc, task-level cpu and memory."""
    return {
        **task_definition(),
        "family": FARGATE_FAMILY,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "512",
        "memory": "1024",
    }


@pytest.fixture
def deployment(tmp_path: Path):
    d = LocalDeployment(
        tmp_path / "deployment",
        dags_folder=DAGS,
        executor_options={
            "derived_definition_retention": "60",
            "derived_definition_cleanup_interval": "60",
            "derived_definition_keep": "0",
            "queue_profiles": json.dumps(FARGATE_PROFILE),
        },
    )
    try:
        d.start_local_ecs("--bootstrap-task-definition", json.dumps(fargate_definition()))
        yield d
    finally:
        d.stop()


def _launches(d: LocalDeployment) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{d.ecs_url}/_local_ecs/launches", timeout=30) as answer:
        return {r["taskArn"]: r for r in json.load(answer)}


def _status(ecs: Any, arn: str) -> str:
    try:
        return str(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"])
    except ClientError:
        return "GONE"


def test_each_task_runs_on_what_it_asked_for(deployment: LocalDeployment) -> None:
    deployment.start()
    deployment.wait_for_dag("runs_on")
    run_id = deployment.trigger("runs_on")
    assert deployment.wait_for_run("runs_on", run_id, timeout=300) == "success"
    rows = {r["task_id"]: r for r in deployment.task_rows("runs_on", run_id)}
    launches = _launches(deployment)
    ran = {task_id: launches[row["external_executor_id"]] for task_id, row in rows.items()}

    base = ran["base_image"]
    assert base["taskDefinitionArn"].endswith(f":task-definition/{TASK_FAMILY}:1")
    assert base["containers"][CONTAINER]["image"] == "ecs-executor-worker:local"
    other, same = ran["other_image"], ran["same_other_image"]
    assert other["containers"][CONTAINER]["image"] == OTHER_IMAGE
    assert f":task-definition/{TASK_FAMILY}-x" in other["taskDefinitionArn"]
    assert same["taskDefinitionArn"] == other["taskDefinitionArn"]  # registered once, reused
    arm = ran["on_arm"]
    assert arm["runtimePlatform"].get("cpuArchitecture") == "ARM64"
    assert arm["containers"][CONTAINER]["image"] == "ecs-executor-worker:local"
    assert arm["taskDefinitionArn"] not in (base["taskDefinitionArn"], other["taskDefinitionArn"])
    big = ran["more_memory"]
    assert (big["cpu"], big["memory"]) == ("1024", "4096")
    assert big["taskDefinitionArn"] == base["taskDefinitionArn"]  # RunTask overrides, no derivation
    stored = ran["more_storage"]
    assert stored["taskDefinitionArn"].endswith(f":task-definition/{FARGATE_FAMILY}:1")
    assert stored["launchType"] == "FARGATE" and stored["ephemeralStorageGiB"] == 30
    assert base["ephemeralStorageGiB"] is None  # EC2: no Fargate storage

    ecs = boto3.client(
        "ecs",
        endpoint_url=deployment.ecs_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    derived = {other["taskDefinitionArn"], arm["taskDefinitionArn"]}
    deadline = time.monotonic() + CLEANUP_WAIT
    while time.monotonic() < deadline and any(_status(ecs, arn) == "ACTIVE" for arn in derived):
        time.sleep(5)
    statuses = {arn: _status(ecs, arn) for arn in derived}
    # Deregistered, then deleted in the same sweep (DELETE_IN_PROGRESS until ECS lets it go).
    assert set(statuses.values()) <= {"DELETE_IN_PROGRESS", "GONE"}, statuses
    assert _status(ecs, base["taskDefinitionArn"]) == "ACTIVE"  # the base is never touched
