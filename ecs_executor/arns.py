"""ECS task ARNs: pure string helpers shared by the facade (adoption) and the log reader.

Kept apart so ``executor.py`` can recognise an ARN without importing botocore or the log reader.
"""

from __future__ import annotations


def is_task_arn(value: object) -> bool:
    """Whether ``value`` looks like an ECS task ARN (what we store as ``external_executor_id``)."""
    return isinstance(value, str) and value.startswith("arn:") and ":task/" in value


def task_id_from_arn(task_arn: str) -> str:
    """``arn:aws:ecs:r:acct:task/cluster/ID`` (or the old ``task/ID``) -> ``ID``."""
    return task_arn.rstrip("/").rsplit("/", 1)[-1]


def cluster_from_task_arn(task_arn: str) -> str | None:
    """The cluster name embedded in new-format task ARNs (``task/<cluster>/<id>``); None for old ARNs."""
    resource = task_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "task" and parts[1] else None
