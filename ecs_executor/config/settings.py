"""The ``[aws_ecs_executor]`` configuration: one pydantic settings model, validated once at start-up.

Pure: no AWS calls and no Airflow import. Values arrive through any object with Airflow's
``conf.get(section, key, fallback=...)`` signature (the executor passes its team-scoped ``self.conf``),
so airflow.cfg, ``AIRFLOW__AWS_ECS_EXECUTOR__*`` env vars, ``_cmd``/``_secret`` variants, secrets backends and
multi-team sections all behave exactly as Airflow users expect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ecs_executor.config.checks import cross_field_problems, describe_errors
from ecs_executor.config.source import AirflowConfigSource, ConfLike, DictConf
from ecs_executor.config.values import (
    SECTION,
    CapacityProviderItem,
    QueueProfile,
    TrackingMode,
    check_ids,
    check_kms_key,
    check_queue,
    check_run_task_kwargs_keys,
    launch_type_value,
    lower_or_none,
    parse_json,
    split_ids,
)
from ecs_executor.core.fallback import DEFAULT_FALLBACK_AFTER_SECONDS
from ecs_executor.request.ecs_rules import (
    EC2_RUN_TASK_RATE,
    FARGATE_RUN_TASK_RATE,
    MAX_SECURITY_GROUPS,
    MAX_SUBNETS,
    RUN_TASK_BURST,
)
from ecs_executor.request.layering import base_request, profile_request, targets_fargate


class EcsExecutorConfigError(Exception):
    """Raised at start-up; the message alone tells the operator what to fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Invalid [{SECTION}] configuration ({len(problems)} problem(s)):\n{lines}")


# The clean-up of derived task definitions (engine/definition_cleanup.py).
_RETENTION = (
    "Seconds a task definition this executor derived (tagged ecs-executor:managed=true) may go unused "
    "before the clean-up deregisters and then deletes it: its ecs-executor:last-used tag, or its "
    "registration when untagged, is older, and no task this scheduler tracks or any RUNNING/PENDING task "
    "in its clusters uses it. Definitions without the tag are never touched."
)
_KEEP = (
    "How many of the most recently used derived task definitions per base family the clean-up keeps "
    "however long unused."
)
_CLEANUP = (
    "Seconds between clean-ups of derived task definitions (ListTaskDefinitionFamilies, "
    "ListTaskDefinitions, DescribeTaskDefinition, ListTasks and DescribeTasks; deregistrations paced to a "
    "few a minute, leaving ECS's register/deregister budget to registration)."
)
# The sealed workload (docs/security.md).
_KMS_KEY = (
    "KMS key (key ID, key ARN, alias/NAME or alias ARN; a symmetric ENCRYPT_DECRYPT customer managed key) "
    "that seals every workload: the RunTask command then carries only the encrypted workload, and the "
    "worker container decrypts it with kms:Decrypt under its task role. Unset: the workload travels in "
    "clear, as with Airflow's own ECS executor."
)
_DATA_KEY_SECONDS = (
    "Lifetime of one KMS data key (one kms:GenerateDataKey call) while workload_kms_key is set: every "
    "workload sealed within it uses that data key; none is sealed with it afterwards."
)


class EcsExecutorSettings(BaseSettings):
    """Every ``[aws_ecs_executor]`` option. Field descriptions feed the docs' config reference."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    cluster: str = Field(min_length=1, description="Name or ARN of the ECS cluster that runs the tasks.")
    container_name: str = Field(
        min_length=1,
        description="Container in the task definition that runs the Airflow task command.",
    )
    region_name: str = Field(
        min_length=1,
        validation_alias=AliasChoices("region_name", "region"),
        description="AWS Region of the cluster (``region`` is accepted as an alias).",
    )
    conn_id: str = Field(
        default="aws_default",
        description="Airflow AWS connection for ECS calls; if it does not exist the default AWS "
        "credential chain (env, profile, instance/task role) is used.",
    )
    task_definition: str | None = Field(
        default=None,
        description="Task definition family, family:revision or ARN (latest ACTIVE revision of a family). "
        "Required unless run_task_kwargs sets taskDefinition.",
    )
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = Field(
        default=None,
        description="FARGATE, EC2 or EXTERNAL. Unset (and no capacity_provider_strategy): the cluster's "
        "default capacity provider strategy, or FARGATE when the cluster has none.",
    )
    capacity_provider_strategy: tuple[CapacityProviderItem, ...] | None = Field(
        default=None,
        description='JSON list, e.g. [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]. '
        "Mutually exclusive with launch_type.",
    )
    platform_version: str | None = Field(
        default=None, description="Fargate platform version; defaults to LATEST for Fargate tasks."
    )
    assign_public_ip: bool = Field(
        default=False, description="Give Fargate tasks a public IP (needs subnets)."
    )
    subnets: tuple[str, ...] = Field(
        default=(), description=f"Comma-separated subnet IDs for awsvpc networking (at most {MAX_SUBNETS})."
    )
    security_groups: tuple[str, ...] = Field(
        default=(),
        description=f"Comma-separated security group IDs for awsvpc (at most {MAX_SECURITY_GROUPS}).",
    )
    run_task_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object of extra RunTask arguments; explicit options above take precedence.",
    )
    max_run_task_attempts: int = Field(
        default=3, gt=0, description="Launch attempts per Airflow try for transient ECS launch failures."
    )
    check_health_on_startup: bool = Field(
        default=True, description="Check cluster and task definition when the scheduler starts."
    )
    max_concurrent_calls: int = Field(
        default=32, gt=0, le=1000, description="ECS API calls in flight at once (engine semaphore)."
    )
    run_task_rate: float | None = Field(
        default=None,
        gt=0,
        description=f"RunTask calls per second (client-side token bucket refill). Default "
        f"{EC2_RUN_TASK_RATE:g} for EC2/EXTERNAL, {FARGATE_RUN_TASK_RATE:g} for Fargate.",
    )
    run_task_burst: int | None = Field(
        default=None, gt=0, description=f"RunTask token bucket size. Default {RUN_TASK_BURST}."
    )
    schedulers_sharing_budget: int = Field(
        default=1,
        ge=1,
        le=100,
        description="How many executors launch into this account and Region at once (Airflow HA: one per "
        "scheduler, times the team executors each runs). ECS's API buckets are per account and Region, "
        "so each executor paces itself at this share of run_task_rate, run_task_burst and the "
        "DescribeTasks bucket; the shares add up to ECS's limit instead of N times it.",
    )
    poll_interval: float = Field(
        default=2.0, gt=0, description="Seconds between DescribeTasks sweeps over all tracked tasks."
    )
    shutdown_timeout: float = Field(
        default=30.0, gt=0, description="Seconds end() waits for in-flight launches before returning."
    )
    queue_profiles: dict[str, QueueProfile] = Field(
        default_factory=dict,
        description="JSON object mapping an Airflow queue name to run-task settings for its tasks, layered "
        "over the options above: cluster, task_definition, launch_type or capacity_provider_strategy, "
        "platform_version, subnets, security_groups, assign_public_ip, run_task_kwargs, the typed keys "
        "of executor_config (image, cpu and memory of the task, ephemeral_storage, runtime_platform, gpu, "
        "environment), which a task's own executor_config keys override, and the fallback_* options (see "
        "docs/configuration.md, 'Spot with an on-demand fallback'). Tasks on Airflow's default "
        "queue ([operators] default_queue) use the base options unless a profile has that name; when "
        "profiles are set, a task on any other queue without a profile fails with a reason naming the "
        "queues configured.",
    )
    capacity_wait_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How long a task keeps being relaunched while ECS has no capacity for it (RunTask "
        "failures RESOURCE:*, 'Capacity is unavailable', 'Tasks provisioning capacity limit exceeded'). "
        "Cluster auto scaling takes minutes. Also bounded by the task's Airflow token "
        "([scheduler] task_queued_timeout).",
    )
    fallback_capacity_provider_strategy: tuple[CapacityProviderItem, ...] | None = Field(
        default=None,
        description="JSON list like capacity_provider_strategy: where a try goes for good once its launch "
        "target has had no capacity for fallback_after_seconds, or Spot interrupted it before its "
        "container ran. Or fallback_launch_type (FARGATE, EC2 or EXTERNAL), not both. Unset: no fallback.",
    )
    fallback_launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = Field(
        default=None, description="The fallback target as a launch type (see the option above)."
    )
    fallback_after_seconds: float = Field(
        default=DEFAULT_FALLBACK_AFTER_SECONDS,
        ge=0,
        description="Seconds without capacity before a try moves to its fallback (0..capacity_wait_seconds).",
    )
    relaunch_on_spot_interruption: bool = Field(
        default=False,
        description="Relaunch a task whose Spot capacity was reclaimed (stopCode SpotInterruption, or "
        "TerminationNotice for Spot) before its container ran. A try seen running is never relaunched: "
        "Airflow's Execution API refuses to start a running try again, so Airflow's own retries decide.",
    )
    tracking_mode: TrackingMode | None = Field(
        default=None,
        description="How the engine learns ECS task states. 'polling': DescribeTasks over every tracked task "
        "each poll_interval. 'events': ECS task state change events from an SQS queue (events_queue), fed by "
        "an EventBridge rule, with DescribeTasks only to reconcile. Default: 'events' when events_queue is "
        "set, else 'polling'.",
    )
    events_queue: str | None = Field(
        default=None,
        description="SQS queue (URL, or name in region_name) that an EventBridge rule fills with this "
        "cluster's 'ECS Task State Change' events. One queue per scheduler (see docs/event-tracking.md).",
    )
    events_receivers: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Concurrent SQS long-poll receivers (each takes up to 10 messages per call).",
    )
    reconcile_interval: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description="Events mode: a task not heard of for this many seconds is described (DescribeTasks), "
        "so a lost event delays its end by at most this long. A gap in a task's event versions is "
        "described at once.",
    )
    freeze_gc_on_start: bool = Field(
        default=True,
        description="gc.freeze() once the executor has started, so full garbage collections skip the "
        "scheduler's start-up objects (otherwise ~130 ms pauses that stall the heartbeat).",
    )
    orphan_sweep: bool = Field(
        default=False,
        description="Stop ECS tasks with this executor's startedBy, on its clusters, that no scheduler "
        "tracks any more: not tracked by this scheduler, their task instance in Airflow's DB not queued, "
        "running or restarting with that task's ARN, and not queued by another live scheduler (whose own "
        "sweep judges it), for orphan_grace_seconds. Turn it on for every scheduler. Needs ecs:ListTasks. "
        "See docs/ha.md.",
    )
    orphan_grace_seconds: float = Field(
        default=600.0,
        ge=60,
        le=86400,
        description="How long a task must have been seen untracked, and have existed, before the orphan "
        "sweep stops it. A task another scheduler has just launched is unknown to the DB until that "
        "scheduler stores its ARN, a heartbeat or two later.",
    )
    orphan_sweep_interval: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description="Seconds between orphan sweeps (ListTasks and DescribeTasks per cluster, paced by the "
        "DescribeTasks bucket, and one DB query per 100 untracked tasks).",
    )
    derived_definition_retention: float = Field(default=604800.0, ge=60, le=31536000, description=_RETENTION)
    derived_definition_keep: int = Field(default=1, ge=0, le=100, description=_KEEP)
    derived_definition_cleanup_interval: float = Field(default=3600.0, ge=60, le=86400, description=_CLEANUP)
    workload_kms_key: str | None = Field(default=None, description=_KMS_KEY)
    workload_data_key_seconds: float = Field(default=300.0, ge=60, le=3600, description=_DATA_KEY_SECONDS)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values come only from Airflow's config (see from_conf); never from stray process env.
        return (init_settings,)

    @field_validator("cluster", "container_name", "region_name", "conn_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("task_definition", "platform_version", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    _upper_types = field_validator("launch_type", "fallback_launch_type", mode="before")(launch_type_value)

    @field_validator("capacity_provider_strategy", "fallback_capacity_provider_strategy", mode="before")
    @classmethod
    def _parse_strategy(cls, value: Any) -> Any:
        parsed = parse_json(value, list, "list of {capacityProvider, weight, base} objects")
        if parsed == []:
            return None
        return parsed

    @field_validator("run_task_kwargs", mode="before")
    @classmethod
    def _parse_run_task_kwargs(cls, value: Any) -> Any:
        parsed = parse_json(value, dict, "object")
        return {} if parsed is None else parsed

    @field_validator("run_task_kwargs")
    @classmethod
    def _check_run_task_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_run_task_kwargs_keys(value)

    @field_validator("queue_profiles", mode="before")
    @classmethod
    def _parse_profiles(cls, value: Any) -> Any:
        parsed = parse_json(value, dict, "object of queue name -> settings")
        return {} if parsed is None else parsed

    @field_validator("events_queue", mode="before")
    @classmethod
    def _queue_value(cls, value: Any) -> Any:
        return check_queue(value)

    _kms_key = field_validator("workload_kms_key", mode="before")(check_kms_key)
    _lower_mode = field_validator("tracking_mode", mode="before")(lower_or_none)

    @field_validator("subnets", "security_groups", mode="before")
    @classmethod
    def _parse_ids(cls, value: Any) -> Any:
        return split_ids(value)

    @field_validator("subnets")
    @classmethod
    def _check_subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_ids(value, "subnet-", MAX_SUBNETS, "subnet IDs")

    @field_validator("security_groups")
    @classmethod
    def _check_security_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_ids(value, "sg-", MAX_SECURITY_GROUPS, "security group IDs")

    # -- derived values -------------------------------------------------------------------------

    @property
    def is_fargate(self) -> bool:
        """Whether launches count against Fargate's lower RunTask limit (assumed when the cluster's default
        strategy decides: Fargate is also our fallback)."""
        return targets_fargate(self.base_run_task_kwargs()) is not False

    @property
    def effective_tracking_mode(self) -> TrackingMode:
        if self.tracking_mode is not None:
            return self.tracking_mode
        return "events" if self.events_queue else "polling"

    @property
    def effective_run_task_rate(self) -> float:
        """This executor's share of the account's RunTask rate."""
        rate = self.run_task_rate
        if rate is None:
            rate = FARGATE_RUN_TASK_RATE if self.is_fargate else EC2_RUN_TASK_RATE
        return rate / self.schedulers_sharing_budget

    @property
    def effective_run_task_burst(self) -> int:
        """This executor's share of the account's RunTask burst (at least one call)."""
        burst = self.run_task_burst if self.run_task_burst is not None else RUN_TASK_BURST
        return max(1, burst // self.schedulers_sharing_budget)

    def base_run_task_kwargs(self) -> dict[str, Any]:
        """RunTask arguments shared by every task: defaults < run_task_kwargs < explicit options."""
        return base_request(self)

    def profile_run_task_kwargs(self) -> dict[str, dict[str, Any]]:
        """Each queue profile's RunTask arguments, layered over the base ones."""
        return {name: profile_request(self, profile) for name, profile in self.queue_profiles.items()}

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_conf(cls, conf: ConfLike, team_name: str | None = None) -> EcsExecutorSettings:
        """Read and validate; raise one EcsExecutorConfigError listing every problem found."""
        raw = AirflowConfigSource(cls, conf)()
        try:
            settings = cls(**raw)
        except ValidationError as exc:
            raise EcsExecutorConfigError(describe_errors(exc, raw, team_name)) from None
        problems = cross_field_problems(settings, team_name)
        if problems:
            raise EcsExecutorConfigError(problems)
        return settings


def settings_from_mapping(values: Mapping[str, Any], team_name: str | None = None) -> EcsExecutorSettings:
    """Build settings from option names as written in airflow.cfg (tools, tests, the check CLI)."""
    conf = DictConf({k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})
    return EcsExecutorSettings.from_conf(conf, team_name)
