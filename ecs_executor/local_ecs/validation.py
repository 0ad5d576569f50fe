"""What ECS refuses beyond the service model's shapes, with ECS's own messages.

A RegisterTaskDefinition's values (names, Fargate sizes, container memory) and a RunTask's (count, token,
launch target against the cluster, network, overrides against the task definition). Whether a request
fits the service model at all is ``ecs_rules.request_problems``'s job, done before any of this.
"""

from __future__ import annotations

import re
from typing import Any

from ecs_executor.local_ecs.model import Cluster, EcsError, TaskDefinition, invalid
from ecs_executor.request.ecs_rules import (
    MAX_CLIENT_TOKEN,
    MAX_OVERRIDES_CHARS,
    MAX_RUN_COUNT,
    MAX_SECURITY_GROUPS,
    MAX_STARTED_BY,
    MAX_SUBNETS,
    container_memory_problem,
    cpu_units,
    fargate_size_problem,
    launch_target_problems,
    memory_mib,
    model_enum,
    overrides_size,
    resolve_launch_target,
    tag_problems,
)

#: What ECS accepts as a cluster, family or container name.
NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def validate_tags(tags: Any) -> list[dict[str, str]]:
    """Tags checked against ECS's limits, each with a ``value`` (ECS stores a missing one as "")."""
    problem = tag_problems(tags)
    if problem is not None:
        raise invalid(problem)
    return [{"key": tag["key"], "value": tag.get("value", "")} for tag in tags or []]


def _container_definition(
    container: dict[str, Any], params: dict[str, Any], names: set[str]
) -> dict[str, Any]:
    """One container definition checked (``names``: those seen before it) and with ECS's defaults."""
    name = container.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise EcsError(
            "ClientException",
            "Container name is required: up to 255 letters, numbers, hyphens, underscores.",
        )
    if name in names:
        raise EcsError("ClientException", f"Duplicate container name '{name}'.")
    names.add(name)
    if not container.get("image"):
        raise EcsError(
            "ClientException", f"Container.image should not be null or empty (container '{name}')."
        )
    if not params.get("memory") and not (container.get("memory") or container.get("memoryReservation")):
        raise EcsError(
            "ClientException",
            f"Invalid setting for container '{name}'. At least one of 'memory' or "
            "'memoryReservation' must be specified.",
        )
    memory_problem = container_memory_problem(params.get("memory"), container)
    if memory_problem is not None:
        raise EcsError("ClientException", memory_problem)
    return {
        "cpu": 0,
        "essential": True,
        "portMappings": [],
        "environment": [],
        "mountPoints": [],
        "volumesFrom": [],
        "systemControls": [],
        **container,
    }


def task_definition_spec(params: dict[str, Any]) -> dict[str, Any]:
    """A RegisterTaskDefinition request checked as ECS does, then stored as ECS stores it."""
    family = params.get("family")
    if not isinstance(family, str) or not NAME.match(family):
        raise EcsError(
            "ClientException", "Family can have up to 255 letters, numbers, hyphens and underscores."
        )
    containers = params.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise EcsError("ClientException", "Container list cannot be empty.")
    fargate = "FARGATE" in (params.get("requiresCompatibilities") or [])
    if fargate and params.get("networkMode") != "awsvpc":
        raise EcsError("ClientException", "Fargate only supports network mode 'awsvpc'.")
    if fargate and not (params.get("cpu") and params.get("memory")):
        raise EcsError(
            "ClientException", "Fargate requires that 'cpu' and 'memory' be defined at the task level."
        )
    if fargate:
        size_problem = fargate_size_problem(params.get("cpu"), params.get("memory"))
        if size_problem is not None:
            raise EcsError("ClientException", size_problem)
    _runtime_platform(params.get("runtimePlatform"), fargate)
    if fargate and any(
        r.get("type") == "GPU" for c in containers for r in (c.get("resourceRequirements") or [])
    ):
        raise EcsError(
            "ClientException", "Fargate does not support GPU resource requirements (requiresCompatibilities)."
        )
    names: set[str] = set()
    normalized = [_container_definition(container, params, names) for container in containers]
    if not any(c["essential"] for c in normalized):
        raise EcsError("ClientException", "Task definition must have at least one essential container.")
    tags = validate_tags(params.get("tags"))
    spec = {**params, "containerDefinitions": normalized, "tags": tags}
    # ECS stores "1 vCPU" / "2 GB" as CPU units and MiB.
    if (units := cpu_units(params.get("cpu"))) is not None:
        spec["cpu"] = str(units)
    if (mib := memory_mib(params.get("memory"))) is not None:
        spec["memory"] = str(mib)
    return spec


def _runtime_platform(platform: Any, fargate: bool) -> None:
    """ECS's enums for the platform (botocore's validator does not check enums)."""
    if not platform:
        return
    for key, shape in (("cpuArchitecture", "CPUArchitecture"), ("operatingSystemFamily", "OSFamily")):
        value = platform.get(key)
        if value is not None and value not in model_enum(shape):
            raise EcsError(
                "ClientException",
                f"Invalid runtimePlatform.{key} '{value}'; allowed: {', '.join(model_enum(shape))}.",
            )


def validate_run_task(cluster: Cluster, definition: TaskDefinition, params: dict[str, Any]) -> int:
    """A RunTask request's values, checked as ECS does; returns how many tasks it asks for."""
    count = params.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= MAX_RUN_COUNT:
        raise invalid(f"Count must be between 1 and {MAX_RUN_COUNT}.")
    token = params.get("clientToken")
    if token is not None and not 1 <= len(str(token)) <= MAX_CLIENT_TOKEN:
        raise invalid(f"clientToken length must be between 1 and {MAX_CLIENT_TOKEN}.")
    started_by = params.get("startedBy")
    if started_by is not None and len(str(started_by)) > MAX_STARTED_BY:
        raise invalid(f"startedBy length must be at most {MAX_STARTED_BY}.")
    _launch_target(cluster, definition, params)
    _network(definition, params)
    _overrides(definition, params)
    validate_tags(params.get("tags"))
    return count


def _launch_target(cluster: Cluster, definition: TaskDefinition, params: dict[str, Any]) -> None:
    """Where the task would run: the request's launch type or strategy, the cluster default, or EC2."""
    problem = launch_target_problems(params)
    if problem is not None:
        raise invalid(problem)
    strategy = params.get("capacityProviderStrategy") or (
        [] if params.get("launchType") else cluster.default_strategy
    )
    for item in strategy:
        if item.get("capacityProvider") not in cluster.capacity_providers:
            raise invalid(
                "The specified capacity provider strategy cannot contain a capacity provider that is "
                "not associated with the cluster. Associate the capacity provider with the cluster or "
                f"specify a valid capacity provider and try again. ({item.get('capacityProvider')})"
            )
    launch_type, _ = resolve_launch_target(params, cluster.default_strategy)
    if launch_type == "FARGATE":
        if not definition.fargate:
            raise invalid("Task definition does not support launch_type FARGATE.")
        return
    if params.get("platformVersion"):
        raise invalid(f"The platform version must be null when specifying an {launch_type} launch type.")
    if not definition.ec2:
        # The endpoint stands in for EC2 container instances only for task definitions that do not
        # require Fargate; on a cluster without instances ECS answers this for any EC2 launch.
        raise invalid("No Container Instances were found in your cluster.")


def _network(definition: TaskDefinition, params: dict[str, Any]) -> None:
    """awsvpc needs subnets (within ECS's limits); any other network mode takes no configuration."""
    network = params.get("networkConfiguration")
    awsvpc = (network or {}).get("awsvpcConfiguration") or {}
    if definition.spec.get("networkMode") != "awsvpc":
        if network:
            raise invalid(
                "Network Configuration is not valid for the given networkMode of this task definition."
            )
        return
    subnets = awsvpc.get("subnets") or []
    if not subnets:
        raise invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    if len(subnets) > MAX_SUBNETS:
        raise invalid(f"subnets can have at most {MAX_SUBNETS} items.")
    if len(awsvpc.get("securityGroups") or []) > MAX_SECURITY_GROUPS:
        raise invalid(f"securityGroups can have at most {MAX_SECURITY_GROUPS} items.")


def _overrides(definition: TaskDefinition, params: dict[str, Any]) -> None:
    """Overrides: ECS's size limit, Fargate sizes, known container names, container memory."""
    overrides = params.get("overrides")
    if overrides is None:
        return
    if overrides_size(overrides) > MAX_OVERRIDES_CHARS:
        raise invalid(f"Container Overrides length must be at most {MAX_OVERRIDES_CHARS}")
    task_memory = overrides.get("memory") or definition.spec.get("memory")
    if definition.fargate and (overrides.get("cpu") or overrides.get("memory")):
        cpu = overrides.get("cpu") or definition.spec.get("cpu")
        size_problem = fargate_size_problem(cpu, task_memory)
        if size_problem is not None:
            raise invalid(size_problem)
    by_name = {o.get("name"): o for o in overrides.get("containerOverrides") or []}
    for name in by_name:
        if name not in definition.containers:
            raise invalid(f"Override for container named {name} is not a container in the TaskDefinition.")
    for name, container in definition.containers.items():
        override = by_name.get(name) or {}
        effective = {
            "name": name,
            **{key: container[key] for key in ("memory", "memoryReservation") if key in container},
            **{key: override[key] for key in ("memory", "memoryReservation") if key in override},
        }
        memory_problem = container_memory_problem(task_memory, effective)
        if memory_problem is not None:
            raise invalid(memory_problem)
