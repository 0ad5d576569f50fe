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
from ecs_executor.request.layering import base_request, options_kwargs, profile_request, targets_fargate
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
    return problems


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
