"""The ``[aws_ecs_executor]`` configuration: one pydantic settings model, validated once at start-up.

Pure: no AWS calls and no Airflow import. Values arrive through any object with Airflow's
``conf.get(section, key, fallback=...)`` signature (the executor passes its team-scoped ``self.conf``),
so airflow.cfg, ``AIRFLOW__AWS_ECS_EXECUTOR__*`` env vars, ``_cmd``/``_secret`` variants, secrets backends and
multi-team sections all behave exactly as Airflow users expect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, Protocol

from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel
from botocore.session import get_session
from botocore.validate import ParamValidator
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ecs_executor.layering import FARGATE_CAPACITY_PROVIDERS as FARGATE_CAPACITY_PROVIDERS  # re-exported
from ecs_executor.layering import deep_merge, finish, options_kwargs, overlay, targets_fargate
from ecs_executor.layering import merge_named_list as merge_named_list  # re-exported

SECTION = "aws_ecs_executor"

# ECS API limits (AWS docs "Amazon ECS service quotas" / RunTask reference).
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5
# Client-side RunTask token bucket defaults, sized to ECS's "cluster resource modify" bucket
# (burst 100, refill 40/s) and Fargate's RunTask limit (20/s).
EC2_RUN_TASK_RATE = 40.0
FARGATE_RUN_TASK_RATE = 20.0
RUN_TASK_BURST = 100


class ConfLike(Protocol):
    """The slice of Airflow's (team-scoped) config API we read from."""

    def get(self, section: str, key: str, **kwargs: Any) -> str | None: ...


class EcsExecutorConfigError(Exception):
    """Raised at start-up; the message alone tells the operator what to fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Invalid [{SECTION}] configuration ({len(problems)} problem(s)):\n{lines}")


def env_var_name(option: str, team_name: str | None = None) -> str:
    """The environment variable Airflow reads for ``option`` (team-scoped when a team is given)."""
    team = f"{team_name.upper()}___" if team_name else ""
    return f"AIRFLOW__{team}{SECTION.upper()}__{option.upper()}"


@cache
def run_task_operation() -> OperationModel:
    """botocore's RunTask model: the single authority on which keys RunTask accepts."""
    return get_session().get_service_model("ecs").operation_model("RunTask")


def run_task_param_problems(kwargs: Mapping[str, Any]) -> str | None:
    """Check kwargs against botocore's RunTask input shape; None when valid."""
    params = dict(kwargs)
    params.setdefault("taskDefinition", "placeholder")  # required by the shape; checked elsewhere
    try:
        report = ParamValidator().validate(params, run_task_operation().input_shape)
    except Exception as exc:  # pragma: no cover - botocore internals
        return str(exc)
    if report.has_errors():
        return str(ParamValidationError(report=report.generate_report())).replace("\n", " ")
    return None


def _parse_json(value: Any, kind: type, kind_name: str) -> Any:
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


def _split_ids(value: Any) -> Any:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class CapacityProviderItem(BaseModel):
    """One entry of a capacity provider strategy, as RunTask takes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacityProvider: str = Field(min_length=1)
    weight: int | None = Field(default=None, ge=0, le=1000)
    base: int | None = Field(default=None, ge=0, le=100000)


def _launch_type(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().upper() or None
        if value is not None and value not in ("FARGATE", "EC2", "EXTERNAL"):
            raise ValueError("must be one of FARGATE, EC2, EXTERNAL")
    return value


class QueueProfile(BaseModel):
    """Run-task settings for the tasks of one Airflow queue, layered over the base options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: str | None = Field(default=None, min_length=1)
    task_definition: str | None = Field(default=None, min_length=1)
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = None
    capacity_provider_strategy: tuple[CapacityProviderItem, ...] | None = Field(default=None, min_length=1)
    platform_version: str | None = Field(default=None, min_length=1)
    subnets: tuple[str, ...] | None = None
    security_groups: tuple[str, ...] | None = None
    assign_public_ip: bool | None = None
    cpu: int | None = Field(default=None, ge=0, description="container-level CPU units for our container")
    memory: int | None = Field(
        default=None, gt=0, description="container-level memory (MiB) for our container"
    )
    run_task_kwargs: dict[str, Any] = Field(default_factory=dict)

    _upper = field_validator("launch_type", mode="before")(_launch_type)

    @field_validator("subnets", "security_groups", mode="before")
    @classmethod
    def _parse_ids(cls, value: Any) -> Any:
        return None if value is None else _split_ids(value)

    @field_validator("subnets")
    @classmethod
    def _check_subnets(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_ids(value, "subnet-", MAX_SUBNETS, "subnet IDs")

    @field_validator("security_groups")
    @classmethod
    def _check_security_groups(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_ids(value, "sg-", MAX_SECURITY_GROUPS, "security group IDs")

    @field_validator("run_task_kwargs")
    @classmethod
    def _no_count(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_run_task_kwargs_keys(value)


def _check_run_task_kwargs_keys(value: dict[str, Any]) -> dict[str, Any]:
    # Only what no layering can fix is refused here; the whole request is checked once layered.
    bad = [k for k in ("count", "clientToken", "startedBy") if k in value]
    if bad:
        raise ValueError(f"must not set {', '.join(bad)}: the executor sets these for every task")
    return value


class _AirflowConfigSource(PydanticBaseSettingsSource):
    """Feeds the model from Airflow's config; only options the user set are returned."""

    def __init__(self, settings_cls: type[BaseSettings], conf: ConfLike):
        super().__init__(settings_cls)
        self._conf = conf

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        names = [field_name]
        if isinstance(field.validation_alias, AliasChoices):
            names = [str(c) for c in field.validation_alias.choices]
        for name in names:
            value = self._conf.get(SECTION, name, fallback=None)
            if value is not None and str(value) != "":
                return value, field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


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
        description="FARGATE, EC2 or EXTERNAL. Default FARGATE unless a capacity provider strategy is set.",
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
        default=3, gt=0, description="Launch attempts per task try for transient ECS launch failures."
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
        "platform_version, subnets, security_groups, assign_public_ip, cpu and memory (of our container) "
        "and run_task_kwargs. Tasks on Airflow's default queue ([operators] default_queue) use the base "
        "options unless a profile has that name; when profiles are set, a task on any other queue "
        "without a profile fails with a reason naming the queues configured.",
    )
    capacity_wait_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How long a task keeps being relaunched while ECS has no capacity for it (RunTask "
        "failures RESOURCE:*, 'Capacity is unavailable', 'Tasks provisioning capacity limit exceeded'). "
        "Cluster auto scaling takes minutes. Also bounded by the task's Airflow token "
        "([scheduler] task_queued_timeout).",
    )
    relaunch_on_spot_interruption: bool = Field(
        default=False,
        description="Relaunch a task whose Fargate Spot / Spot capacity was reclaimed (stopCode "
        "SpotInterruption). Off by default: the try had started, so Airflow's own retries normally decide.",
    )
    freeze_gc_on_start: bool = Field(
        default=True,
        description="gc.freeze() once the executor has started, so full garbage collections skip the "
        "scheduler's start-up objects (otherwise ~130 ms pauses that stall the heartbeat).",
    )

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

    _upper_launch_type = field_validator("launch_type", mode="before")(_launch_type)

    @field_validator("capacity_provider_strategy", mode="before")
    @classmethod
    def _parse_strategy(cls, value: Any) -> Any:
        parsed = _parse_json(value, list, "list of {capacityProvider, weight, base} objects")
        if parsed == []:
            return None
        return parsed

    @field_validator("run_task_kwargs", mode="before")
    @classmethod
    def _parse_run_task_kwargs(cls, value: Any) -> Any:
        parsed = _parse_json(value, dict, "object")
        return {} if parsed is None else parsed

    @field_validator("run_task_kwargs")
    @classmethod
    def _check_run_task_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_run_task_kwargs_keys(value)

    @field_validator("queue_profiles", mode="before")
    @classmethod
    def _parse_profiles(cls, value: Any) -> Any:
        parsed = _parse_json(value, dict, "object of queue name -> settings")
        return {} if parsed is None else parsed

    @field_validator("subnets", "security_groups", mode="before")
    @classmethod
    def _parse_ids(cls, value: Any) -> Any:
        return _split_ids(value)

    @field_validator("subnets")
    @classmethod
    def _check_subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(value, "subnet-", MAX_SUBNETS, "subnet IDs")

    @field_validator("security_groups")
    @classmethod
    def _check_security_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(value, "sg-", MAX_SECURITY_GROUPS, "security group IDs")

    # -- derived values -------------------------------------------------------------------------

    @property
    def is_fargate(self) -> bool:
        """Whether launches count against Fargate's lower RunTask limit (assumed when the cluster's default
        strategy decides: Fargate is also our fallback)."""
        return targets_fargate(self.base_run_task_kwargs()) is not False

    @property
    def effective_run_task_rate(self) -> float:
        if self.run_task_rate is not None:
            return self.run_task_rate
        return FARGATE_RUN_TASK_RATE if self.is_fargate else EC2_RUN_TASK_RATE

    @property
    def effective_run_task_burst(self) -> int:
        return self.run_task_burst if self.run_task_burst is not None else RUN_TASK_BURST

    def base_run_task_kwargs(self) -> dict[str, Any]:
        """RunTask arguments shared by every task: defaults < run_task_kwargs < explicit options."""
        return _layered_base(self)

    def profile_run_task_kwargs(self) -> dict[str, dict[str, Any]]:
        """Each queue profile's RunTask arguments, layered over the base ones."""
        return {name: _layered_profile(self, profile) for name, profile in self.queue_profiles.items()}

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_conf(cls, conf: ConfLike, team_name: str | None = None) -> EcsExecutorSettings:
        """Read and validate; raise one EcsExecutorConfigError listing every problem found."""
        raw = _AirflowConfigSource(cls, conf)()
        try:
            settings = cls(**raw)
        except ValidationError as exc:
            raise EcsExecutorConfigError(_describe_errors(exc, raw, team_name)) from None
        problems = cross_field_problems(settings, team_name)
        if problems:
            raise EcsExecutorConfigError(problems)
        return settings


def _check_ids(value: tuple[str, ...], prefix: str, limit: int, what: str) -> tuple[str, ...]:
    if len(value) > limit:
        raise ValueError(f"at most {limit} {what} are allowed, got {len(value)}")
    bad = [v for v in value if not v.startswith(prefix)]
    if bad:
        raise ValueError(f"{what} must start with '{prefix}', got {', '.join(repr(b) for b in bad)}")
    if len(set(value)) != len(value):
        raise ValueError(f"{what} must not repeat")
    return value


def _describe_errors(exc: ValidationError, raw: Mapping[str, Any], team_name: str | None) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        field = str(loc[0]) if loc else ""
        option = field
        msg = err["msg"].removeprefix("Value error, ")
        where = f"{option} ({env_var_name(option, team_name)})"
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


def _layered_base(s: EcsExecutorSettings) -> dict[str, Any]:
    layered = deep_merge(s.run_task_kwargs, options_kwargs(s))
    # No launch target forced here: the cluster's default strategy may apply (layering.resolve_launch_target).
    if layered.get("launchType") == "FARGATE" and "platformVersion" not in layered:
        layered["platformVersion"] = "LATEST"
    return finish(layered)


def _layered_profile(s: EcsExecutorSettings, profile: QueueProfile) -> dict[str, Any]:
    layered = overlay(
        overlay(_layered_base(s), profile.run_task_kwargs), options_kwargs(profile, s.container_name)
    )
    if layered.get("launchType") == "FARGATE" and "platformVersion" not in layered:
        layered["platformVersion"] = "LATEST"
    return finish(layered)


def cross_field_problems(s: EcsExecutorSettings, team_name: str | None = None) -> list[str]:
    """Problems that involve more than one option; each names the options and what is allowed."""

    def opt(name: str) -> str:
        return f"{name} ({env_var_name(name, team_name)})"

    problems: list[str] = []
    rtk = s.run_task_kwargs
    explicit = options_kwargs(s)
    base = _layered_base(s)

    if "taskDefinition" not in base:
        problems.append(
            f"{opt('task_definition')} is required but not set (or set taskDefinition in run_task_kwargs)"
        )
    elif s.task_definition and rtk.get("taskDefinition") not in (None, s.task_definition):
        problems.append(
            f"{opt('task_definition')} = {s.task_definition!r} conflicts with taskDefinition = "
            f"{rtk['taskDefinition']!r} in {opt('run_task_kwargs')}; set it in one place only"
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

    for override in rtk.get("overrides", {}).get("containerOverrides", []) or []:
        ours = isinstance(override, Mapping) and override.get("name") == s.container_name
        if ours and "command" in override:
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
        layered = _layered_profile(s, profile)
        if layered.get("launchType") in ("EC2", "EXTERNAL") and "platformVersion" in layered:
            problems.append(f"{where}: platform_version applies only to Fargate, not {layered['launchType']}")
        for override in (layered.get("overrides") or {}).get("containerOverrides") or []:
            if (
                isinstance(override, Mapping)
                and override.get("name") == s.container_name
                and "command" in override
            ):
                problems.append(f"{where} sets the command of container {s.container_name!r}; remove it")
        problem = run_task_param_problems(layered)
        if problem:
            problems.append(
                f"{where}: the layered RunTask request does not match the ECS RunTask API: {problem}"
            )
    return problems


def settings_from_mapping(values: Mapping[str, Any], team_name: str | None = None) -> EcsExecutorSettings:
    """Build settings from option names as written in airflow.cfg (tools, tests, the check CLI)."""
    conf = _DictConf({k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})
    return EcsExecutorSettings.from_conf(conf, team_name)


class _DictConf:
    def __init__(self, values: Mapping[str, str]):
        self._values = values

    def get(self, section: str, key: str, **kwargs: Any) -> str | None:
        return self._values.get(key, kwargs.get("fallback"))
