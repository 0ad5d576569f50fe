"""Problems that involve more than one option, and pydantic's errors told as option, env var, value and
what is allowed. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ecs_executor.config.values import (
    env_var_name,
    option_label,
    overrides_our_command,
    run_task_param_problems,
)
from ecs_executor.core.fallback import fallback_for, switch, target_label
from ecs_executor.request.layering import (
    LAUNCH_TYPE,
    STRATEGY,
    base_request,
    options_kwargs,
    profile_request,
    targets_fargate,
)
from ecs_executor.request.task_settings import conflicts, target_problems, typed_part

if TYPE_CHECKING:
    from ecs_executor.config.settings import EcsExecutorSettings


def describe_errors(exc: ValidationError, raw: Mapping[str, Any], team_name: str | None) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        field = str(loc[0]) if loc else ""
        option = field
        msg = err["msg"].removeprefix("Value error, ")
        where = option_label(option, team_name)
        if field == "region_name":
            where = f"{option} (or region; {env_var_name(option, team_name)})"
        if len(loc) == 1 and err["type"] == "missing":
            problems.append(f"{where} is required but not set")
            continue
        if len(loc) > 1:
            inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
            msg = f"{msg} (at {option}{inner})"
        value = raw.get(field, err.get("input"))
        problems.append(f"{where} = {_shorten(value)!r}: {msg}")
    return problems


def _shorten(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cross_field_problems(s: EcsExecutorSettings, team_name: str | None = None) -> list[str]:
    """Problems that involve more than one option; each names the options and what is allowed."""

    def opt(name: str) -> str:
        return option_label(name, team_name)

    problems: list[str] = []
    rtk = s.run_task_kwargs
    explicit = options_kwargs(s)
    base = base_request(s)

    if "taskDefinition" not in base:
        problems.append(
            f"{opt('task_definition')} is required but not set (or set taskDefinition in run_task_kwargs)"
        )
    elif s.task_definition and rtk.get("taskDefinition") not in (None, s.task_definition):
        problems.append(
            f"{opt('task_definition')} = {s.task_definition!r} conflicts with taskDefinition = "
            f"{rtk['taskDefinition']!r} in {opt('run_task_kwargs')}; set it in one place only"
        )

    if s.tracking_mode == "events" and not s.events_queue:
        problems.append(
            f"{opt('tracking_mode')} = 'events' needs {opt('events_queue')}: the SQS queue an EventBridge "
            "rule fills with ECS task state change events (or set tracking_mode = 'polling')"
        )

    if "launchType" in base and "capacityProviderStrategy" in base:
        lt_from = "launch_type" if "launchType" in explicit else "run_task_kwargs.launchType"
        cps_from = (
            "capacity_provider_strategy"
            if "capacityProviderStrategy" in explicit
            else "run_task_kwargs.capacityProviderStrategy"
        )
        problems.append(
            f"{opt(lt_from.split('.')[0])}: {lt_from} = {base['launchType']!r} cannot be combined with "
            f"{cps_from}; ECS accepts either a launch type or a capacity provider strategy, not both"
        )

    problems += _fargate_only_problems(base, opt)
    if overrides_our_command(rtk, s.container_name):
        problems.append(
            f"{opt('run_task_kwargs')} sets the command of container {s.container_name!r}; the "
            "executor sets that command for every task, remove it"
        )
    problem = run_task_param_problems(base)
    if problem and not problems:
        problems.append(
            f"{opt('run_task_kwargs')}: the RunTask request layered from run_task_kwargs and the options "
            f"does not match the ECS RunTask API: {problem}"
        )
    if not problems:
        problems.extend(_profile_problems(s, opt("queue_profiles")))
    if not problems:
        problems.extend(_fallback_problems(s, opt))
    return problems


def _fallback_problems(s: EcsExecutorSettings, opt: Any) -> list[str]:
    """Per layer: one fallback target at most, a wait within capacity_wait_seconds, and a RunTask request
    that is still valid once its target is replaced by the fallback's."""
    problems: list[str] = []
    wait = f"{opt('capacity_wait_seconds')} = {s.capacity_wait_seconds:g}"
    layers: list[tuple[str, Any, Any, dict[str, Any]]] = [("", s, None, base_request(s))]
    layers += [
        (f"{opt('queue_profiles')}[{queue!r}]: ", p, p, profile_request(s, p))
        for queue, p in s.queue_profiles.items()
    ]
    for where, layer, profile, request in layers:
        name = (lambda option: option) if where else opt
        if layer.fallback_launch_type and layer.fallback_capacity_provider_strategy:
            problems.append(
                f"{where}{name('fallback_launch_type')} = {layer.fallback_launch_type!r} and "
                f"{name('fallback_capacity_provider_strategy')} are both set; set one of them"
            )
            continue
        fallback = fallback_for(s, profile)
        # Airflow hands the base option's default over as if set: only a profile's own value is "set".
        own_after = bool(where) and "fallback_after_seconds" in layer.model_fields_set
        after = fallback.after_seconds if fallback is not None else layer.fallback_after_seconds
        if (fallback is not None or own_after) and after is not None and after > s.capacity_wait_seconds:
            option = name("fallback_after_seconds") if own_after else opt("fallback_after_seconds")
            problems.append(
                f"{where}{option} = {after:g} must be at most {wait}: a try waiting for capacity gives "
                "up after capacity_wait_seconds"
            )
        if fallback is not None:
            base_option = (
                "fallback_launch_type" if s.fallback_launch_type else "fallback_capacity_provider_strategy"
            )
            named = where or f"{opt(base_option)}: "
            problems += _fallback_request_problems(named, request, switch(request, fallback))
    return problems


def _fallback_request_problems(where: str, preferred: dict[str, Any], moved: dict[str, Any]) -> list[str]:
    label = target_label(moved)
    if any(preferred.get(k) for k in (LAUNCH_TYPE, STRATEGY)) and label == target_label(preferred):
        return [f"{where}the fallback target {label} is the launch target itself; name another one"]
    awsvpc = moved.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    if targets_fargate(moved) and targets_fargate(preferred) is False and not awsvpc.get("subnets"):
        return [f"{where}the fallback target {label} is Fargate, which needs subnets (awsvpc); set subnets"]
    if awsvpc.get("assignPublicIp") == "ENABLED" and targets_fargate(moved) is False:
        return [f"{where}the fallback target {label} cannot take assign_public_ip = True (Fargate only)"]
    problem = run_task_param_problems(moved)
    if problem:
        return [
            f"{where}the RunTask request on the fallback target {label} does not match the ECS "
            f"RunTask API: {problem}"
        ]
    return []


def _fargate_only_problems(base: Mapping[str, Any], opt: Any) -> list[str]:
    problems = []
    launch_type = base.get("launchType")
    if launch_type in ("EC2", "EXTERNAL") and "platformVersion" in base:
        problems.append(
            f"{opt('platform_version')} = {base['platformVersion']!r} applies only to Fargate tasks, "
            f"but launch_type is {launch_type}; remove platform_version"
        )
    awsvpc = base.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    if awsvpc.get("assignPublicIp") == "ENABLED":
        if launch_type in ("EC2", "EXTERNAL"):
            problems.append(
                f"{opt('assign_public_ip')} = True applies only to Fargate tasks, but launch_type is "
                f"{launch_type}; set it to False"
            )
        if not awsvpc.get("subnets"):
            problems.append(f"{opt('assign_public_ip')} = True needs {opt('subnets')} to be set")
    return problems


def _profile_problems(s: EcsExecutorSettings, option: str) -> list[str]:
    """Each profile's own conflicts, then its whole layered request against botocore's RunTask model."""
    problems: list[str] = []
    for name, profile in s.queue_profiles.items():
        where = f"{option}[{name!r}]"
        if profile.launch_type and profile.capacity_provider_strategy:
            problems.append(
                f"{where} sets both launch_type and capacity_provider_strategy; ECS accepts one of them"
            )
            continue
        typed = typed_part(profile)
        same_layer = conflicts(profile.run_task_kwargs, typed, s.container_name)
        layered = profile_request(s, profile)
        typed_problems = same_layer or target_problems(
            typed, layered, s.container_name, targets_fargate(layered)
        )
        problems.extend(f"{where}: {text}" for text in typed_problems)
        if layered.get("launchType") in ("EC2", "EXTERNAL") and "platformVersion" in layered:
            problems.append(f"{where}: platform_version applies only to Fargate, not {layered['launchType']}")
        if overrides_our_command(layered, s.container_name):
            problems.append(f"{where} sets the command of container {s.container_name!r}; remove it")
        problem = run_task_param_problems(layered)
        if problem:
            problems.append(
                f"{where}: the layered RunTask request does not match the ECS RunTask API: {problem}"
            )
    return problems
