"""ECS task ARNs: the cluster and the task ID, new and old format."""

from __future__ import annotations

import pytest

from ecs_executor.request.arns import cluster_from_task_arn, task_id_from_arn

ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
OLD_ARN = "arn:aws:ecs:us-east-1:123456789012:task/0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("arn", "cluster", "task_id"),
    [(ARN, "prod", "0123456789abcdef0123456789abcdef"), (OLD_ARN, None, "0123456789abcdef0123456789abcdef")],
)
def test_arn_parts(arn: str, cluster: str | None, task_id: str):
    assert cluster_from_task_arn(arn) == cluster
    assert task_id_from_arn(arn) == task_id
