"""What each container of a task runs: its argv, environment and working directory.

As a process on this host (the task definition's entry point and command, the RunTask override winning)
or, with ``container_runner=podman``, as a ``podman run`` of the container's image (``podman.py``).
"""

from __future__ import annotations

import os

from ecs_executor.local_ecs import podman
from ecs_executor.local_ecs.model import Task
from ecs_executor.request.ecs_rules import SIGNING_KEY_VARIABLE

#: (container name, argv, environment, working directory)
Plan = tuple[str, list[str], dict[str, str], str | None]


def inherited_environment() -> dict[str, str]:
    """What a task process inherits from this process: everything but Airflow's signing key.

    The endpoint usually runs with the scheduler's environment, which holds the key; a container on ECS
    never gets it (workers need only the workload's token), so a task process started here does not
    inherit it either. A task definition that sets it still passes it on, as ECS would.
    """
    return {k: v for k, v in os.environ.items() if not SIGNING_KEY_VARIABLE.match(k.upper())}


def container_plans(task: Task, container_runner: str) -> list[Plan] | str:
    """One plan per container, or why the task cannot start."""
    plans: list[Plan] = []
    in_podman = container_runner == "podman"
    if in_podman and (reason := podman.unavailable_reason()):
        return reason
    for container in task.containers:
        spec = task.definition.containers[container.name]
        override = task.container_override(container.name)
        if in_podman:
            volumes = task.definition.spec.get("volumes") or []
            argv, env = podman.run_command(task.id, container.name, spec, override, volumes)
            plans.append((container.name, argv, env, None))
            continue
        command = override["command"] if "command" in override else spec.get("command")
        argv = [str(part) for part in (spec.get("entryPoint") or []) + (command or [])]
        if not argv:
            return "CannotStartContainerError: Error response from daemon: No command specified"
        env = inherited_environment()
        for entry in (spec.get("environment") or []) + (override.get("environment") or []):
            env[str(entry["name"])] = str(entry.get("value", ""))
        plans.append((container.name, argv, env, spec.get("workingDirectory")))
    return plans
