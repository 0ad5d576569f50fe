"""Fault injection and throttling: the knobs that make the endpoint misbehave like ECS can."""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions
import pytest

from ecs_executor.local_ecs import LocalEcs
from ecs_executor.local_ecs.faults import CAPACITY_UNAVAILABLE, Faults
from ecs_executor.local_ecs.knobs import Knobs
from tests.integration.local_ecs.helpers import (
    CLUSTER,
    FAMILY,
    NETWORK,
    error_code,
    fargate_definition,
    make_client,
    register,
    run,
    wait_status,
)


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


# Capacity shortage, missing image, Spot interruption ----------------------------------------------


def test_capacity_unavailable_wording() -> None:
    assert CAPACITY_UNAVAILABLE == (
        "Capacity is unavailable at this time. Please try again later or in a different availability zone"
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("resource", "RESOURCE:MEMORY"),
        ("unavailable", CAPACITY_UNAVAILABLE),
    ],
)
def test_capacity_shortage_reports_failures(lecs: LocalEcs, client: Any, kind: str, reason: str) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    lecs.configure(capacity_shortage_seconds=0.6, capacity_shortage_kind=kind)
    answer = client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, count=2, clientToken="short-1")
    assert answer["tasks"] == []
    assert [f["reason"] for f in answer["failures"]] == [reason, reason]
    time.sleep(0.7)  # the window closes: the same call (same token) places tasks now
    again = client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, count=2, clientToken="short-1")
    assert len(again["tasks"]) == 2 and again["failures"] == []
    stats = lecs.stats()
    assert stats["faults"]["capacity_shortage"] == 1 and stats["tasks_started"] == 2


def test_capacity_shortage_provisioning_limit_fails_the_call(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60)
    register(client, ["true"])
    lecs.configure(capacity_shortage_seconds=30, capacity_shortage_kind="provisioning_limit")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY)
    assert error_code(excinfo) == "ClientException"
    assert excinfo.value.response["Error"]["Message"] == "Tasks provisioning capacity limit exceeded."
    client.describe_clusters(clusters=[CLUSTER])  # only RunTask is short of capacity
    lecs.configure(capacity_shortage_seconds=0)  # switching it off ends the window at once
    run(client)
    assert lecs.stats()["tasks_started"] == 1


def test_capacity_shortage_window_restarts_when_set_again() -> None:
    faults = Faults(Knobs(capacity_shortage_seconds=10))
    now = [100.0]
    faults.clock = lambda: now[0]
    faults.reconfigure(["capacity_shortage_seconds"])
    now[0] = 109.0
    assert faults.capacity_shortage() == "resource"
    now[0] = 110.5
    assert faults.capacity_shortage() is None
    faults.reconfigure(["capacity_shortage_seconds"])
    assert faults.capacity_shortage() == "resource"


def test_capacity_shortage_set_at_construction(tmp_path: Any) -> None:
    with LocalEcs(capacity_shortage_seconds=30, capacity_shortage_kind="unavailable") as ecs:
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        register(client, ["true"])
        answer = client.run_task(cluster=CLUSTER, taskDefinition=FAMILY)
        assert answer["failures"][0]["reason"].startswith("Capacity is unavailable")


def test_image_missing(lecs: LocalEcs, client: Any) -> None:
    register(client, ["/not/executed"])
    lecs.configure(image_missing=True)
    task = wait_status(client, run(client), "STOPPED")
    image = "python:3.11"
    expected = (
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
        f"{image}: {image}: not found"
    )
    assert task["stopCode"] == "TaskFailedToStart" and task["stoppedReason"] == expected
    (container,) = task["containers"]
    assert container["reason"] == expected and "exitCode" not in container
    assert "startedAt" not in task
    assert lecs.stats()["faults"]["image_missing"] == 1
    lecs.configure(image_missing=False, pretend_seconds=0.05)
    task = wait_status(client, run(client), "STOPPED")
    assert task["stopCode"] == "EssentialContainerExited"


def test_spot_interruption_in_pretend_mode(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60, spot_interruption_seconds=0.2)
    client.create_cluster(clusterName="fg", capacityProviders=["FARGATE_SPOT"])
    fargate_definition(client)
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    answer = client.run_task(
        cluster="fg", taskDefinition="fg", capacityProviderStrategy=strategy, networkConfiguration=NETWORK
    )
    arn = answer["tasks"][0]["taskArn"]
    task = client.describe_tasks(cluster="fg", tasks=[arn])["tasks"][0]
    deadline = time.monotonic() + 15
    while task["lastStatus"] != "STOPPED" and time.monotonic() < deadline:
        time.sleep(0.05)
        task = client.describe_tasks(cluster="fg", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED" and "startedAt" in task
    assert (task["stopCode"], task["stoppedReason"]) == (
        "SpotInterruption",
        "Your Spot Task was interrupted.",
    )
    assert task["containers"][0]["exitCode"] == 143  # SIGTERM, as the runner reports it


def test_spot_interruption_spares_tasks_that_finish_first(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=0.05, spot_interruption_seconds=5)
    register(client, ["true"])
    task = wait_status(client, run(client), "STOPPED")
    assert task["stopCode"] == "EssentialContainerExited"


def test_spot_capacity_shortage_refuses_fargate_spot_only(lecs: LocalEcs, client: Any) -> None:
    """ECS's answer when Fargate Spot has no capacity (AWS re:Post ecs-fargate-runtask-capacity): a
    failures[] entry; the same request on FARGATE places the task."""
    lecs.configure(pretend_seconds=60, spot_capacity_shortage=True)
    client.create_cluster(
        clusterName="fg",
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )
    fargate_definition(client)
    spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    common = {"cluster": "fg", "taskDefinition": "fg", "networkConfiguration": NETWORK}
    refused = client.run_task(capacityProviderStrategy=spot, **common)
    assert refused["tasks"] == [] and [f["reason"] for f in refused["failures"]] == [CAPACITY_UNAVAILABLE]
    assert client.run_task(**common)["failures"][0]["reason"] == CAPACITY_UNAVAILABLE  # the default: Spot
    on_demand = client.run_task(capacityProviderStrategy=[{"capacityProvider": "FARGATE"}], **common)
    assert on_demand["failures"] == [] and on_demand["tasks"][0]["capacityProviderName"] == "FARGATE"
    assert client.run_task(launchType="FARGATE", **common)["failures"] == []
    assert lecs.stats()["faults"]["spot_capacity_shortage"] == 2
    lecs.configure(spot_capacity_shortage=False)
    assert client.run_task(capacityProviderStrategy=spot, **common)["failures"] == []


def _on_fg(client: Any, arn: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        (task,) = client.describe_tasks(cluster="fg", tasks=[arn])["tasks"]
        if task["lastStatus"] == status or time.monotonic() > deadline:
            return dict(task)
        time.sleep(0.05)


def test_spot_interruption_before_start_stops_spot_tasks_before_any_container_ran(
    lecs: LocalEcs, client: Any
) -> None:
    lecs.configure(pretend_seconds=60, spot_interruption_before_start=True)
    client.create_cluster(clusterName="fg", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    fargate_definition(client)
    common = {"cluster": "fg", "taskDefinition": "fg", "networkConfiguration": NETWORK}
    spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    arn = client.run_task(capacityProviderStrategy=spot, **common)["tasks"][0]["taskArn"]
    task = _on_fg(client, arn, "STOPPED")
    assert (task["stopCode"], task["stoppedReason"]) == (
        "SpotInterruption",
        "Your Spot Task was interrupted.",
    )
    assert "startedAt" not in task and "exitCode" not in task["containers"][0]
    on_demand = client.run_task(launchType="FARGATE", **common)["tasks"][0]["taskArn"]
    assert _on_fg(client, on_demand, "RUNNING")["lastStatus"] == "RUNNING"
