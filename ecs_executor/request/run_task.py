"""Turn one Airflow workload into the exact RunTask arguments. Pure: no I/O, no clock.

Layering (lowest to highest): option defaults < ``run_task_kwargs`` < explicit options (config/settings.py)
< the task's queue profile, then the task's ``executor_config``, then what the executor must own (command,
count, identity); request/layering.py has the rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecs_executor.config.settings import EcsExecutorSettings
from ecs_executor.config.values import executor_owned_keys, overrides_our_command, run_task_param_problems
from ecs_executor.request.ecs_rules import (
    MAX_CLIENT_TOKEN,
    MAX_OVERRIDES_CHARS,
    MAX_STARTED_BY,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    launch_target_problems,
    overrides_size,
    sanitize_tag_text,
)
from ecs_executor.request.layering import LAUNCH_TYPE, STRATEGY, deep_merge, overlay
from ecs_executor.request.task_settings import Derivation

EXECUTOR_CONTAINER_ENV = "AIRFLOW_IS_EXECUTOR_CONTAINER"
# Read by entrypoint.sh to refuse running with a Python/Airflow that differs from the scheduler's.
SCHEDULER_PYTHON_ENV = "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION"
SCHEDULER_AIRFLOW_ENV = "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION"
STARTED_BY = "airflow-ecs-executor"
TAG_PREFIX = "airflow:"
_STARTED_BY_BAD_CHARS = re.compile(r"[^A-Za-z0-9_/-]")
WORKLOAD_COMMAND = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string"]


class InvalidTaskConfig(ValueError):
    """A task's executor_config or size is unusable; fails that task only, with this message."""


@dataclass(frozen=True, slots=True)
class TryIdentity:
    """What identifies one Airflow try, for tags, idempotency tokens and logs."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    map_index: int = -1

    @classmethod
    def from_key(cls, key: Any) -> TryIdentity:
        """Accept Airflow's TaskInstanceKey (or anything with the same attributes)."""
        return cls(key.dag_id, key.task_id, key.run_id, key.try_number, key.map_index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "task_id": self.task_id,
            "run_id": self.run_id,
            "try_number": self.try_number,
            "map_index": self.map_index,
        }


def started_by(team_name: str | None) -> str:
    """The startedBy value of every task we launch, so ListTasks finds our (orphaned) tasks."""
    value = STARTED_BY if not team_name else f"{STARTED_BY}/{team_name}"
    return _STARTED_BY_BAD_CHARS.sub("_", value)[:MAX_STARTED_BY]


def new_launch_id() -> str:
    """One per queued workload. Airflow queues the same try again in normal operation (a deferred task
    resuming, a reschedule-mode sensor's next poke), so the try's key cannot make the token unique."""
    return os.urandom(16).hex()  # 128 random bits like uuid4, at a quarter of its cost (docs/benchmarks.md)


def client_token(launch_id: str, attempt: int) -> str:
    """Stable per (queued workload, launch attempt): a RunTask retried after a lost reply (or re-sent by a
    restarted engine) gets the same task back; a relaunch or a re-queued try gets a new one."""
    suffix = f"-{attempt}"
    return launch_id[: MAX_CLIENT_TOKEN - len(suffix)] + suffix


def identity_tags(identity: TryIdentity) -> list[dict[str, str]]:
    return [
        {
            "key": sanitize_tag_text(TAG_PREFIX + name, MAX_TAG_KEY),
            "value": sanitize_tag_text(str(value), MAX_TAG_VALUE),
        }
        for name, value in identity.to_dict().items()
    ]


def workload_command(workload_json: str) -> list[str]:
    return [*WORKLOAD_COMMAND, workload_json]


class NoQueueProfile(InvalidTaskConfig):
    """The task's queue has no profile while profiles are configured."""


class RunTaskBuilder:
    """Builds RunTask kwargs for one executor instance (its settings and identity are fixed)."""

    def __init__(
        self,
        settings: EcsExecutorSettings,
        *,
        team_name: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        default_queue: str = "default",
    ):
        self.settings = settings
        self.team_name = team_name
        self.started_by = started_by(team_name)
        self.default_queue = default_queue
        self._base = settings.base_run_task_kwargs()
        self._profiles = settings.profile_run_task_kwargs()
        self._extra_env = dict(extra_env or {})

    def clusters(self) -> list[str]:
        """Every cluster the options name (base and queue profiles), for describing them once at start."""
        names = [self._base["cluster"]] + [p["cluster"] for p in self._profiles.values()]
        return list(dict.fromkeys(names))

    def for_queue(self, queue: str | None) -> dict[str, Any]:
        """The layered arguments for a task on ``queue``."""
        if queue is not None and queue in self._profiles:
            return self._profiles[queue]
        if not self._profiles or queue in (None, self.default_queue):
            return self._base
        raise NoQueueProfile(
            f"queue {queue!r} has no entry in queue_profiles; configured: "
            f"{', '.join(sorted(self._profiles))} (tasks on the default queue {self.default_queue!r} "
            "use the base options)"
        )

    def derivation(self, executor_config: Mapping[str, Any] | None, queue: str | None) -> Derivation | None:
        """What this task needs a derived task definition for; None when the base one will do.
        PLACEHOLDER (definitions branch): executor_config only; the settings helper replaces it."""
        self.for_queue(queue)
        return _placeholder_derivation(executor_config)

    def build(
        self,
        identity: TryIdentity,
        command: list[str],
        executor_config: Mapping[str, Any] | None = None,
        *,
        launch_id: str,
        attempt: int = 1,
        queue: str | None = None,
    ) -> dict[str, Any]:
        """Exactly what RunTask receives for this workload and launch attempt (launch target unresolved
        when neither the options nor the task name one: see layering.fill_launch_target)."""
        merged = self.for_queue(queue)
        if isinstance(executor_config, Mapping):  # PLACEHOLDER (definitions branch): settings helper's keys
            executor_config = {k: v for k, v in executor_config.items() if k not in _DERIVATION_KEYS}
        if executor_config:
            _check_executor_config(executor_config, self.settings.container_name)
            merged = overlay(merged, executor_config)
        environment = [{"name": EXECUTOR_CONTAINER_ENV, "value": "true"}] + [
            {"name": k, "value": v} for k, v in self._extra_env.items()
        ]
        ours = {
            "overrides": {
                "containerOverrides": [
                    {"name": self.settings.container_name, "command": command, "environment": environment}
                ]
            }
        }
        kwargs = deep_merge(merged, ours)
        kwargs["count"] = 1
        kwargs["startedBy"] = self.started_by
        kwargs["clientToken"] = client_token(launch_id, attempt)
        kwargs["tags"] = _merge_tags(kwargs.get("tags") or [], identity_tags(identity))
        # Base and profiles were validated, layered, at start-up and our additions are valid by
        # construction, so only a task's own executor_config needs botocore's (comparatively slow) check,
        # on the final request.
        if executor_config:
            if LAUNCH_TYPE in executor_config and STRATEGY in executor_config:
                raise InvalidTaskConfig(
                    "executor_config sets both launchType and capacityProviderStrategy; ECS accepts one"
                )
            problem = run_task_param_problems(kwargs) or launch_target_problems(kwargs)
            if problem:
                raise InvalidTaskConfig(f"executor_config does not match the ECS RunTask API: {problem}")
        size = overrides_size(kwargs["overrides"])
        if size > MAX_OVERRIDES_CHARS:
            raise InvalidTaskConfig(
                f"RunTask overrides are {size} characters, over ECS's limit of {MAX_OVERRIDES_CHARS}; "
                "move environment variables into the task definition or shorten executor_config"
            )
        return kwargs


# PLACEHOLDER (definitions branch): replaced by the settings helper's TaskSettings.
_DERIVATION_KEYS = ("image", "runtime_platform", "gpu")


def _placeholder_derivation(executor_config: Mapping[str, Any] | None) -> Derivation | None:
    """PLACEHOLDER for the settings helper's ``RunTaskBuilder.derivation``: reads only ``image``,
    ``runtime_platform`` and ``gpu`` from executor_config, unchecked beyond their types."""
    if not isinstance(executor_config, Mapping):
        return None
    platform = executor_config.get("runtime_platform") or {}
    derivation = Derivation(
        image=executor_config.get("image"),
        cpu_architecture=platform.get("cpu_architecture"),
        operating_system_family=platform.get("operating_system_family"),
        gpu=executor_config.get("gpu"),
    )
    return derivation if derivation.to_dict() else None


def _check_executor_config(executor_config: Mapping[str, Any], container_name: str) -> None:
    if not isinstance(executor_config, Mapping):
        raise InvalidTaskConfig(
            f"executor_config must be a dict of RunTask arguments, got {type(executor_config).__name__}"
        )
    bad = executor_owned_keys(executor_config)
    if bad:
        raise InvalidTaskConfig(
            f"executor_config must not set {', '.join(bad)}: the executor sets these for every task"
        )
    if overrides_our_command(executor_config, container_name):
        raise InvalidTaskConfig(
            f"executor_config must not override the command of container {container_name!r}; "
            "the executor runs the Airflow task there"
        )


def _merge_tags(user: list[Any], ours: list[dict[str, str]]) -> list[Any]:
    ours_keys = {t["key"] for t in ours}
    kept = [t for t in user if not (isinstance(t, Mapping) and t.get("key") in ours_keys)]
    tags = kept + ours
    if len(tags) > MAX_TAGS:
        raise InvalidTaskConfig(
            f"{len(tags)} tags requested but ECS allows {MAX_TAGS} per task "
            f"(the executor adds {len(ours)} of its own)"
        )
    return tags
