"""Parsing and checking one option's value, and the nested option models. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ecs_executor.request.ecs_rules import (
    MAX_CAPACITY_BASE,
    MAX_CAPACITY_WEIGHT,
    MAX_SECURITY_GROUPS,
    MAX_SUBNETS,
    request_problems,
)
from ecs_executor.request.task_settings import TaskSettings

SECTION = "aws_ecs_executor"
#: How the engine learns of ECS task state changes: DescribeTasks polling, or ECS task state change
#: events an EventBridge rule puts in an SQS queue.
TrackingMode = Literal["polling", "events"]
TRACKING_MODES: tuple[str, ...] = get_args(TrackingMode)
#: RunTask keys only the executor sets: one task per Airflow try, found again by its token and startedBy.
EXECUTOR_OWNED_KEYS = ("count", "clientToken", "startedBy")


def env_var_name(option: str, team_name: str | None = None) -> str:
    """The environment variable Airflow reads for ``option`` (team-scoped when a team is given)."""
    team = f"{team_name.upper()}___" if team_name else ""
    return f"AIRFLOW__{team}{SECTION.upper()}__{option.upper()}"


def option_label(option: str, team_name: str | None = None) -> str:
    """``option (ENV_VAR)``: how messages name an option, so users find it in either place."""
    return f"{option} ({env_var_name(option, team_name)})"


def executor_owned_keys(kwargs: Mapping[str, Any]) -> list[str]:
    """The keys of ``kwargs`` that only the executor may set (EXECUTOR_OWNED_KEYS), in that order."""
    return [key for key in EXECUTOR_OWNED_KEYS if key in kwargs]


def overrides_our_command(kwargs: Mapping[str, Any], container_name: str) -> bool:
    """Whether RunTask ``kwargs`` override the command of our container: the executor runs the task there."""
    overrides = kwargs.get("overrides") or {}
    items = (overrides.get("containerOverrides") or []) if isinstance(overrides, Mapping) else []
    return any(
        isinstance(item, Mapping) and item.get("name") == container_name and "command" in item
        for item in items
    )


def run_task_param_problems(kwargs: Mapping[str, Any]) -> str | None:
    """Check kwargs against botocore's RunTask input shape; None when valid."""
    params = dict(kwargs)
    params.setdefault("taskDefinition", "placeholder")  # required by the shape; checked elsewhere
    return request_problems("RunTask", params)


def parse_json(value: Any, kind: type, kind_name: str) -> Any:
    if value is None or isinstance(value, kind):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos}); "
            f"expected a JSON {kind_name}"
        ) from None
    if not isinstance(parsed, kind):
        raise ValueError(f"must be a JSON {kind_name}, got a JSON {type(parsed).__name__}")
    return parsed


def split_ids(value: Any) -> Any:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class CapacityProviderItem(BaseModel):
    """One entry of a capacity provider strategy, as RunTask takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacityProvider: str = Field(min_length=1)
    weight: int | None = Field(default=None, ge=0, le=MAX_CAPACITY_WEIGHT)
    base: int | None = Field(default=None, ge=0, le=MAX_CAPACITY_BASE)


def lower_or_none(value: Any) -> Any:
    """An enum-like option written in any case; blank means unset."""
    return (value.strip().lower() or None) if isinstance(value, str) else value


def launch_type_value(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().upper() or None
        if value is not None and value not in ("FARGATE", "EC2", "EXTERNAL"):
            raise ValueError("must be one of FARGATE, EC2, EXTERNAL")
    return value


class QueueProfile(TaskSettings):
    """Run-task settings for the tasks of one Airflow queue, layered over the base options; with the
    typed keys of TaskSettings (image, task-level cpu and memory, ...), below a task's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: str | None = Field(default=None, min_length=1)
    task_definition: str | None = Field(default=None, min_length=1)
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = None
    capacity_provider_strategy: tuple[CapacityProviderItem, ...] | None = Field(default=None, min_length=1)
    platform_version: str | None = Field(default=None, min_length=1)
    subnets: tuple[str, ...] | None = None
    security_groups: tuple[str, ...] | None = None
    assign_public_ip: bool | None = None
    run_task_kwargs: dict[str, Any] = Field(default_factory=dict)
    fallback_launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = None
    fallback_capacity_provider_strategy: tuple[CapacityProviderItem, ...] | None = Field(
        default=None, min_length=1
    )
    fallback_after_seconds: float | None = Field(default=None, ge=0)

    _upper = field_validator("launch_type", "fallback_launch_type", mode="before")(launch_type_value)

    @field_validator("subnets", "security_groups", mode="before")
    @classmethod
    def _parse_ids(cls, value: Any) -> Any:
        return None if value is None else split_ids(value)

    @field_validator("subnets")
    @classmethod
    def _check_subnets(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else check_ids(value, "subnet-", MAX_SUBNETS, "subnet IDs")

    @field_validator("security_groups")
    @classmethod
    def _check_security_groups(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else check_ids(value, "sg-", MAX_SECURITY_GROUPS, "security group IDs")

    @field_validator("run_task_kwargs")
    @classmethod
    def _no_count(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_run_task_kwargs_keys(value)


def check_run_task_kwargs_keys(value: dict[str, Any]) -> dict[str, Any]:
    # Only what no layering can fix is refused here; the whole request is checked once layered.
    bad = executor_owned_keys(value)
    if bad:
        raise ValueError(f"must not set {', '.join(bad)}: the executor sets these for every task")
    return value


def check_ids(value: tuple[str, ...], prefix: str, limit: int, what: str) -> tuple[str, ...]:
    if len(value) > limit:
        raise ValueError(f"at most {limit} {what} are allowed, got {len(value)}")
    bad = [v for v in value if not v.startswith(prefix)]
    if bad:
        raise ValueError(f"{what} must start with '{prefix}', got {', '.join(repr(b) for b in bad)}")
    if len(set(value)) != len(value):
        raise ValueError(f"{what} must not repeat")
    return value


_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")


def is_queue_url(queue: str) -> bool:
    """``events_queue`` holds a URL (used as it is) rather than a name (looked up with GetQueueUrl)."""
    return queue.startswith(("https://", "http://"))


def check_queue(value: Any) -> str | None:
    """An SQS queue URL (http(s)://host/account/name) or a queue name (SQS: up to 80 of A-Z a-z 0-9 - _)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if is_queue_url(text):
        name = text.rstrip("/").rsplit("/", 1)[-1]
        if text.count("/") < 4 or not _QUEUE_NAME.match(name):
            raise ValueError(
                f"{text!r} is not an SQS queue URL; expected https://sqs.<region>.amazonaws.com/<account>/<name>"
            )
        return text
    if not _QUEUE_NAME.match(text):
        raise ValueError(
            f"{text!r} is neither an SQS queue URL nor a queue name (up to 80 letters, digits, '-' or '_')"
        )
    return text


# KMS key identifiers (KMS API reference, "KeyId"): a key ID (a UUID, or mrk- and 32 hex digits for a
# multi-Region key), a key ARN, an alias name or an alias ARN.
_HEX = "[0-9a-fA-F]"
_KMS_KEY_ID = rf"(?:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|mrk-{_HEX}{{32}})"
_KMS_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_KMS_KEY = re.compile(
    rf"^(?:{_KMS_KEY_ID}|{_KMS_ALIAS}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{{12}}:(?:key/{_KMS_KEY_ID}|{_KMS_ALIAS}))$"
)
KMS_KEY_ALLOWED = (
    "a key ID (1234abcd-12ab-34cd-56ef-1234567890ab, or mrk-... for a multi-Region key), a key ARN "
    "(arn:aws:kms:REGION:ACCOUNT:key/ID), an alias name (alias/NAME) or an alias ARN "
    "(arn:aws:kms:REGION:ACCOUNT:alias/NAME)"
)


def check_kms_key(value: Any) -> str | None:
    """``workload_kms_key``: blank means unset (plain workloads); otherwise one of KMS's key identifiers."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if not _KMS_KEY.match(text):
        raise ValueError(f"is not a KMS key identifier; expected {KMS_KEY_ALLOWED}")
    if re.search(r"(^|:)alias/aws/", text):
        raise ValueError(
            "names an AWS managed key (alias/aws/...), which only its own AWS service may use; name a "
            "symmetric customer managed key"
        )
    return text
