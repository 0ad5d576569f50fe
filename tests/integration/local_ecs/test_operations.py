"""ECS operations of the local endpoint: validation and answers as real ECS gives them.

Rules moto also enforces run against both endpoints (the ``endpoint`` fixture) with one expectation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from ecs_executor.local_ecs import LocalEcs
from ecs_executor.request.ecs_rules import cpu_units, memory_mib, overrides_size
from tests.integration.local_ecs.helpers import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    NETWORK,
    error_code,
    fargate_definition,
    make_client,
    register,
    run,
)


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
    # 512 CPU units need at least 1 GiB on Fargate: the task-level override names both.
    overrides = {
        "containerOverrides": [{"name": CONTAINER, "command": ["echo", "hi"]}],
        "cpu": "512",
        "memory": "1024",
    }
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
    assert task["platformVersion"] == "LATEST" and task["cpu"] == "512" and task["memory"] == "1024"
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
    # An ARN naming another cluster is MISSING even on the task's own cluster.
    renamed = arn.replace(f":task/{CLUSTER}/", ":task/elsewhere/")
    answer = client.describe_tasks(cluster=CLUSTER, tasks=[renamed])
    assert answer["tasks"] == [] and answer["failures"] == [{"arn": renamed, "reason": "MISSING"}]


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


# Rules moto enforces too: the same expectation against both endpoints ---------------------------


@pytest.fixture(params=["local", "moto"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A client with cluster CLUSTER and task definition FAMILY, on our endpoint or on moto."""
    if request.param == "moto":
        url = request.getfixturevalue("moto_url")
        yield make_client(url, validate=False)
        return
    with LocalEcs(pretend_seconds=60) as ecs:
        assert ecs.url is not None
        yield make_client(ecs.url, validate=False)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.run_task(cluster="nope", taskDefinition=FAMILY), "ClusterNotFoundException"),
        (lambda c: c.run_task(cluster=CLUSTER, taskDefinition="unknown-family"), "ClientException"),
        (
            lambda c: c.run_task(
                cluster=CLUSTER,
                taskDefinition=FAMILY,
                launchType="EC2",
                capacityProviderStrategy=[{"capacityProvider": "FARGATE"}],
            ),
            "InvalidParameterException",
        ),
    ],
    ids=["missing-cluster", "unknown-task-definition", "launch-type-and-strategy"],
)
def test_rules_shared_with_moto(endpoint: Any, call: Any, code: str) -> None:
    endpoint.create_cluster(clusterName=CLUSTER)
    register(endpoint, ["true"])
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        call(endpoint)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_missing_clusters_shared_with_moto(endpoint: Any) -> None:
    endpoint.create_cluster(clusterName=CLUSTER)
    answer = endpoint.describe_clusters(clusters=[CLUSTER, "absent"])
    assert [c["clusterName"] for c in answer["clusters"]] == [CLUSTER]
    assert [(f["arn"].rsplit("/", 1)[1], f["reason"]) for f in answer["failures"]] == [("absent", "MISSING")]


# Task definitions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("cpu", "memory"), [("256", "512"), ("1 vCPU", "8 GB"), ("8192", "61440")])
def test_register_accepts_fargate_sizes(client: Any, cpu: str, memory: str) -> None:
    arn = fargate_definition(client, cpu=cpu, memory=memory)
    assert arn.endswith(":task-definition/fg:1")
    stored = client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    # Stored as ECS stores them: CPU units and MiB, whatever the spelling.
    assert (stored["cpu"], stored["memory"]) == (str(cpu_units(cpu)), str(memory_mib(memory)))
    assert stored["cpu"].isdigit() and stored["memory"].isdigit()


@pytest.mark.parametrize(
    ("cpu", "memory", "message"),
    [
        ("256", "4096", "No Fargate configuration exists for given values."),
        ("8192", "18432", "No Fargate configuration exists for given values."),
        ("100", "512", "Invalid 'cpu' setting for task."),
    ],
)
def test_register_rejects_other_fargate_sizes(client: Any, cpu: str, memory: str, message: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        fargate_definition(client, cpu=cpu, memory=memory)
    assert error_code(excinfo) == "ClientException"
    assert excinfo.value.response["Error"]["Message"] == message


def test_register_rejects_container_memory_above_task_memory(client: Any) -> None:
    # Our setup guide's worker definition has 2 GiB at task level; a container asking for more is refused.
    big = {"name": CONTAINER, "image": "i", "memory": 4096}
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        register(client, containerDefinitions=[big], memory="2048")
    assert error_code(excinfo) == "ClientException"
    assert excinfo.value.response["Error"]["Message"] == (
        f"The 'memory' setting for container '{CONTAINER}' is greater than for the task."
    )
    soft = {"name": CONTAINER, "image": "i", "memoryReservation": 3072}
    with pytest.raises(client.exceptions.ClientException):
        register(client, containerDefinitions=[soft], memory="2 GB")
    register(client, containerDefinitions=[{**big, "memory": 2048}], memory="2048")


def test_run_task_rejects_container_override_above_task_memory(lecs: LocalEcs, client: Any) -> None:
    """The setup guide's first DAG overrides container memory to 4 GiB on a 2 GiB task: ECS refuses it."""
    lecs.configure(pretend_seconds=60)
    fargate_definition(client, family="worker2g", cpu="1024", memory="2048")
    big = {"containerOverrides": [{"name": CONTAINER, "memory": 4096}]}
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(
            cluster=CLUSTER,
            taskDefinition="worker2g",
            launchType="FARGATE",
            networkConfiguration=NETWORK,
            overrides=big,
        )
    assert error_code(excinfo) == "InvalidParameterException"
    assert "'memory' setting for container" in excinfo.value.response["Error"]["Message"]
    # Raising the task's memory with it (a valid Fargate pair) is accepted.
    answer = client.run_task(
        cluster=CLUSTER,
        taskDefinition="worker2g",
        launchType="FARGATE",
        networkConfiguration=NETWORK,
        overrides={**big, "memory": "4096"},
    )
    assert answer["tasks"][0]["memory"] == "4096"
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.run_task(  # 1 vCPU cannot have 16 GiB
            cluster=CLUSTER,
            taskDefinition="worker2g",
            launchType="FARGATE",
            networkConfiguration=NETWORK,
            overrides={"memory": "16384"},
        )


# Launch target ------------------------------------------------------------------------------------


def test_neither_launch_type_nor_strategy_uses_the_cluster_default(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    client.create_cluster(
        clusterName="fg",
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )
    fargate_definition(client)
    task = client.run_task(cluster="fg", taskDefinition="fg", networkConfiguration=NETWORK)["tasks"][0]
    assert (task["launchType"], task["capacityProviderName"]) == ("FARGATE", "FARGATE_SPOT")
    assert task["platformVersion"] == "1.4.0"
    # An explicit launch type wins over the default and names no capacity provider.
    register(client, ["true"])
    task = client.run_task(cluster="fg", taskDefinition=FAMILY, launchType="EC2")["tasks"][0]
    assert task["launchType"] == "EC2" and "capacityProviderName" not in task


def test_no_default_strategy_means_ec2(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    task = client.run_task(cluster=CLUSTER, taskDefinition=FAMILY)["tasks"][0]
    assert task["launchType"] == "EC2" and "capacityProviderName" not in task
    assert "platformVersion" not in task
    # A Fargate-only definition run that way lands on EC2, where this cluster has no instances.
    fargate_definition(client)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(cluster=CLUSTER, taskDefinition="fg", networkConfiguration=NETWORK)
    assert error_code(excinfo) == "InvalidParameterException"
    assert excinfo.value.response["Error"]["Message"] == "No Container Instances were found in your cluster."
    assert lecs.stats()["tasks_started"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"launchType": "EC2"}, "The platform version must be null when specifying an EC2 launch type."),
        ({}, "The platform version must be null when specifying an EC2 launch type."),  # EC2 by default
    ],
)
def test_platform_version_only_with_fargate(client: Any, kwargs: dict[str, Any], message: str) -> None:
    register(client, ["true"])
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, platformVersion="LATEST", **kwargs)
    assert error_code(excinfo) == "InvalidParameterException"
    assert excinfo.value.response["Error"]["Message"] == message


def test_fargate_needs_awsvpc_subnets(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    client.create_cluster(clusterName="fg", capacityProviders=["FARGATE"])
    fargate_definition(client)
    strategy = [{"capacityProvider": "FARGATE", "weight": 1}]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(cluster="fg", taskDefinition="fg", capacityProviderStrategy=strategy)
    assert "Network Configuration must be provided" in excinfo.value.response["Error"]["Message"]
    too_many = {"awsvpcConfiguration": {"subnets": [f"subnet-{i}" for i in range(17)]}}
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.run_task(
            cluster="fg",
            taskDefinition="fg",
            capacityProviderStrategy=strategy,
            networkConfiguration=too_many,
        )
    groups = {
        "awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": [f"sg-{i}" for i in range(6)]}
    }
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.run_task(
            cluster="fg", taskDefinition="fg", capacityProviderStrategy=strategy, networkConfiguration=groups
        )
    # A strategy naming a provider the cluster lacks is refused too.
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.run_task(
            cluster="fg",
            taskDefinition="fg",
            capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}],
            networkConfiguration=NETWORK,
        )
    task = client.run_task(
        cluster="fg", taskDefinition="fg", capacityProviderStrategy=strategy, networkConfiguration=NETWORK
    )["tasks"][0]
    assert task["launchType"] == "FARGATE" and task["capacityProviderName"] == "FARGATE"


def test_network_configuration_needs_awsvpc(client: Any) -> None:
    register(client, ["true"])  # bridge network mode
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, networkConfiguration=NETWORK)
    assert error_code(excinfo) == "InvalidParameterException"
    assert "not valid for the given networkMode" in excinfo.value.response["Error"]["Message"]


# Overrides, tags, clusters ------------------------------------------------------------------------


def test_overrides_limit_is_8192_characters(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    empty = {"containerOverrides": [{"name": CONTAINER, "command": [""]}]}
    base = overrides_size(empty)
    fits = {"containerOverrides": [{"name": CONTAINER, "command": ["x" * (8192 - base)]}]}
    run(client, overrides=fits)
    over = {"containerOverrides": [{"name": CONTAINER, "command": ["x" * (8193 - base)]}]}
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, overrides=over)
    run(client, overrides=empty)


def test_tags_allow_unicode(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    tags = [
        {"key": "Zürich", "value": "データ ٣\u00a0x"},
        {"key": "airflow:dag_id", "value": "a.b/c=d+e-f@g"},
    ]
    arn = run(client, tags=tags)
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == tags
    for bad in ({"key": "rocket🚀", "value": "v"}, {"key": "aws:reserved", "value": "v"}):
        with pytest.raises(client.exceptions.InvalidParameterException):
            client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, tags=[bad])
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])


def test_stop_task_on_another_cluster_fails(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    arn = run(client)
    client.create_cluster(clusterName="elsewhere")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.stop_task(cluster="elsewhere", task=arn)
    assert error_code(excinfo) == "InvalidParameterException"
    assert excinfo.value.response["Error"]["Message"] == "The referenced task was not found."
    assert client.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]["desiredStatus"] == "RUNNING"
    client.stop_task(cluster=CLUSTER, task=arn)
