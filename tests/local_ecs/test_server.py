"""The HTTP side: wire protocol, request validation against the service model, control endpoints."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from ecs_executor.local_ecs import KnobError, LocalEcs
from tests.local_ecs.helpers import CLUSTER, CONTAINER, FAMILY, error_code, http


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
