"""The in-memory registry alone: launch targets, stop causes and status counts, without a server."""

from __future__ import annotations

from typing import Any

from ecs_executor.local_ecs import model
from ecs_executor.local_ecs.registry import Registry

REGION = "us-east-1"


def _setup(cluster_params: dict[str, Any] | None = None) -> tuple[Registry, Any, Any]:
    registry = Registry(clock=lambda: 1000.0)
    cluster = registry.create_cluster(REGION, "c", cluster_params or {})
    definition = registry.register(
        REGION, {"family": "f", "containerDefinitions": [{"name": "app", "image": "i", "memory": 64}]}
    )
    return registry, cluster, definition


def test_task_launch_target_follows_request_then_cluster_default() -> None:
    registry, cluster, definition = _setup(
        {
            "capacityProviders": ["FARGATE"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE"}],
        }
    )
    by_default = registry.new_task(cluster, definition, {})
    assert (by_default.launch_type, by_default.capacity_provider_name) == ("FARGATE", "FARGATE")
    assert by_default.platform_version == "1.4.0"
    explicit = registry.new_task(cluster, definition, {"launchType": "EC2"})
    assert (explicit.launch_type, explicit.capacity_provider_name, explicit.platform_version) == (
        "EC2",
        None,
        None,
    )
    registry2, bare, definition2 = _setup()
    fallback = registry2.new_task(bare, definition2, {})
    assert (fallback.launch_type, fallback.capacity_provider_name) == ("EC2", None)


def test_stop_causes_use_ecs_wording_and_first_cause_wins() -> None:
    registry, cluster, definition = _setup()
    task = registry.new_task(cluster, definition, {})
    registry.to_pending(task)
    registry.to_running(task)
    assert registry.request_stop(task, model.SPOT_INTERRUPTION, model.SPOT_INTERRUPTED_REASON)
    assert not registry.request_stop(task, model.USER_INITIATED, model.USER_STOPPED_REASON)
    registry.container_exited(task, "app", 143, essential=True)
    registry.to_stopped(task)
    data = task.to_dict()
    assert (data["stopCode"], data["stoppedReason"]) == (
        "SpotInterruption",
        "Your Spot Task was interrupted.",
    )
    assert data["containers"][0]["exitCode"] == 143
    assert registry.status_counts["STOPPED"] == 1 and cluster.counts["RUNNING"] == 0


def test_essential_exit_and_failed_start() -> None:
    registry, cluster, definition = _setup()
    ran = registry.new_task(cluster, definition, {})
    registry.to_running(ran)
    registry.container_exited(ran, "app", 0, essential=True)
    assert (ran.stop_code, ran.stopped_reason) == (
        "EssentialContainerExited",
        "Essential container in task exited",
    )
    never = registry.new_task(cluster, definition, {})
    registry.to_pending(never)
    registry.fail_to_start(never, "CannotPullContainerError: x: not found")
    data = never.to_dict()
    assert data["stopCode"] == "TaskFailedToStart" and "startedAt" not in data
    assert data["containers"][0]["reason"] == data["stoppedReason"]


def test_fargate_only_definitions_are_not_ec2() -> None:
    registry, _, plain = _setup()
    assert plain.ec2 and not plain.fargate
    fargate = registry.register(
        REGION,
        {
            "family": "fg",
            "requiresCompatibilities": ["FARGATE"],
            "containerDefinitions": [{"name": "app", "image": "i"}],
        },
    )
    assert fargate.fargate and not fargate.ec2
    both = registry.register(
        REGION,
        {
            "family": "both",
            "requiresCompatibilities": ["EC2", "FARGATE"],
            "containerDefinitions": [{"name": "app", "image": "i"}],
        },
    )
    assert both.fargate and both.ec2
