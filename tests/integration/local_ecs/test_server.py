"""The HTTP side: wire protocol, request validation against the service model, control endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import botocore.exceptions
import pytest

from ecs_executor.local_ecs import KnobError, LocalEcs
from tests.integration.local_ecs.helpers import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    error_code,
    http,
    make_client,
    register,
)


def test_control_endpoints(lecs: LocalEcs, client: Any) -> None:
    assert lecs.url is not None
    assert http(lecs.url + "/")[0] == 200
    assert http(lecs.url + "/_local_ecs/health") == (200, {"status": "ok"})
    status, knobs = http(
        lecs.url + "/_local_ecs/config", {"throttle_rate": 1, "fault_operations": "ListTasks"}
    )
    assert status == 200 and knobs["throttle_rate"] == 1.0 and knobs["fault_operations"] == ["ListTasks"]
    with pytest.raises(client.exceptions.ClientError):
        client.list_tasks(cluster=CLUSTER)
    status, error = http(lecs.url + "/_local_ecs/config", {"no_such_knob": 1})
    assert status == 400 and "no_such_knob" in error["error"]
    assert http(lecs.url + "/_local_ecs/config", {"throttle_rate": 2})[0] == 400
    status, stats = http(lecs.url + "/_local_ecs/stats")
    assert status == 200 and stats["calls"]["ListTasks"] == 1 and stats["faults"]["throttle"] == 1
    with pytest.raises(KnobError):
        LocalEcs(reset_rate=-1)


async def test_aiobotocore_client(lecs: LocalEcs) -> None:
    from aiobotocore.session import get_session

    assert lecs.url is not None
    lecs.configure(pretend_seconds=0.05)
    session = get_session()
    async with session.create_client(
        "ecs",
        endpoint_url=lecs.url,
        region_name="us-east-1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
    ) as ecs:
        await ecs.create_cluster(clusterName=CLUSTER)
        await ecs.register_task_definition(
            family=FAMILY, containerDefinitions=[{"name": CONTAINER, "image": "i", "memory": 64}]
        )
        answer = await ecs.run_task(cluster=CLUSTER, taskDefinition=FAMILY)
        arn = answer["tasks"][0]["taskArn"]
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            await ecs.describe_tasks(cluster="missing", tasks=[arn])
        assert error_code(excinfo) == "ClusterNotFoundException"
        described = await ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])
        assert described["tasks"][0]["taskArn"] == arn


# Requests checked against botocore's ECS service model --------------------------------------------


def _raw(url: str, operation: str, body: Any) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={
            "X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("kwargs", "code", "fragment"),
    [
        (
            {"taskDefinition": FAMILY, "count": "2"},
            "SerializationException",
            "Invalid type for parameter count",
        ),
        ({"taskDefinition": 7}, "SerializationException", "Invalid type for parameter taskDefinition"),
        ({}, "InvalidParameterException", 'Missing required parameter in input: "taskDefinition"'),
        (
            {"taskDefinition": FAMILY, "tags": [{"value": "v"}]},
            "InvalidParameterException",
            "Tag key None is invalid",  # the model leaves Tag.key optional; ECS's tag rules do not
        ),
    ],
)
def test_requests_are_checked_against_the_service_model(
    lecs: LocalEcs, client: Any, kwargs: dict[str, Any], code: str, fragment: str
) -> None:
    assert lecs.url is not None
    register(client, ["true"])
    unchecked = make_client(lecs.url, validate=False)  # botocore would refuse these before sending
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        unchecked.run_task(cluster=CLUSTER, **kwargs)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in excinfo.value.response["Error"]["Message"]
    assert lecs.stats()["tasks_started"] == 0


def test_raw_requests_get_ecs_error_shapes(lecs: LocalEcs, client: Any) -> None:
    assert lecs.url is not None
    status, body = _raw(lecs.url, "DescribeTasks", {"cluster": CLUSTER, "tasks": ["a"], "bogus": True})
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert 'Unknown parameter in input: "bogus"' in body["message"]
    status, body = _raw(lecs.url, "DescribeTasks", {"cluster": CLUSTER, "tasks": "a"})
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = _raw(lecs.url, "DescribeTasks", b"[1, 2]")
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = _raw(lecs.url, "RunTask", {"taskDefinition": FAMILY, "capacityProviderStrategy": "x"})
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = _raw(lecs.url, "LaunchRocket", {})
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, body = _raw(lecs.url, "DescribeTasks", {"cluster": CLUSTER, "tasks": ["a"] * 101})
    assert status == 400 and body["__type"] == "InvalidParameterException"
    status, body = _raw(lecs.url, "DescribeTasks", {"cluster": CLUSTER, "tasks": ["a"]})
    assert status == 200 and body["failures"] == [{"arn": "a", "reason": "MISSING"}]


def test_bootstrap_is_validated_too(lecs: LocalEcs) -> None:
    bad = {"family": "f", "containerDefinitions": [{"name": CONTAINER, "image": "i", "memory": "lots"}]}
    with pytest.raises(Exception, match="Invalid type for parameter"):
        lecs.bootstrap(["c"], [bad])
