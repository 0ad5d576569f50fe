"""How RunTask arguments are layered. Pure: dicts in, dicts out.

From lowest to highest: ``run_task_kwargs`` < explicit options < the task's queue profile (its own
``run_task_kwargs`` < its options, typed keys included) < the task's ``executor_config`` (its RunTask
arguments, then its typed keys, request/task_settings.py) < what the executor owns. Dicts merge
recursively; lists are replaced, except container overrides and environments, merged by name.

A launch target set by a higher layer *replaces* the lower one: ECS refuses a request with both a
``launchType`` and a ``capacityProviderStrategy``, so a per-task strategy drops the configured launch type
(and vice versa), and ``platformVersion`` goes when the target is no longer Fargate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecs_executor.request.ecs_rules import FARGATE_CAPACITY_PROVIDERS
from ecs_executor.request.task_settings import TaskSettings, run_task_overrides, typed_part

LAUNCH_TYPE = "launchType"
STRATEGY = "capacityProviderStrategy"
PLATFORM_VERSION = "platformVersion"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists are replaced except containerOverrides (merged by container name)."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if key == "containerOverrides" and isinstance(current, list) and isinstance(value, list):
            merged[key] = merge_named_list(current, value, merge_container=True)
        elif key == "environment" and isinstance(current, list) and isinstance(value, list):
            merged[key] = merge_named_list(current, value)
        elif isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def merge_named_list(base: list[Any], override: list[Any], *, merge_container: bool = False) -> list[Any]:
    """Merge lists of {"name": ...} objects by name, keeping order; later entries win."""
    result: list[Any] = [dict(item) if isinstance(item, Mapping) else item for item in base]
    index = {item.get("name"): i for i, item in enumerate(result) if isinstance(item, Mapping)}
    for item in override:
        name = item.get("name") if isinstance(item, Mapping) else None
        if name is not None and name in index:
            current = result[index[name]]
            result[index[name]] = deep_merge(current, item) if merge_container else dict(item)
        else:
            if name is not None:
                index[name] = len(result)
            result.append(item)
    return result


def targets_fargate(kwargs: Mapping[str, Any]) -> bool | None:
    """True/False when the request's own launch target decides it; None when the cluster default does."""
    if kwargs.get(LAUNCH_TYPE):
        return kwargs[LAUNCH_TYPE] == "FARGATE"
    strategy = kwargs.get(STRATEGY)
    if strategy:
        return all(
            isinstance(item, Mapping) and item.get("capacityProvider") in FARGATE_CAPACITY_PROVIDERS
            for item in strategy
        )
    return None


def overlay(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, with a launch target in ``top`` replacing the one in ``base``."""
    merged = deep_merge(base, top)
    if STRATEGY in top and LAUNCH_TYPE not in top:
        merged.pop(LAUNCH_TYPE, None)
    if LAUNCH_TYPE in top and STRATEGY not in top:
        merged.pop(STRATEGY, None)
    if PLATFORM_VERSION not in top and targets_fargate(merged) is False:
        merged.pop(PLATFORM_VERSION, None)
    return merged


def fill_launch_target(kwargs: dict[str, Any], cluster_default_strategy: list[Any] | None) -> dict[str, Any]:
    """Leave the target to ECS when the cluster has a default strategy; otherwise Fargate (our choice).

    ECS itself uses the cluster's ``defaultCapacityProviderStrategy`` for a request that names neither
    a launch type nor a strategy, and the EC2 launch type when the cluster has none. We choose Fargate in
    that last case: an executor cluster with no EC2 instances is the common set-up.
    """
    if LAUNCH_TYPE in kwargs or STRATEGY in kwargs or cluster_default_strategy:
        return kwargs
    resolved = dict(kwargs)
    resolved[LAUNCH_TYPE] = "FARGATE"
    resolved.setdefault(PLATFORM_VERSION, "LATEST")
    return resolved


def options_kwargs(options: Any, container_name: str | None = None) -> dict[str, Any]:
    """RunTask arguments for the explicit options set on ``options`` (settings or a queue profile)."""
    fields = options.model_fields_set
    explicit: dict[str, Any] = {}
    if getattr(options, "cluster", None):
        explicit["cluster"] = options.cluster
    if getattr(options, "task_definition", None):
        explicit["taskDefinition"] = options.task_definition
    if getattr(options, "launch_type", None):
        explicit[LAUNCH_TYPE] = options.launch_type
    if getattr(options, "capacity_provider_strategy", None):
        explicit[STRATEGY] = [
            item.model_dump(exclude_none=True) for item in options.capacity_provider_strategy
        ]
    if getattr(options, "platform_version", None):
        explicit[PLATFORM_VERSION] = options.platform_version
    awsvpc: dict[str, Any] = {}
    if getattr(options, "subnets", None):
        awsvpc["subnets"] = list(options.subnets)
    if getattr(options, "security_groups", None):
        awsvpc["securityGroups"] = list(options.security_groups)
    if "assign_public_ip" in fields:
        awsvpc["assignPublicIp"] = "ENABLED" if options.assign_public_ip else "DISABLED"
    if awsvpc:
        explicit["networkConfiguration"] = {"awsvpcConfiguration": awsvpc}
    if container_name and isinstance(options, TaskSettings):
        # A queue profile's typed keys RunTask can carry: task-level cpu/memory, storage, environment.
        explicit.update(run_task_overrides(typed_part(options), container_name))
    return explicit


def finish(layered: dict[str, Any]) -> dict[str, Any]:
    """Defaults that depend on the whole request, and a stable key order for logs and tests."""
    awsvpc = layered.get("networkConfiguration", {}).get("awsvpcConfiguration")
    if isinstance(awsvpc, dict) and "assignPublicIp" not in awsvpc:
        layered["networkConfiguration"] = deep_merge(
            layered["networkConfiguration"], {"awsvpcConfiguration": {"assignPublicIp": "DISABLED"}}
        )
    return {k: layered[k] for k in sorted(layered)}


def base_request(s: Any) -> dict[str, Any]:
    """The RunTask arguments every task shares: ``run_task_kwargs`` < explicit options (settings ``s``)."""
    layered = deep_merge(s.run_task_kwargs, options_kwargs(s))
    # No launch target forced here: the cluster's default strategy may apply (fill_launch_target).
    if layered.get(LAUNCH_TYPE) == "FARGATE" and PLATFORM_VERSION not in layered:
        layered[PLATFORM_VERSION] = "LATEST"
    return finish(layered)


def profile_request(s: Any, profile: Any) -> dict[str, Any]:
    """A queue profile's RunTask arguments: the base ones < its ``run_task_kwargs`` < its options."""
    layered = overlay(
        overlay(base_request(s), profile.run_task_kwargs), options_kwargs(profile, s.container_name)
    )
    if layered.get(LAUNCH_TYPE) == "FARGATE" and PLATFORM_VERSION not in layered:
        layered[PLATFORM_VERSION] = "LATEST"
    return finish(layered)
