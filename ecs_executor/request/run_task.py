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
from ecs_executor.core.envelope import WORKLOAD_COMMAND as WORKLOAD_COMMAND
from ecs_executor.core.fallback import Fallback, fallback_for
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
from ecs_executor.request.layering import LAUNCH_TYPE, STRATEGY, deep_merge, overlay, targets_fargate
from ecs_executor.request.task_settings import (
    EXECUTOR_CONTAINER_ENV,
    NO_SETTINGS,
    TYPED_KEYS,
    Derivation,
    TaskSettings,
    conflicts,
    derivation_of,
    layer,
    parse,
    run_task_overrides,
    split_executor_config,
    target_problems,
    typed_part,
)

# Read by entrypoint.sh to refuse running with a Python/Airflow that differs from the scheduler's;
# defined with the other names the executor sets in our container (task_settings.EXECUTOR_ENV_NAMES).
from ecs_executor.request.task_settings import SCHEDULER_AIRFLOW_ENV as SCHEDULER_AIRFLOW_ENV
from ecs_executor.request.task_settings import SCHEDULER_PYTHON_ENV as SCHEDULER_PYTHON_ENV

STARTED_BY = "airflow-ecs-executor"
TAG_PREFIX = "airflow:"
_STARTED_BY_BAD_CHARS = re.compile(r"[^A-Za-z0-9_/-]")
#: With workload_kms_key set: the worker's decrypting entry point (ecs_executor.worker), which then runs
#: WORKLOAD_COMMAND with the opened workload (docs/security.md).
SEALED_COMMAND = ["python", "-m", "ecs_executor.worker"]


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


def sealed_command(envelope: str) -> list[str]:
    """The command of a sealed workload (``core.envelope.seal``): the worker opens it, then runs
    WORKLOAD_COMMAND with the workload."""
    return [*SEALED_COMMAND, envelope]


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
        self._profile_settings = {name: typed_part(p) for name, p in settings.queue_profiles.items()}
        # build(), derivation() and check_target() of one launch read the same executor_config: parsed once.
        self._last_parsed: (
            tuple[Any, str | None, tuple[dict[str, Any], TaskSettings, TaskSettings]] | None
        ) = None
        self._extra_env = dict(extra_env or {})
        self._fallbacks: dict[str | None, Fallback | None] = {
            name: fallback_for(settings, p) for name, p in settings.queue_profiles.items()
        }
        self._fallbacks[None] = fallback_for(settings)

    def clusters(self) -> list[str]:
        """Every cluster the options name (base and queue profiles), for describing them once at start."""
        names = [self._base["cluster"]] + [p["cluster"] for p in self._profiles.values()]
        return list(dict.fromkeys(names))

    def for_queue(self, queue: str | None) -> dict[str, Any]:
        """The layered arguments for a task on ``queue``."""
        profile = self._profile_name(queue)
        return self._base if profile is None else self._profiles[profile]

    def _profile_name(self, queue: str | None) -> str | None:
        """The queue profile a task on ``queue`` uses; None for the base options."""
        if queue is not None and queue in self._profiles:
            return queue
        if not self._profiles or queue in (None, self.default_queue):
            return None
        raise NoQueueProfile(
            f"queue {queue!r} has no entry in queue_profiles; configured: "
            f"{', '.join(sorted(self._profiles))} (tasks on the default queue {self.default_queue!r} "
            "use the base options)"
        )

    def _task_settings(
        self, executor_config: Mapping[str, Any] | None, queue: str | None
    ) -> tuple[dict[str, Any], TaskSettings, TaskSettings]:
        """(the task's RunTask arguments, its own typed keys, those layered over its profile's)."""
        last = self._last_parsed
        if last is not None and last[0] is executor_config and last[1] == queue:
            return last[2]
        parsed = self._parse_task_settings(executor_config, queue)
        self._last_parsed = (executor_config, queue, parsed)
        return parsed

    def _parse_task_settings(
        self, executor_config: Mapping[str, Any] | None, queue: str | None
    ) -> tuple[dict[str, Any], TaskSettings, TaskSettings]:
        profile = self._profile_name(queue)
        below = self._profile_settings[profile] if profile is not None else NO_SETTINGS
        if not executor_config:
            return {}, NO_SETTINGS, below
        _check_executor_config(executor_config, self.settings.container_name)
        run_task_args, typed = split_executor_config(executor_config)
        try:
            own = parse(typed, "executor_config")
        except ValueError as exc:
            raise InvalidTaskConfig(str(exc)) from None
        problems = conflicts(run_task_args, own, self.settings.container_name)
        if problems:
            raise InvalidTaskConfig("executor_config " + "; ".join(problems))
        return run_task_args, own, layer(below, own)

    def check_target(
        self,
        kwargs: Mapping[str, Any],
        executor_config: Mapping[str, Any] | None,
        queue: str | None,
        default_strategy: list[Any] | None,
    ) -> None:
        """The typed keys' Fargate/EC2 rules once the engine knows where a request that names no launch
        target runs (fill_launch_target: the cluster's default strategy, else Fargate); build() checked
        the requests that name one."""
        _, own, layered = self._task_settings(executor_config, queue)
        if not layered.given():
            return
        view = dict(kwargs)
        if LAUNCH_TYPE not in view and STRATEGY not in view and default_strategy:
            view[STRATEGY] = default_strategy
        self._raise_target_problems(view, own, layered, queue, targets_fargate(view))

    def _raise_target_problems(
        self,
        kwargs: Mapping[str, Any],
        own: TaskSettings,
        layered: TaskSettings,
        queue: str | None,
        fargate: bool | None,
    ) -> None:
        problems = target_problems(layered, kwargs, self.settings.container_name, fargate)
        if problems:
            profile = self._profile_name(queue)
            layers = ["executor_config"] if own.given() else []
            if profile is not None and self._profile_settings[profile].given():
                layers.append(f"queue_profiles[{profile!r}]")
            raise InvalidTaskConfig(f"{' over '.join(layers)}: " + "; ".join(problems))

    def derivation(self, executor_config: Mapping[str, Any] | None, queue: str | None) -> Derivation | None:
        """What this task needs in a derived task definition (image, runtime_platform, gpu; its profile's
        below its own), or None when RunTask overrides carry everything. Raises InvalidTaskConfig for a
        bad executor_config or queue, as build() does; build() checks the whole request."""
        return derivation_of(self._task_settings(executor_config, queue)[2])

    def fallback(self, executor_config: Mapping[str, Any] | None, queue: str | None) -> Fallback | None:
        """The try's fallback target (core.fallback); none when its executor_config names a target."""
        if executor_config and (LAUNCH_TYPE in executor_config or STRATEGY in executor_config):
            return None
        return self._fallbacks.get(queue if queue in self._profiles else None)

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
        run_task_args, own, layered = self._task_settings(executor_config, queue)
        if executor_config:
            merged = overlay(merged, run_task_args)
            merged = deep_merge(merged, run_task_overrides(own, self.settings.container_name))
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
                if problem.startswith("Unknown parameter in input"):
                    problem += f"; or one of the executor's own keys: {', '.join(TYPED_KEYS)}"
                raise InvalidTaskConfig(f"executor_config does not match the ECS RunTask API: {problem}")
        if layered.given():
            self._raise_target_problems(kwargs, own, layered, queue, targets_fargate(kwargs))
        size = overrides_size(kwargs["overrides"])
        if size > MAX_OVERRIDES_CHARS:
            raise InvalidTaskConfig(
                f"RunTask overrides are {size} characters, over ECS's limit of {MAX_OVERRIDES_CHARS}; "
                "move environment variables into the task definition or shorten executor_config"
            )
        return kwargs


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
