"""The local ECS endpoint, exercised through real botocore/aiobotocore clients.

Every successful response is also checked against botocore's ECS output shapes, so a misspelt or
mistyped field fails the test that produced it instead of being silently dropped by the parser.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from ecs_executor.local_ecs import KnobError, LocalEcs
from ecs_executor.local_ecs.faults import Faults
from ecs_executor.local_ecs.knobs import Knobs
from tests import polling

CLUSTER = "local"
FAMILY = "worker"
CONTAINER = "base"
PY = sys.executable


# Helpers ------------------------------------------------------------------------------------------


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


def make_client(url: str, region: str = "us-east-1", retries: int = 1) -> Any:
    client = boto3.client(
        "ecs",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": retries}, connect_timeout=5, read_timeout=10
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


# Fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def lecs(tmp_path: Path) -> Iterator[LocalEcs]:
    with LocalEcs(
        provisioning_seconds=0.05, deprovisioning_seconds=0.01, log_dir=str(tmp_path / "logs")
    ) as ecs:
        yield ecs


@pytest.fixture
def client(lecs: LocalEcs) -> Any:
    assert lecs.url is not None
    ecs = make_client(lecs.url)
    ecs.create_cluster(clusterName=CLUSTER)
    return ecs


# Clusters and task definitions --------------------------------------------------------------------


def test_clusters_describe_and_missing(client: Any) -> None:
    answer = client.describe_clusters(clusters=[CLUSTER, "nope"], include=["SETTINGS"])
    (cluster,) = answer["clusters"]
    assert cluster["clusterArn"] == f"arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}"
    assert cluster["status"] == "ACTIVE"
    assert cluster["registeredContainerInstancesCount"] == 0
    assert cluster["capacityProviders"] == []
    assert answer["failures"] == [
        {"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/nope", "reason": "MISSING"}
    ]
    # CreateCluster is idempotent and accepts an ARN wherever a cluster is named.
    client.create_cluster(clusterName=CLUSTER)
    assert len(client.describe_clusters(clusters=[cluster["clusterArn"]])["clusters"]) == 1


def test_task_definition_revisions(client: Any) -> None:
    first = register(client, ["true"], tags=[{"key": "team", "value": "data"}])
    second = register(client, ["false"])
    assert first.endswith(f":task-definition/{FAMILY}:1") and second.endswith(f"{FAMILY}:2")
    latest = client.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]
    assert latest["revision"] == 2 and latest["status"] == "ACTIVE"
    assert latest["containerDefinitions"][0]["essential"] is True
    by_revision = client.describe_task_definition(taskDefinition=f"{FAMILY}:1", include=["TAGS"])
    assert by_revision["taskDefinition"]["containerDefinitions"][0]["command"] == ["true"]
    assert by_revision["tags"] == [{"key": "team", "value": "data"}]
    assert client.describe_task_definition(taskDefinition=first)["taskDefinition"]["revision"] == 1
    with pytest.raises(client.exceptions.ClientException):
        client.describe_task_definition(taskDefinition=f"{FAMILY}:9")
    client.deregister_task_definition(taskDefinition=second)
    assert client.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]["revision"] == 1


def test_region_comes_from_the_signature(lecs: LocalEcs) -> None:
    assert lecs.url is not None
    west = make_client(lecs.url, region="eu-west-2")
    arn = west.create_cluster(clusterName="regional")["cluster"]["clusterArn"]
    assert arn.startswith("arn:aws:ecs:eu-west-2:123456789012:cluster/")
    east = make_client(lecs.url)
    assert east.describe_clusters(clusters=["regional"])["failures"][0]["reason"] == "MISSING"


# RunTask validation and options -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"cluster": "nope"}, "ClusterNotFoundException", "Cluster not found"),
        ({"taskDefinition": "unknown"}, "ClientException", "Unable to find task definition"),
        ({"count": 11}, "InvalidParameterException", "Count"),
        ({"clientToken": "x" * 65}, "InvalidParameterException", "clientToken"),
        (
            {"overrides": {"containerOverrides": [{"name": CONTAINER, "command": ["x" * 8200]}]}},
            "InvalidParameterException",
            "Container Overrides length must be at most 8192",
        ),
        (
            {"overrides": {"containerOverrides": [{"name": "other", "command": ["x"]}]}},
            "InvalidParameterException",
            "not a container in the TaskDefinition",
        ),
        (
            {"launchType": "EC2", "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]},
            "InvalidParameterException",
            "launch type and capacity provider strategy",
        ),
        ({"tags": [{"key": "bad<key>", "value": "v"}]}, "InvalidParameterException", "Tag key"),
        ({"startedBy": "s" * 129}, "InvalidParameterException", "startedBy"),
    ],
)
def test_run_task_validation(
    lecs: LocalEcs, client: Any, kwargs: dict[str, Any], code: str, message: str
) -> None:
    register(client, ["true"])
    params = {"cluster": CLUSTER, "taskDefinition": FAMILY, **kwargs}
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(**params)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message in excinfo.value.response["Error"]["Message"]
    assert lecs.stats()["tasks_started"] == 0


def test_run_task_stores_request_fields(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    client.create_cluster(clusterName="fg", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    register(
        client,
        ["true"],
        family="fg",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    overrides = {"containerOverrides": [{"name": CONTAINER, "command": ["echo", "hi"]}], "cpu": "512"}
    answer = client.run_task(
        cluster="fg",
        taskDefinition="fg",
        startedBy="airflow",
        group="dag:x",
        tags=[{"key": "dag_id", "value": "x"}],
        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        platformVersion="LATEST",
        overrides=overrides,
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    )
    task = answer["tasks"][0]
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING"
    assert task["startedBy"] == "airflow" and task["group"] == "dag:x"
    assert task["launchType"] == "FARGATE" and task["capacityProviderName"] == "FARGATE_SPOT"
    assert task["platformVersion"] == "LATEST" and task["cpu"] == "512"
    assert task["overrides"]["containerOverrides"] == overrides["containerOverrides"]
    assert re.fullmatch(r"arn:aws:ecs:us-east-1:123456789012:task/fg/[0-9a-f]{32}", task["taskArn"])
    described = client.describe_tasks(cluster="fg", tasks=[task["taskArn"]], include=["TAGS"])["tasks"][0]
    assert described["tags"] == [{"key": "dag_id", "value": "x"}]
    assert "tags" not in client.describe_tasks(cluster="fg", tasks=[task["taskArn"]])["tasks"][0]
    # Real ECS refuses an awsvpc task without subnets and a FARGATE launch of an EC2-only definition.
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.run_task(cluster="fg", taskDefinition="fg", launchType="FARGATE")
    register(client, ["true"], family="ec2only")
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.run_task(cluster="fg", taskDefinition="ec2only", launchType="FARGATE")


def test_client_token_idempotency(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    first = client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, clientToken="tok-1", count=2)
    again = client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, clientToken="tok-1", count=2)
    assert [t["taskArn"] for t in first["tasks"]] == [t["taskArn"] for t in again["tasks"]]
    stats = lecs.stats()
    assert stats["tasks_started"] == 2 and stats["run_task_deduplicated"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, clientToken="tok-1", startedBy="other")
    assert error_code(excinfo) == "ConflictException"
    client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, clientToken="tok-2")
    assert lecs.stats()["tasks_started"] == 3


# Lifecycle with real processes --------------------------------------------------------------------


def test_lifecycle_exit_code_and_log(lecs: LocalEcs, client: Any, capfd: pytest.CaptureFixture[str]) -> None:
    lecs.configure(provisioning_seconds=1.0)  # long enough to see PENDING even on a loaded machine
    register(client, [PY, "-c", "import sys; print('hello-from-task'); sys.exit(3)"])
    arn = run(client)
    assert describe(client, arn)["lastStatus"] in ("PROVISIONING", "PENDING")
    wait_status(client, arn, "PENDING")
    task = wait_status(client, arn, "STOPPED")
    assert task["desiredStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    (container,) = task["containers"]
    assert container["lastStatus"] == "STOPPED" and container["exitCode"] == 3
    stamps = ["createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "executionStoppedAt", "stoppedAt"]
    times = [task[name] for name in stamps]
    assert times == sorted(times)
    assert task["stoppingAt"] <= task["stoppedAt"]
    assert "hello-from-task" in lecs.log_path(arn).read_text()
    assert "hello-from-task" not in capfd.readouterr().out


def test_environment_and_command_override(lecs: LocalEcs, client: Any) -> None:
    definition = {
        "name": CONTAINER,
        "image": "busybox",
        "memory": 128,
        "entryPoint": ["sh", "-c"],
        "command": ["echo default"],
        "environment": [{"name": "FROM_DEF", "value": "d"}, {"name": "BOTH", "value": "def"}],
    }
    register(client, containerDefinitions=[definition])
    override = {
        "name": CONTAINER,
        "command": ['echo "$FROM_DEF $BOTH $FROM_OVERRIDE $HOME"'],
        "environment": [{"name": "BOTH", "value": "ovr"}, {"name": "FROM_OVERRIDE", "value": "o"}],
    }
    arn = run(client, overrides={"containerOverrides": [override]})
    assert wait_status(client, arn, "STOPPED")["containers"][0]["exitCode"] == 0
    assert lecs.log_path(arn).read_text().strip() == f"d ovr o {os.environ['HOME']}"


def test_stop_task_is_user_initiated(lecs: LocalEcs, client: Any) -> None:
    register(client, ["sh", "-c", "sleep 30"])
    arn = run(client)
    wait_status(client, arn, "RUNNING")
    stopped = client.stop_task(cluster=CLUSTER, task=arn, reason="no longer needed")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    task = wait_status(client, arn, "STOPPED")
    assert task["stopCode"] == "UserInitiated" and task["stoppedReason"] == "no longer needed"
    assert task["containers"][0]["exitCode"] == 143  # SIGTERM, as Docker reports it


def test_stop_task_escalates_to_sigkill(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(stop_timeout_seconds=0.3)
    register(client, ["sh", "-c", "trap '' TERM; echo ready; sleep 30 & wait; sleep 30"])
    arn = run(client)
    wait_for(lambda: lecs.log_path(arn).exists() and "ready" in lecs.log_path(arn).read_text())
    assert client.stop_task(cluster=CLUSTER, task=arn)["task"]["desiredStatus"] == "STOPPED"
    task = wait_status(client, arn, "STOPPED")
    assert task["stoppedReason"] == "Task stopped by user"
    assert task["containers"][0]["exitCode"] == 137


def test_stop_before_running(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(provisioning_seconds=30)
    register(client, ["true"])
    arn = run(client)
    client.stop_task(cluster=CLUSTER, task=arn)
    task = wait_status(client, arn, "STOPPED")
    assert task["stopCode"] == "UserInitiated" and "startedAt" not in task
    assert "exitCode" not in task["containers"][0]


def test_missing_executable_fails_to_start(client: Any) -> None:
    register(client, ["/definitely/not/here", "--flag"])
    task = wait_status(client, run(client), "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotStartContainerError:")
    assert "exitCode" not in task["containers"][0] and "startedAt" not in task


def test_essential_exit_stops_sidecars(client: Any) -> None:
    definitions = [
        {"name": CONTAINER, "image": "app", "memory": 64, "command": ["sh", "-c", "sleep 0.2; exit 5"]},
        {"name": "sidecar", "image": "side", "memory": 64, "essential": False, "command": ["sleep", "30"]},
    ]
    register(client, containerDefinitions=definitions)
    task = wait_status(client, run(client), "STOPPED")
    codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    assert codes == {CONTAINER: 5, "sidecar": 143}
    assert task["stopCode"] == "EssentialContainerExited"


def test_stop_kills_task_processes(tmp_path: Path) -> None:
    with LocalEcs(provisioning_seconds=0, log_dir=str(tmp_path)) as ecs:
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        register(client, ["sh", "-c", "echo $$; exec sleep 30"])
        arn = run(client)
        pid = int(
            wait_for(lambda: ecs.log_path(arn).read_text().strip() if ecs.log_path(arn).exists() else "")
        )
    wait_for(lambda: is_dead(pid), timeout=10)


# Describe / List ----------------------------------------------------------------------------------


def test_describe_tasks_missing_ids_and_limits(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    arn = run(client)
    task_id = arn.rsplit("/", 1)[1]
    unknown = arn[:-32] + "0" * 32
    answer = client.describe_tasks(cluster=CLUSTER, tasks=[task_id, unknown])
    assert [t["taskArn"] for t in answer["tasks"]] == [arn]
    assert answer["failures"] == [{"arn": unknown, "reason": "MISSING"}]
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.describe_tasks(cluster=CLUSTER, tasks=[arn] * 101)
    with pytest.raises(client.exceptions.ClusterNotFoundException):
        client.describe_tasks(cluster="nope", tasks=[arn])
    client.create_cluster(clusterName="elsewhere")
    assert client.describe_tasks(cluster="elsewhere", tasks=[arn])["failures"][0]["reason"] == "MISSING"


def test_list_tasks_paging_and_filters(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    register(client, ["true"], family="other")
    mine = {
        t["taskArn"]
        for _ in range(5)
        for t in client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, startedBy="me", count=5)["tasks"]
    }
    theirs = run(client, taskDefinition="other", startedBy="them")
    paginator = client.get_paginator("list_tasks")
    pages = list(paginator.paginate(cluster=CLUSTER, startedBy="me", PaginationConfig={"PageSize": 10}))
    assert [len(p["taskArns"]) for p in pages] == [10, 10, 5]
    assert {arn for p in pages for arn in p["taskArns"]} == mine
    assert client.list_tasks(cluster=CLUSTER, family="other")["taskArns"] == [theirs]
    assert len(client.list_tasks(cluster=CLUSTER)["taskArns"]) == 26
    client.stop_task(cluster=CLUSTER, task=theirs)
    assert client.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"] == [theirs]
    assert theirs not in client.list_tasks(cluster=CLUSTER)["taskArns"]
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.list_tasks(cluster=CLUSTER, maxResults=101)
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.list_tasks(cluster=CLUSTER, nextToken="garbage")


def test_tags(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    arn = run(client, tags=[{"key": "a", "value": "1"}])
    client.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "3"}])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "a", "value": "3"},
        {"key": "b", "value": "2"},
    ]
    cluster_arn = client.describe_clusters(clusters=[CLUSTER])["clusters"][0]["clusterArn"]
    client.tag_resource(resourceArn=cluster_arn, tags=[{"key": "env", "value": "test"}])
    assert client.list_tags_for_resource(resourceArn=cluster_arn)["tags"] == [{"key": "env", "value": "test"}]
    client.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.list_tags_for_resource(resourceArn=arn[:-32] + "f" * 32)
    assert error_code(excinfo) == "ResourceNotFoundException"


# Pretend mode -------------------------------------------------------------------------------------


def test_pretend_mode_lifecycle_and_finish(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=0.1, pretend_exit_code=4)
    register(client, ["/not/executed"])
    task = wait_status(client, run(client), "STOPPED")
    assert task["containers"][0]["exitCode"] == 4 and task["stopCode"] == "EssentialContainerExited"

    lecs.configure(pretend_seconds=3600)
    arn = run(client)
    wait_status(client, arn, "RUNNING")
    assert lecs.finish_task(arn, 7)
    assert wait_status(client, arn, "STOPPED")["containers"][0]["exitCode"] == 7
    assert not lecs.finish_task(arn, 1)

    arn = run(client)
    wait_status(client, arn, "RUNNING")
    client.stop_task(cluster=CLUSTER, task=arn, reason="bye")
    task = wait_status(client, arn, "STOPPED")
    assert (task["stopCode"], task["stoppedReason"], task["containers"][0]["exitCode"]) == (
        "UserInitiated",
        "bye",
        143,
    )
    assert lecs.stats()["tasks_by_status"] == {"STOPPED": 3}
    assert lecs.stats()["processes"] == 0


def test_pretend_mode_holds_many_tasks(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=0.3, provisioning_seconds=0.05)
    register(client, ["true"])
    for _ in range(30):
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, count=10)
    wait_for(lambda: lecs.stats()["tasks_by_status"] == {"STOPPED": 300})
    stopped = client.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED", maxResults=100)
    assert len(stopped["taskArns"]) == 100 and "nextToken" in stopped


# Faults and throttling ----------------------------------------------------------------------------


def test_run_task_failures_knob(lecs: LocalEcs, client: Any) -> None:
    register(client, ["true"])
    lecs.configure(run_task_failure_rate=1.0, run_task_failure_reason="AGENT")
    answer = client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, count=2)
    assert answer["tasks"] == []
    assert [f["reason"] for f in answer["failures"]] == ["AGENT", "AGENT"]
    assert all(
        f["arn"].startswith("arn:aws:ecs:us-east-1:123456789012:container-instance/")
        for f in answer["failures"]
    )
    assert lecs.stats()["faults"]["run_task_failure"] == 2 and lecs.stats()["tasks_started"] == 0


@pytest.mark.parametrize("reason", [None, "ResourceInitializationError: ENI timeout"])
def test_fail_to_start_knob(lecs: LocalEcs, client: Any, reason: str | None) -> None:
    register(client, ["/not/executed"])
    lecs.configure(fail_to_start_rate=1.0, fail_to_start_reason=reason)
    task = wait_status(client, run(client), "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    if reason is None:
        assert task["stoppedReason"].split(":")[0] in (
            "CannotPullContainerError",
            "ResourceInitializationError",
        )
    else:
        assert task["stoppedReason"] == reason
    assert task["containers"][0]["reason"] == task["stoppedReason"]
    assert "exitCode" not in task["containers"][0]


def test_throttle_buckets(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    lecs.configure(throttle=True, throttle_overrides={"cluster_modify": [3, 0.001]})
    for _ in range(3):
        run(client)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        run(client)
    assert error_code(excinfo) == "ThrottlingException"
    assert excinfo.value.response["Error"]["Message"] == "Rate exceeded"
    client.describe_clusters(clusters=[CLUSTER])  # other buckets are unaffected
    # Real-ECS sizes: task definition registration bursts to 20 and refills 1 per second.
    lecs.configure(throttle_overrides={})
    outcomes = []
    for _ in range(21):
        try:
            register(client, ["true"], family="burst")
            outcomes.append("ok")
        except client.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes[:20] == ["ok"] * 20
    assert outcomes[20] in ("ok", "ThrottlingException")  # "ok" only if the 20 calls took over a second


def test_fargate_launch_bucket(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(
        client,
        ["true"],
        family="fg",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    register(client, ["true"])
    lecs.configure(throttle=True, fargate=True, throttle_overrides={"fargate_launch": [3, 0.001]})
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    client.run_task(
        cluster=CLUSTER, taskDefinition="fg", launchType="FARGATE", count=3, networkConfiguration=network
    )
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(
            cluster=CLUSTER, taskDefinition="fg", launchType="FARGATE", networkConfiguration=network
        )
    assert error_code(excinfo) == "ThrottlingException"
    run(client, launchType="EC2")


@pytest.mark.parametrize(
    ("kind", "code", "statuses"),
    [
        ("throttle", "ThrottlingException", {400}),
        ("server_error", "ServerException", {500, 503}),
        ("reset", None, set()),
    ],
)
def test_faults_before_apply(
    lecs: LocalEcs, client: Any, kind: str, code: str | None, statuses: set[int]
) -> None:
    register(client, ["true"])
    lecs.configure(**{f"{kind}_rate": 1.0}, fault_operations=["RunTask"])
    with pytest.raises((botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)) as excinfo:
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY)
    error = excinfo.value
    if code is None:  # a reset surfaces as a connection error, never as an ECS error
        assert isinstance(error, botocore.exceptions.BotoCoreError)
    else:
        assert isinstance(error, botocore.exceptions.ClientError)
        assert error.response["Error"]["Code"] == code
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] in statuses
    client.describe_clusters(clusters=[CLUSTER])  # not in fault_operations
    stats = lecs.stats()
    assert stats["faults"][kind] == 1 and stats["tasks_started"] == 0


def test_lost_reply_applies_the_call(lecs: LocalEcs) -> None:
    assert lecs.url is not None
    lecs.configure(pretend_seconds=60)
    client = make_client(lecs.url, retries=3)
    client.create_cluster(clusterName=CLUSTER)
    register(client, ["true"])
    lecs.configure(lost_reply_rate=1.0, fault_operations=["RunTask"])
    with pytest.raises(botocore.exceptions.BotoCoreError):
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY)
    lecs.configure(lost_reply_rate=0.0)
    stats = lecs.stats()
    # botocore retried with the same clientToken: applied once, deduplicated twice.
    assert stats["faults"]["lost_reply"] == 3 and stats["tasks_started"] == 1
    assert stats["run_task_deduplicated"] == 2
    assert len(client.list_tasks(cluster=CLUSTER)["taskArns"]) == 1


def test_latency_knobs(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(latency_ms=150)
    started = time.monotonic()
    client.describe_clusters(clusters=[CLUSTER])
    assert time.monotonic() - started >= 0.15
    lecs.configure(latency_ms=0, latency_spike_rate=1.0, latency_spike_ms=1)
    client.describe_clusters(clusters=[CLUSTER])
    assert lecs.stats()["faults"]["latency_spike"] == 1


def test_seed_makes_faults_reproducible() -> None:
    def sequence() -> list[str | None]:
        faults = Faults(Knobs(seed=42, throttle_rate=0.3, server_error_rate=0.3))
        return [faults.before_call("RunTask") for _ in range(50)]

    first = sequence()
    assert first == sequence()
    assert {"throttle", "server_error", None} <= set(first)


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


# CLI ----------------------------------------------------------------------------------------------


def test_cli_prints_url_and_exits_on_sigterm(tmp_path: Path) -> None:
    definition = {
        "family": FAMILY,
        "containerDefinitions": [
            {"name": CONTAINER, "image": "i", "memory": 64, "command": ["sh", "-c", "echo $$; exec sleep 30"]}
        ],
    }
    (tmp_path / "td.json").write_text(json.dumps(definition))
    process = subprocess.Popen(
        [
            PY,
            "-m",
            "ecs_executor.local_ecs",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--bootstrap-cluster",
            CLUSTER,
            "--bootstrap-task-definition",
            f"@{tmp_path / 'td.json'}",
            "--log-dir",
            str(tmp_path / "logs"),
            "--provisioning-seconds",
            "0",
            "--throttle",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"LOCAL_ECS_URL=(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        client = make_client(match.group(1))
        assert client.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]["revision"] == 1
        arn = run(client)
        log = tmp_path / "logs" / f"{arn.rsplit('/', 1)[1]}.log"
        pid = int(wait_for(lambda: log.exists() and log.read_text().strip()))
        assert http(match.group(1) + "/_local_ecs/config")[1]["throttle"] is True
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out == ""  # nothing after the URL line
    wait_for(lambda: is_dead(pid), timeout=10)


def test_cli_rejects_bad_knobs() -> None:
    result = subprocess.run(
        [PY, "-m", "ecs_executor.local_ecs", "--reset-rate", "7"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "reset_rate" in result.stderr
