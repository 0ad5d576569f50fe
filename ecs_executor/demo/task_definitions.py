"""What the local ECS endpoint of a local deployment is bootstrapped with: one cluster and the worker's
task definition (as a process on this host, or in the worker image with podman), in one Region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CLUSTER = "airflow-local"
CONTAINER = "airflow-worker"
TASK_FAMILY = "airflow-worker"
REGION = "us-east-1"


def task_definition() -> dict[str, Any]:
    """The task definition registered at the local endpoint; its command is always overridden."""
    return {
        "family": TASK_FAMILY,
        "containerDefinitions": [
            {
                "name": CONTAINER,
                "image": "ecs-executor-worker:local",
                "memory": 512,
                "essential": True,
                "command": ["python", "--version"],
            }
        ],
    }


def image_task_definition(
    image: str, dags_folder: Path, logs_folder: Path, env: dict[str, str]
) -> dict[str, Any]:
    """The task definition for running tasks in the worker image (``container_runner=podman``).

    As on ECS, the container gets only what the definition gives it: the Execution API URL, and the
    DAGs and the log folder as bind mounts from this host, where the scheduler and the API server find
    them. Never Airflow's signing key (``[api_auth] jwt_secret``): a worker needs only the workload's
    token, which the command carries. With sealed workloads (``AWS_ENDPOINT_URL_KMS`` in ``env``), also
    the KMS endpoint and the local credentials, standing in for the task role ECS would provide.
    """
    passed: tuple[str, ...] = (
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
    )
    if "AWS_ENDPOINT_URL_KMS" in env:
        passed += ("AWS_ENDPOINT_URL_KMS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    definition = task_definition()
    definition["volumes"] = [
        {"name": "dags", "host": {"sourcePath": str(dags_folder)}},
        {"name": "logs", "host": {"sourcePath": str(logs_folder)}},
    ]
    container = definition["containerDefinitions"][0]
    container["image"] = image
    container["environment"] = [{"name": name, "value": env[name]} for name in passed]
    container["mountPoints"] = [
        {"sourceVolume": "dags", "containerPath": "/opt/airflow/dags", "readOnly": True},
        {"sourceVolume": "logs", "containerPath": "/opt/airflow/logs"},
    ]
    return definition
