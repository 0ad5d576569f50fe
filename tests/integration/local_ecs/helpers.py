"""Helpers shared by the local ECS endpoint tests: real botocore clients, shape checks, polling.

Every successful response is also checked against botocore's ECS output shapes, so a misspelt or
mistyped field fails the test that produced it instead of being silently dropped by the parser.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.support import polling

CLUSTER = "local"
FAMILY = "worker"
CONTAINER = "base"
PY = sys.executable


def check_shape(value: Any, shape: Any, path: str) -> None:
    """Fail on any field or type the real ECS output model does not have."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected object"
        for key, item in value.items():
            assert key in shape.members, f"{path}.{key} is not a member of {shape.name}"
            check_shape(item, shape.members[key], f"{path}.{key}")
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected list"
        for index, item in enumerate(value):
            check_shape(item, shape.member, f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: expected map"
        for key, item in value.items():
            check_shape(item, shape.value, f"{path}[{key}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected string, got {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: expected integer"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected boolean"
    elif kind in ("timestamp", "double", "float"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: expected number"


def _validate_response(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict["status_code"] == 200 and operation_model.output_shape is not None:
        check_shape(json.loads(response_dict["body"]), operation_model.output_shape, operation_model.name)


def make_client(url: str, region: str = "us-east-1", retries: int = 1, validate: bool = True) -> Any:
    """A boto3 ECS client; ``validate=False`` lets a request botocore would refuse reach the endpoint."""
    client = boto3.client(
        "ecs",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": retries},
            connect_timeout=5,
            read_timeout=10,
            parameter_validation=validate,
        ),
    )
    client.meta.events.register("before-parse.ecs", _validate_response)
    return client


def error_code(excinfo: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    """LocalEcs alone answers fast: fail sooner than the shared default."""
    return polling.wait_for(predicate, timeout)


def describe(client: Any, arn: str, **kwargs: Any) -> dict[str, Any]:
    return dict(client.describe_tasks(cluster=CLUSTER, tasks=[arn], **kwargs)["tasks"][0])


def wait_status(client: Any, arn: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
    return dict(wait_for(lambda: (t := describe(client, arn))["lastStatus"] == status and t, timeout))


def register(client: Any, command: list[str] | None = None, family: str = FAMILY, **extra: Any) -> str:
    container: dict[str, Any] = {"name": CONTAINER, "image": "python:3.11", "memory": 512}
    if command is not None:
        container["command"] = command
    definitions = extra.pop("containerDefinitions", [container])
    answer = client.register_task_definition(family=family, containerDefinitions=definitions, **extra)
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def run(client: Any, **kwargs: Any) -> str:
    answer = client.run_task(cluster=CLUSTER, taskDefinition=kwargs.pop("taskDefinition", FAMILY), **kwargs)
    assert answer["failures"] == []
    return str(answer["tasks"][0]["taskArn"])


def is_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" in status.read_text()


def http(url: str, data: dict[str, Any] | None = None) -> tuple[int, Any]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def fargate_definition(client: Any, family: str = "fg", **extra: Any) -> str:
    """Register a valid Fargate task definition (awsvpc, 256 CPU units, 512 MiB)."""
    spec = {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}
    return register(client, ["true"], family=family, **{**spec, **extra})


NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
