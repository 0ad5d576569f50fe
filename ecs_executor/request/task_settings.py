"""Typed per-task settings: what a task runs on (image, size, storage, platform, GPU, environment). Pure.

They are given in a task's ``executor_config`` (snake_case keys beside the camelCase RunTask arguments,
which have none of these names) and in ``queue_profiles``; a task's keys are layered over its profile's.
cpu, memory, ephemeral_storage and environment become RunTask ``overrides``; image, runtime_platform and
gpu cannot be overridden by RunTask, so they make a ``Derivation``: the executor runs the task on a task
definition derived from the base one (registered and reused by the engine).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ecs_executor.request.ecs_rules import (
    CPU_ARCHITECTURES,
    FARGATE_CPU_NEEDS_1_4,
    FARGATE_SIZES,
    MAX_EPHEMERAL_GIB,
    MAX_TASK_CPU,
    MIN_EPHEMERAL_GIB,
    MIN_TASK_CPU,
    OS_FAMILIES,
    SIGNING_KEY_VARIABLE,
    cpu_units,
    fargate_size_problem,
    fargate_sizes_text,
    image_problem,
    is_windows,
    memory_mib,
    platform_before_1_4,
)

#: The typed keys, in the order messages and ``Derivation.to_dict`` use.
TYPED_KEYS = ("image", "cpu", "memory", "ephemeral_storage", "runtime_platform", "gpu", "environment")
#: Environment variables the executor sets in our container itself (entrypoint.sh reads the last two).
EXECUTOR_CONTAINER_ENV = "AIRFLOW_IS_EXECUTOR_CONTAINER"
SCHEDULER_PYTHON_ENV = "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION"
SCHEDULER_AIRFLOW_ENV = "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION"
EXECUTOR_ENV_NAMES = (EXECUTOR_CONTAINER_ENV, SCHEDULER_PYTHON_ENV, SCHEDULER_AIRFLOW_ENV)


class RuntimePlatform(BaseModel):
    """ECS's ``runtimePlatform``, in snake_case; either field may be left to the base definition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_architecture: str | None = Field(default=None, strict=True)
    operating_system_family: str | None = Field(default=None, strict=True)

    @field_validator("cpu_architecture")
    @classmethod
    def _architecture(cls, value: str | None) -> str | None:
        return _one_of(value, CPU_ARCHITECTURES)

    @field_validator("operating_system_family")
    @classmethod
    def _os_family(cls, value: str | None) -> str | None:
        return _one_of(value, OS_FAMILIES)


def _one_of(value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}")
    return value


class TaskSettings(BaseModel):
    """The typed keys of one layer (a task's executor_config or a queue profile); all optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str | None = Field(
        default=None, strict=True, description="our container's image (needs a derived task definition)"
    )
    cpu: int | None = Field(default=None, strict=True, description="task CPU units (RunTask overrides.cpu)")
    memory: int | None = Field(default=None, strict=True, description="task memory, MiB (overrides.memory)")
    ephemeral_storage: int | None = Field(
        default=None, strict=True, description="Fargate task storage, GiB (overrides.ephemeralStorage)"
    )
    runtime_platform: RuntimePlatform | None = Field(
        default=None, description="cpu_architecture / operating_system_family (derived task definition)"
    )
    gpu: int | None = Field(
        default=None,
        strict=True,
        description="GPUs for our container, EC2/EXTERNAL only (derived definition)",
    )
    environment: dict[str, str] | None = Field(
        default=None, strict=True, description="extra environment variables for our container"
    )

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        problem = None if value is None else image_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int | None) -> int | None:
        if value is not None and not MIN_TASK_CPU <= value <= MAX_TASK_CPU:
            raise ValueError(
                f"task cpu must be {MIN_TASK_CPU}-{MAX_TASK_CPU} CPU units (1024 = 1 vCPU); "
                f"{fargate_sizes_text()}"
            )
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("task memory must be a positive number of MiB")
        return value

    @field_validator("ephemeral_storage")
    @classmethod
    def _ephemeral_storage(cls, value: int | None) -> int | None:
        if value is not None and not MIN_EPHEMERAL_GIB <= value <= MAX_EPHEMERAL_GIB:
            raise ValueError(
                f"ephemeral storage must be {MIN_EPHEMERAL_GIB}-{MAX_EPHEMERAL_GIB} GiB (Fargate only)"
            )
        return value

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("gpu must be a whole number of GPUs, at least 1")
        return value

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name in value or {}:
            if not name or "=" in name:
                raise ValueError(f"environment variable name {name!r} must be non-empty and have no '='")
            if name in EXECUTOR_ENV_NAMES:
                raise ValueError(
                    f"environment variable {name} is set by the executor itself; the executor sets "
                    f"{', '.join(EXECUTOR_ENV_NAMES)}"
                )
            if SIGNING_KEY_VARIABLE.match(name.upper()):
                raise ValueError(
                    f"environment variable {name} is Airflow's token-signing key: only the scheduler and "
                    "API server may hold it, never a task's container"
                )
        return value

    def given(self) -> dict[str, Any]:
        """The typed keys this layer sets (None counts as not set), in TYPED_KEYS order."""
        return {key: getattr(self, key) for key in TYPED_KEYS if getattr(self, key) is not None}


#: A layer that sets no typed key (frozen, so shared).
NO_SETTINGS = TaskSettings()


@dataclass(frozen=True, slots=True)
class Derivation:
    """What RunTask cannot override: the engine derives a task definition from the base one with these."""

    image: str | None = None
    cpu_architecture: str | None = None
    operating_system_family: str | None = None
    gpu: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Only the set fields, in field order (stable, for hashing and logs)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def derivation_of(settings: TaskSettings) -> Derivation | None:
    """The derived definition ``settings`` need, or None when RunTask overrides are enough."""
    platform = settings.runtime_platform or RuntimePlatform()
    derivation = Derivation(
        image=settings.image,
        cpu_architecture=platform.cpu_architecture,
        operating_system_family=platform.operating_system_family,
        gpu=settings.gpu,
    )
    return derivation if derivation.to_dict() else None


def split_executor_config(executor_config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(RunTask arguments, typed keys) of an executor_config."""
    run_task = {k: v for k, v in executor_config.items() if k not in TYPED_KEYS}
    typed = {k: v for k, v in executor_config.items() if k in TYPED_KEYS}
    return run_task, typed


def parse(values: Mapping[str, Any], source: str) -> TaskSettings:
    """Validate typed keys; ValueError with one line per bad key naming ``source``, the key and value."""
    try:
        return TaskSettings.model_validate(dict(values))
    except ValidationError as exc:
        raise ValueError("; ".join(_describe(err, source) for err in exc.errors())) from None


def _describe(err: Any, source: str) -> str:
    path = ".".join(str(part) for part in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(RuntimePlatform.model_fields)
        return f"{source} {path} is not a runtime_platform key; allowed: {allowed}"
    return f"{source} {path} = {err['input']!r}: {message}"


def typed_part(model: TaskSettings | None) -> TaskSettings:
    """Only the typed keys of ``model`` (a queue profile is a TaskSettings with more fields)."""
    if model is None:
        return NO_SETTINGS
    return TaskSettings.model_validate(model.given())


def layer(lower: TaskSettings, upper: TaskSettings) -> TaskSettings:
    """``upper`` (a task's keys) over ``lower`` (its profile's): a key set above wins; ``environment``
    merges by variable name and ``runtime_platform`` by field, as RunTask's own layering merges."""
    values = lower.given()
    for key, value in upper.given().items():
        below = values.get(key)
        if key == "environment" and below:
            value = {**below, **value}
        elif key == "runtime_platform" and below:
            value = RuntimePlatform(
                **{**below.model_dump(exclude_none=True), **value.model_dump(exclude_none=True)}
            )
        values[key] = value
    return TaskSettings.model_validate(values)


def run_task_overrides(settings: TaskSettings, container_name: str) -> dict[str, Any]:
    """The RunTask ``overrides`` the settings make: task-level cpu/memory (strings, as ECS takes them),
    ephemeral storage, and our container's environment."""
    overrides: dict[str, Any] = {}
    if settings.cpu is not None:
        overrides["cpu"] = str(settings.cpu)
    if settings.memory is not None:
        overrides["memory"] = str(settings.memory)
    if settings.ephemeral_storage is not None:
        overrides["ephemeralStorage"] = {"sizeInGiB": settings.ephemeral_storage}
    if settings.environment:
        environment = [{"name": name, "value": value} for name, value in settings.environment.items()]
        overrides["containerOverrides"] = [{"name": container_name, "environment": environment}]
    return {"overrides": overrides} if overrides else {}


def _our_override(kwargs: Mapping[str, Any], container_name: str) -> Mapping[str, Any]:
    overrides = kwargs.get("overrides")
    items = overrides.get("containerOverrides") if isinstance(overrides, Mapping) else None
    for item in items or []:
        if isinstance(item, Mapping) and item.get("name") == container_name:
            return item
    return {}


def _gpu_override(container: Mapping[str, Any]) -> str | None:
    for item in container.get("resourceRequirements") or []:
        if isinstance(item, Mapping) and item.get("type") == "GPU":
            return str(item.get("value"))
    return None


def conflicts(run_task_args: Mapping[str, Any], settings: TaskSettings, container_name: str) -> list[str]:
    """Typed keys and RunTask arguments of the *same* layer that say different things (which one was
    meant is a guess, so it is an error rather than a silent winner)."""
    overrides = run_task_args.get("overrides")
    overrides = overrides if isinstance(overrides, Mapping) else {}
    problems = []
    pairs: list[tuple[str, Any, Any, Callable[[Any], Any]]] = [
        ("cpu", settings.cpu, overrides.get("cpu"), cpu_units),
        ("memory", settings.memory, overrides.get("memory"), memory_mib),
    ]
    storage = overrides.get("ephemeralStorage")
    storage_gib = storage.get("sizeInGiB") if isinstance(storage, Mapping) else None
    pairs.append(("ephemeral_storage", settings.ephemeral_storage, storage_gib, lambda v: v))
    for key, typed, given, read in pairs:
        where = "overrides.ephemeralStorage.sizeInGiB" if key == "ephemeral_storage" else f"overrides.{key}"
        if typed is not None and given is not None and read(given) != typed:
            problems.append(f"{key} = {typed!r} contradicts {where} = {given!r}; set one of them")
    ours = _our_override(run_task_args, container_name)
    listed = {e.get("name"): e.get("value") for e in ours.get("environment") or [] if isinstance(e, Mapping)}
    for name, value in (settings.environment or {}).items():
        if name in listed and listed[name] != value:
            problems.append(
                f"environment[{name!r}] = {value!r} contradicts the containerOverrides environment "
                f"{name} = {listed[name]!r}; set one of them"
            )
    return problems


def target_problems(
    settings: TaskSettings, kwargs: Mapping[str, Any], container_name: str, fargate: bool | None
) -> list[str]:
    """Rules that depend on where the layered request runs (``fargate``: True, False, or None when the
    cluster's default strategy decides, where only rules that hold on every target are checked)."""
    problems = []
    if settings.gpu is not None:
        override = _gpu_override(_our_override(kwargs, container_name))
        if override is not None and override != str(settings.gpu):
            problems.append(
                f"gpu = {settings.gpu} contradicts the GPU resourceRequirements = {override!r} of container "
                f"{container_name!r} in the RunTask overrides (which would win over the task definition); "
                "set one of them"
            )
        if fargate:
            problems.append(
                f"gpu = {settings.gpu}: Fargate has no GPUs; run the task on EC2 or EXTERNAL capacity "
                "(launchType or capacityProviderStrategy)"
            )
    if fargate is False and settings.ephemeral_storage is not None:
        problems.append(
            f"ephemeral_storage = {settings.ephemeral_storage} applies only to Fargate tasks, and this "
            "task does not run on Fargate (on EC2 the instance's storage is used)"
        )
    if fargate:
        problems += _fargate_problems(settings, kwargs)
    return problems


def _fargate_problems(settings: TaskSettings, kwargs: Mapping[str, Any]) -> list[str]:
    overrides = kwargs.get("overrides")
    overrides = overrides if isinstance(overrides, Mapping) else {}
    cpu, memory = overrides.get("cpu"), overrides.get("memory")
    problems = []
    if settings.cpu is not None or settings.memory is not None:
        if cpu is None or memory is None:
            given, missing = ("cpu", "memory") if cpu is not None else ("memory", "cpu")
            problems.append(
                f"{given} = {overrides.get(given)} needs {missing} too on Fargate: it runs only the "
                f"cpu/memory pairs of its table, and the task definition's {missing} is not known when "
                "the task is queued"
            )
        elif fargate_size_problem(cpu, memory):
            units = cpu_units(cpu)
            problems.append(
                f"cpu = {cpu}, memory = {memory} is not a Fargate size; "
                f"{fargate_sizes_text(units if units in FARGATE_SIZES else None)}"
            )
    platform = settings.runtime_platform or RuntimePlatform()
    version = kwargs.get("platformVersion")
    old = platform_before_1_4(version)
    if old and cpu_units(cpu) in FARGATE_CPU_NEEDS_1_4:
        problems.append(f"cpu = {cpu} needs Fargate platform version 1.4.0 or later, not {version}")
    if old and settings.ephemeral_storage is not None:
        problems.append(f"ephemeral_storage needs Fargate platform version 1.4.0 or later, not {version}")
    spot = any(
        isinstance(item, Mapping) and item.get("capacityProvider") == "FARGATE_SPOT"
        for item in kwargs.get("capacityProviderStrategy") or []
    )
    if old and spot and platform.cpu_architecture == "ARM64":
        problems.append(f"ARM64 on FARGATE_SPOT needs platform version 1.4.0 or later, not {version}")
    if is_windows(platform.operating_system_family):
        family = platform.operating_system_family
        if spot:
            problems.append(f"operating_system_family = {family}: FARGATE_SPOT runs only Linux tasks")
        if settings.ephemeral_storage is not None:
            problems.append(
                f"ephemeral_storage is not supported for Windows containers on Fargate ({family})"
            )
        units = cpu_units(cpu)
        if units is not None and units < 1024:
            problems.append(f"cpu = {cpu}: Windows containers on Fargate need at least 1 vCPU (1024)")
    return problems
