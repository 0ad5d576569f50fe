"""Map an ECS task description to what Airflow should be told. Pure: dicts in, value objects out.

An exit code of 0 from ``execute_workload`` means the Airflow task ran to an end (its real state travels
through the Execution API); non-zero means the worker crashed. A task stopped with ``TaskFailedToStart``
never ran the Airflow try, so it may be relaunched.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# entrypoint.sh exit codes (docs/worker-image.md).
EXIT_NO_COMMAND = 64
EXIT_DAG_SYNC_FAILED = 66
EXIT_VERSION_UNREADABLE = 70
EXIT_VERSION_MISMATCH = 78
# ecs_executor.worker exit codes: the sealed workload could not be opened, so the try never ran.
EXIT_KMS_KEY_UNUSABLE = 81
EXIT_KMS_ACCESS_DENIED = 82
EXIT_CONTEXT_MISMATCH = 83
EXIT_ENVELOPE_CORRUPT = 84
EXIT_KMS_UNREACHABLE = 85

EXIT_MEANINGS = {
    EXIT_VERSION_MISMATCH: "worker image's Python/Airflow version does not match the scheduler's "
    "(entrypoint.sh version check; rebuild the image with matching versions)",
    EXIT_DAG_SYNC_FAILED: "entrypoint.sh could not sync DAGs from S3 (check s3_url and the task role)",
    EXIT_NO_COMMAND: "entrypoint.sh was started without a command",
    EXIT_VERSION_UNREADABLE: "entrypoint.sh could not read the image's Python/Airflow version",
    EXIT_KMS_KEY_UNUSABLE: "the worker could not unwrap the workload's data key: the KMS key "
    "(workload_kms_key) is disabled, pending deletion, not found or unavailable (custom key store); enable "
    "it or set another key",
    EXIT_KMS_ACCESS_DENIED: "the task role may not decrypt with the KMS key (workload_kms_key): grant it "
    "kms:Decrypt conditioned on ecs-executor:purpose=airflow-workload (docs/security.md)",
    EXIT_CONTEXT_MISMATCH: "the sealed workload does not authenticate for this try (made for another "
    "try, or altered); the task never ran",
    EXIT_ENVELOPE_CORRUPT: "the container's command is not a readable sealed workload (truncated, or "
    "made by another version of ecs_executor)",
    EXIT_KMS_UNREACHABLE: "the worker got no answer from KMS (network, endpoint, Region, or throttled "
    "after retries; see the container log); the task never ran",
    1: "the worker process failed (see its container log: often the Execution API is unreachable or "
    "the DAG file is missing in the image)",
    126: "the command cannot be executed (permissions)",
    127: "the command was not found in the image",
    137: "killed with SIGKILL, usually out of memory (raise the task or container memory)",
    139: "segmentation fault in the worker",
    143: "terminated with SIGTERM",
}

_PENDING = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
_RUNNING = frozenset({"RUNNING"})


class Phase(str, enum.Enum):
    """Where an ECS task stands, from the executor's point of view: what one description means.

    Not the engine's tracking state of the try (``core.lifecycle.TryState``), which also knows launching,
    relaunching, adopted, superseded and done."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    SUCCESS = "success"
    FAILED = "failed"
    FAILED_TO_START = "failed_to_start"

    @property
    def is_terminal(self) -> bool:
        return self in (Phase.SUCCESS, Phase.FAILED, Phase.FAILED_TO_START)


@dataclass(frozen=True)
class TaskStatus:
    """The verdict on one description: phase, a one-line reason and the facts behind it."""

    phase: Phase
    reason: str = ""
    exit_code: int | None = None
    stop_code: str | None = None
    # False for a verdict given at the container's exit while ECS still stops the task (DEACTIVATING,
    # STOPPING, DEPROVISIONING): the executor reports it and keeps watching the task until STOPPED.
    task_stopped: bool = True


def _container(task: Mapping[str, Any], container_name: str) -> Mapping[str, Any] | None:
    containers = task.get("containers") or []
    for c in containers:
        if c.get("name") == container_name:
            return c
    return containers[0] if containers else None


def describe_exit(code: int) -> str:
    meaning = EXIT_MEANINGS.get(code)
    return f"exited with code {code}" + (f": {meaning}" if meaning else "")


def task_status(task: Mapping[str, Any], container_name: str) -> TaskStatus:
    """Classify one DescribeTasks entry (or an event's detail).

    The verdict comes as soon as our container has an exit code, which ECS shows while the task is still
    stopping: an exit code is final, and a stop code that changes what it means (SpotInterruption,
    UserInitiated) is set when the stop is requested, before the container is signalled. Without an exit
    code only STOPPED decides (a task that never started, or stopped before its container ran)."""
    last = task.get("lastStatus", "")
    if last in _PENDING:
        return TaskStatus(Phase.PENDING, f"ECS task is {last}")
    container = _container(task, container_name) or {}
    exit_code = container.get("exitCode")
    stopped = last == "STOPPED"
    if not stopped and container.get("lastStatus") != "STOPPED":
        exit_code = None  # ECS sets it when the container stops (moto shows 0 from the start)
    if not stopped and exit_code is None:
        if last in _RUNNING and task.get("desiredStatus") != "STOPPED":
            return TaskStatus(Phase.RUNNING, "ECS task is RUNNING")
        return TaskStatus(Phase.STOPPING, f"ECS task is {last or 'stopping'}")

    stop_code = task.get("stopCode")
    if stopped:
        parts = [f"ECS task stopped ({stop_code or 'no stop code'})"]
    else:
        parts = [f"ECS task is {last or 'stopping'} ({stop_code or 'container exited'})"]
    if task.get("stoppedReason"):
        parts.append(str(task["stoppedReason"]))
    if container.get("name"):
        detail = f"container {container['name']!r} "
        detail += describe_exit(exit_code) if exit_code is not None else "has no exit code"
        if container.get("reason"):
            detail += f" ({container['reason']})"
        parts.append(detail)
    reason = "; ".join(parts)

    if stop_code == "TaskFailedToStart" and exit_code is None:
        return TaskStatus(Phase.FAILED_TO_START, reason, None, stop_code)
    if exit_code == 0:
        return TaskStatus(Phase.SUCCESS, reason, 0, stop_code, stopped)
    return TaskStatus(Phase.FAILED, reason, exit_code, stop_code, stopped)
