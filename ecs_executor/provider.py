"""Airflow provider metadata (entry point ``apache_airflow_provider``), generated from the config model.

One source of truth: every option, type, default and description comes from ``EcsExecutorSettings``,
so ``airflow config list --section aws_ecs_executor`` and our docs cannot drift from what is validated.
"""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin

from ecs_executor import __version__
from ecs_executor.config.settings import SECTION, EcsExecutorSettings

EXAMPLES: dict[str, str] = {
    "cluster": "airflow-tasks",
    "container_name": "airflow-worker",
    "region_name": "eu-west-1",
    "conn_id": "aws_default",
    "task_definition": "airflow-worker:7",
    "launch_type": "FARGATE",
    "capacity_provider_strategy": '[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]',
    "platform_version": "1.4.0",
    "assign_public_ip": "False",
    "subnets": "subnet-0abc,subnet-0def",
    "security_groups": "sg-0123",
    "run_task_kwargs": '{"propagateTags": "TASK_DEFINITION", "enableExecuteCommand": true}',
    "max_run_task_attempts": "3",
    "check_health_on_startup": "True",
    "max_concurrent_calls": "32",
    "run_task_rate": "40",
    "run_task_burst": "100",
    "schedulers_sharing_budget": "2",
    "poll_interval": "2",
    "shutdown_timeout": "30",
    "freeze_gc_on_start": "True",
    "queue_profiles": '{"gpu": {"task_definition": "airflow-gpu", "launch_type": "EC2"}, '
    '"spot": {"capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}}',
    "capacity_wait_seconds": "600",
    "fallback_capacity_provider_strategy": '[{"capacityProvider": "FARGATE", "weight": 1}]',
    "fallback_launch_type": "FARGATE",
    "fallback_after_seconds": "120",
    "relaunch_on_spot_interruption": "False",
    "orphan_sweep": "True",
    "orphan_grace_seconds": "600",
    "derived_definition_retention": "604800",
    "derived_definition_keep": "1",
    "derived_definition_cleanup_interval": "3600",
    "orphan_sweep_interval": "60",
    "workload_kms_key": "alias/airflow-workloads",
    "workload_data_key_seconds": "300",
}
# Declared without a default so an explicit setting can be told apart from "not set"
# (explicit options override run_task_kwargs; defaults do not).
NO_DECLARED_DEFAULT = frozenset({"assign_public_ip"})


def _option_type(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    base = args[0]
    if get_origin(base) is not None:
        return "string"
    if base is bool:
        return "boolean"
    if base is int:
        return "integer"
    if base is float:
        return "float"
    return "string"


def _default(name: str) -> str | None:
    field = EcsExecutorSettings.model_fields[name]
    if name in NO_DECLARED_DEFAULT or field.is_required():
        return None
    value = field.get_default(call_default_factory=True)
    if value is None or value == () or value == {}:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def config_options() -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for name, field in EcsExecutorSettings.model_fields.items():
        required = field.is_required()
        description = (field.description or "").strip()
        if required:
            description = f"Required. {description}"
        model_default = field.get_default(call_default_factory=True) if not required else None
        if name in NO_DECLARED_DEFAULT:
            description += f" Default: {model_default}."
        options[name] = {
            "description": description,
            "version_added": "0.1.0",
            "type": _option_type(field.annotation),
            "example": EXAMPLES.get(name),
            "default": _default(name),
        }
    return options


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "ecs-executor",
        "name": "ECS Executor",
        "description": "Runs every Airflow task instance in its own Amazon ECS task.",
        "versions": [__version__],
        "executors": ["ecs_executor.EcsExecutor"],
        "cli": ["ecs_executor.cli.cli_commands"],
        "config": {
            SECTION: {
                "description": "Options of ecs_executor.EcsExecutor (docs/configuration.md).",
                "options": config_options(),
            }
        },
    }


GENERATED_BEGIN = "<!-- BEGIN GENERATED: python -m ecs_executor.provider -->"
GENERATED_END = "<!-- END GENERATED -->"


def configuration_markdown() -> str:
    """The option table of docs/configuration.md (a test keeps the doc in sync)."""
    rows = ["| option | env var | type | default | description |", "|---|---|---|---|---|"]
    for name, option in config_options().items():
        field = EcsExecutorSettings.model_fields[name]
        default = "(required)" if field.is_required() else f"`{_model_default_text(name)}`"
        env = f"`AIRFLOW__AWS_ECS_EXECUTOR__{name.upper()}`"
        description = option["description"].replace("|", "\\|")
        if option["example"]:
            description += f" Example: `{option['example']}`"
        rows.append(f"| `{name}` | {env} | {option['type']} | {default} | {description} |")
    return "\n".join([GENERATED_BEGIN, *rows, GENERATED_END])


def _model_default_text(name: str) -> str:
    value = EcsExecutorSettings.model_fields[name].get_default(call_default_factory=True)
    if value is None:
        return (
            "auto"
            if name in ("run_task_rate", "run_task_burst", "launch_type", "platform_version")
            else "none"
        )
    if value in ((), {}):
        return "empty"
    return str(value)


if __name__ == "__main__":
    print(configuration_markdown())
