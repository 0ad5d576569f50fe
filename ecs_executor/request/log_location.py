"""Where an ECS task's container writes its output in CloudWatch Logs, from its task definition. Pure.

Only the ``awslogs`` log driver makes the output reachable, and ECS names its streams
``<awslogs-stream-prefix>/<container name>/<task id>``, so the stream of a task is known from its task
definition and ARN alone: the log reader (aws/container_logs.py) reads it, the check (check/run.py)
says why it cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecs_executor.request.arns import task_id_from_arn


@dataclass(frozen=True)
class LogLocation:
    """Where one container of one ECS task writes its output in CloudWatch Logs."""

    group: str
    stream: str
    region: str | None = None

    @property
    def source(self) -> str:
        return f"CloudWatch Logs {self.group}/{self.stream}"


def _container(task_definition: Mapping[str, Any], container_name: str) -> Mapping[str, Any] | None:
    for container in task_definition.get("containerDefinitions") or []:
        if container.get("name") == container_name:
            return container
    return None


def awslogs_problem(task_definition: Mapping[str, Any], container_name: str) -> str | None:
    """Why the container's CloudWatch stream cannot be located; None when it can."""
    container = _container(task_definition, container_name)
    if container is None:
        names = [str(c.get("name")) for c in task_definition.get("containerDefinitions") or []]
        return f"the task definition has no container named {container_name!r} (it has: {', '.join(names)})"
    config = container.get("logConfiguration") or {}
    driver = config.get("logDriver")
    if driver != "awslogs":
        return (
            f"container {container_name!r} uses the {driver or 'default (json-file)'} log driver, not "
            "awslogs; live logs are read from CloudWatch Logs only"
        )
    options = config.get("options") or {}
    if not options.get("awslogs-group"):
        return f"container {container_name!r} sets no awslogs-group"
    if not options.get("awslogs-stream-prefix"):
        return (
            f"container {container_name!r} sets no awslogs-stream-prefix, so its CloudWatch stream name "
            "cannot be derived from the task ARN"
        )
    return None


def awslogs_location(
    task_definition: Mapping[str, Any], container_name: str, task_arn: str
) -> LogLocation | None:
    """The CloudWatch Logs group and stream of ``container_name`` in the task ``task_arn``.

    ECS names awslogs streams ``<awslogs-stream-prefix>/<container name>/<task id>``. Without a prefix
    the stream is named after the Docker container ID, which is neither in the task definition nor
    known before the container starts, so no location can be predicted: None. None also when the
    container does not exist or does not use the ``awslogs`` driver. ``region`` is ``awslogs-region``
    (None: the task's own Region).
    """
    if awslogs_problem(task_definition, container_name) is not None:
        return None
    task_id = task_id_from_arn(task_arn)
    if not task_id:
        return None
    container = _container(task_definition, container_name) or {}
    options = container["logConfiguration"]["options"]
    return LogLocation(
        group=str(options["awslogs-group"]),
        stream=f"{options['awslogs-stream-prefix']}/{container_name}/{task_id}",
        region=options.get("awslogs-region") or None,
    )
