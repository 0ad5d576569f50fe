"""ECS task ARNs: pure string helpers shared by the facade (adoption) and the log reader.

Kept apart so ``executor.py`` can recognise an ARN without importing botocore or the log reader.
"""

from __future__ import annotations

from ecs_executor.request.ecs_rules import (
    cluster_of_task_arn as cluster_from_task_arn,  # one parser (ecs_rules)
)

__all__ = ["cluster_from_task_arn", "is_task_arn", "task_id_from_arn"]


def is_task_arn(value: object) -> bool:
    """Whether ``value`` looks like an ECS task ARN (what we store as ``external_executor_id``)."""
    return isinstance(value, str) and value.startswith("arn:") and ":task/" in value


def task_id_from_arn(task_arn: str) -> str:
    """``arn:aws:ecs:r:acct:task/cluster/ID`` (or the old ``task/ID``) -> ``ID``."""
    return task_arn.rstrip("/").rsplit("/", 1)[-1]
