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

SECTION = "aws_ecs_executor"

# ECS API limits (AWS docs "Amazon ECS service quotas" / RunTask reference).
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5
# Client-side RunTask token bucket defaults, sized to ECS's "cluster resource modify" bucket
# (burst 100, refill 40/s) and Fargate's RunTask limit (20/s).
EC2_RUN_TASK_RATE = 40.0
FARGATE_RUN_TASK_RATE = 20.0
RUN_TASK_BURST = 100
FARGATE_CAPACITY_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})


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
        # The text botocore's ParamValidationError would carry (its exceptions are read in aws.py only).
        return f"Parameter validation failed:\n{report.generate_report()}".replace("\n", " ")
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

    @field_validator("launch_type", mode="before")
    @classmethod
    def _upper_launch_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper() or None
            if value is not None and value not in ("FARGATE", "EC2", "EXTERNAL"):
                raise ValueError("must be one of FARGATE, EC2, EXTERNAL")
        return value

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
        if "count" in value:
            raise ValueError("must not set count: the executor runs exactly one ECS task per Airflow task")
        problem = run_task_param_problems(value)
        if problem:
            raise ValueError(f"does not match the ECS RunTask API: {problem}")
        return value

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
        """Whether launches count against Fargate's lower RunTask limit."""
        base = self.base_run_task_kwargs()
        if base.get("launchType") == "FARGATE":
            return True
        strategy = base.get("capacityProviderStrategy") or []
        return bool(strategy) and all(
            item.get("capacityProvider") in FARGATE_CAPACITY_PROVIDERS for item in strategy
        )

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


def _explicit_kwargs(s: EcsExecutorSettings) -> dict[str, Any]:
    explicit: dict[str, Any] = {"cluster": s.cluster}
    fields = s.model_fields_set
    if s.task_definition:
        explicit["taskDefinition"] = s.task_definition
    if s.launch_type:
        explicit["launchType"] = s.launch_type
    if s.capacity_provider_strategy:
        explicit["capacityProviderStrategy"] = [
            item.model_dump(exclude_none=True) for item in s.capacity_provider_strategy
        ]
    if s.platform_version:
        explicit["platformVersion"] = s.platform_version
    awsvpc: dict[str, Any] = {}
    if s.subnets:
        awsvpc["subnets"] = list(s.subnets)
    if s.security_groups:
        awsvpc["securityGroups"] = list(s.security_groups)
    if "assign_public_ip" in fields:
        awsvpc["assignPublicIp"] = "ENABLED" if s.assign_public_ip else "DISABLED"
    if awsvpc:
        explicit["networkConfiguration"] = {"awsvpcConfiguration": awsvpc}
    return explicit


def _layered_base(s: EcsExecutorSettings) -> dict[str, Any]:
    explicit = _explicit_kwargs(s)
    layered = deep_merge(s.run_task_kwargs, explicit)
    uses_strategy = "capacityProviderStrategy" in layered
    if not uses_strategy and "launchType" not in layered:
        layered["launchType"] = "FARGATE"
    if layered.get("launchType") == "FARGATE" and "platformVersion" not in layered:
        layered["platformVersion"] = "LATEST"
    awsvpc = layered.get("networkConfiguration", {}).get("awsvpcConfiguration")
    if isinstance(awsvpc, dict) and "assignPublicIp" not in awsvpc:
        layered["networkConfiguration"] = deep_merge(
            layered["networkConfiguration"], {"awsvpcConfiguration": {"assignPublicIp": "DISABLED"}}
        )
    # Stable key order makes logs and tests readable.
    return {k: layered[k] for k in sorted(layered)}


def cross_field_problems(s: EcsExecutorSettings, team_name: str | None = None) -> list[str]:
    """Problems that involve more than one option; each names the options and what is allowed."""

    def opt(name: str) -> str:
        return f"{name} ({env_var_name(name, team_name)})"

    problems: list[str] = []
    rtk = s.run_task_kwargs
    explicit = _explicit_kwargs(s)
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
        problems.append(f"the combined RunTask arguments are invalid: {problem}")
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
