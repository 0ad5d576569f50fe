"""What ECS's "ECS Task State Change" event looks like, built from a task and one of its changes.

The shape follows AWS's reference, "Amazon ECS task state change events" (Amazon ECS Developer Guide,
``ecs_task_events``; before that page was split out, the "Task state change events" section of
``ecs_cwe_events``), checked against a STOPPED event captured from a real Fargate task in 2024:

* The EventBridge envelope: ``version`` "0", ``id`` (a UUID, the same on every delivery of one event),
  ``detail-type`` "ECS Task State Change", ``source`` "aws.ecs", ``account``, ``time`` (the change, in
  whole seconds, ``2020-01-23T17:57:58Z``), ``region``, ``resources`` [the task ARN] and ``detail``.
* ``detail`` resembles DescribeTasks' Task object, with these differences the reference states or the
  captured event shows: timestamps (``createdAt``, ``connectivityAt``, ``pullStartedAt``,
  ``pullStoppedAt``, ``startedAt``, ``stoppingAt``, ``executionStoppedAt``, ``stoppedAt``, ``updatedAt``)
  are ISO-8601 UTC strings with milliseconds and trailing zeros dropped (``2024-11-13T21:22:46.71Z``),
  not epoch numbers; ``updatedAt`` is the time of the change; there is no ``healthStatus`` (the
  reference: "the health status of the task is not provided in the task state change event"), no
  ``tags``, no ``platformFamily`` and no ``capacityProviderName``; ``overrides.containerOverrides``
  names every container (``{"name": ...}`` plus the RunTask override, command and environment
  included, as ECS sends them); containers carry ``containerArn``, ``exitCode`` (once exited),
  ``lastStatus``, ``name``, ``image``, ``taskArn``, ``cpu``, ``memory`` and ``reason`` (when ECS
  gives one), with no ``healthStatus``, ``networkBindings`` or ``networkInterfaces`` (we have no ENIs).
* ``detail.version`` is the task's version: it grows by one with each change, and duplicate deliveries
  carry the same one (ECS docs: "Duplicate events have the same version in the detail object").

An EventBridge rule whose target is an SQS queue, with no ``Input``, ``InputPath`` or
``InputTransformer``, delivers "the entire event ... to the target in JSON format" (EventBridge PutTargets
API reference): the message body is the event JSON itself, no wrapper (``message_body``). No I/O here:
``event_publisher.py`` decides which events go out and when, ``sqs_client.py`` sends them.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from typing import Any, NamedTuple

from ecs_executor.local_ecs.model import ACCOUNT_ID, Task

DETAIL_TYPE = "ECS Task State Change"
SOURCE = "aws.ecs"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """``2024-11-13T21:23:46``: one strftime per second of events, not one per timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_time(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds, trailing zeros dropped, as ECS writes event timestamps."""
    seconds, millis = divmod(int(timestamp * 1000 + 0.5), 1000)
    if millis:
        return f"{_second(seconds)}.{millis:03d}".rstrip("0") + "Z"
    return _second(seconds) + "Z"


def event_time(timestamp: float) -> str:
    """The envelope's ``time``: the same instant in whole seconds."""
    return _second(int(timestamp * 1000 + 0.5) // 1000) + "Z"


class Change(NamedTuple):
    """What changes in a task between versions, taken when the registry announces the change."""

    queue_url: str
    updated_at: float
    version: int
    last_status: str
    desired_status: str
    pull_started_at: float | None
    pull_stopped_at: float | None
    started_at: float | None
    stopping_at: float | None
    execution_stopped_at: float | None
    stopped_at: float | None
    stop_code: str | None
    stopped_reason: str | None
    containers: tuple[tuple[str, int | None, str | None], ...]


def capture(task: Task, queue_url: str, now: float) -> Change:
    return Change(
        queue_url,
        now,
        task.version,
        task.last_status,
        task.desired_status,
        task.pull_started_at,
        task.pull_stopped_at,
        task.started_at,
        task.stopping_at,
        task.execution_stopped_at,
        task.stopped_at,
        task.stop_code,
        task.stopped_reason,
        tuple([(c.last_status, c.exit_code, c.reason) for c in task.containers]),
    )


def _stamps(change: Change, task: Task) -> dict[str, str]:
    pairs = (
        ("createdAt", task.created_at),
        ("connectivityAt", change.pull_started_at),
        ("pullStartedAt", change.pull_started_at),
        ("pullStoppedAt", change.pull_stopped_at),
        ("startedAt", change.started_at),
        ("stoppingAt", change.stopping_at),
        ("executionStoppedAt", change.execution_stopped_at),
        ("stoppedAt", change.stopped_at),
        ("updatedAt", change.updated_at),
    )
    return {name: iso_time(value) for name, value in pairs if value is not None}


def _containers(task: Task, change: Change) -> list[dict[str, Any]]:
    """``detail.containers``: each container as it was at ``change``."""
    definition = task.definition
    containers = []
    for container, (status, exit_code, reason) in zip(task.containers, change.containers, strict=True):
        spec = definition.containers[container.name]
        item: dict[str, Any] = {"containerArn": task.container_arn(container.name)}
        if exit_code is not None:
            item["exitCode"] = exit_code
        item.update(lastStatus=status, name=container.name, image=spec.get("image"), taskArn=task.arn)
        item["cpu"] = str(spec.get("cpu", 0))
        if "memory" in spec:
            item["memory"] = str(spec["memory"])
        if reason is not None:
            item["reason"] = reason
        containers.append(item)
    return containers


def _detail(task: Task, change: Change) -> dict[str, Any]:
    """``detail``: the task as it was at ``change``, keys in the order ECS sends them."""
    definition = task.definition
    region = task.cluster.region
    overrides = task.overrides or {}
    container_overrides = [{"name": name, **task.container_override(name)} for name in definition.containers]
    stamps = _stamps(change, task)
    detail: dict[str, Any] = {
        "attachments": [],
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "availabilityZone": f"{region}a",
        "clusterArn": task.cluster.arn,
    }
    if change.pull_started_at is not None:
        detail["connectivity"] = "CONNECTED"
        detail["connectivityAt"] = stamps["connectivityAt"]
    detail["containers"] = _containers(task, change)
    cpu = overrides.get("cpu") or definition.spec.get("cpu")
    if cpu:
        detail["cpu"] = str(cpu)
    detail["createdAt"] = stamps["createdAt"]
    detail["desiredStatus"] = change.desired_status
    detail["enableExecuteCommand"] = False
    if task.launch_type == "FARGATE":
        detail["ephemeralStorage"] = {"sizeInGiB": 20}
    if "executionStoppedAt" in stamps:
        detail["executionStoppedAt"] = stamps["executionStoppedAt"]
    detail["group"] = task.group
    detail["launchType"] = task.launch_type
    detail["lastStatus"] = change.last_status
    memory = overrides.get("memory") or definition.spec.get("memory")
    if memory:
        detail["memory"] = str(memory)
    detail["overrides"] = {
        **{key: value for key, value in overrides.items() if key != "containerOverrides"},
        "containerOverrides": container_overrides,
    }
    if task.platform_version is not None:
        detail["platformVersion"] = task.platform_version
    for name in ("pullStartedAt", "pullStoppedAt", "startedAt"):
        if name in stamps:
            detail[name] = stamps[name]
    if task.started_by is not None:
        detail["startedBy"] = task.started_by
    for name in ("stoppingAt", "stoppedAt"):
        if name in stamps:
            detail[name] = stamps[name]
    if change.stopped_reason is not None:
        detail["stoppedReason"] = change.stopped_reason
    if change.stop_code is not None:
        detail["stopCode"] = change.stop_code
    detail["taskArn"] = task.arn
    detail["taskDefinitionArn"] = definition.arn
    detail["updatedAt"] = stamps["updatedAt"]
    detail["version"] = change.version
    return detail


def task_event(task: Task, change: Change, event_id: str | None = None) -> dict[str, Any]:
    """The EventBridge event for ``task`` as it was at ``change`` (see the module doc for the shape)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": ACCOUNT_ID,
        "time": event_time(change.updated_at),
        "region": task.cluster.region,
        "resources": [task.arn],
        "detail": _detail(task, change),
    }


def message_body(task: Task, change: Change) -> str:
    """The SQS message body EventBridge would deliver: the event as compact JSON."""
    return json.dumps(task_event(task, change), separators=(",", ":"))
