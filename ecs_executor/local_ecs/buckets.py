"""ECS's API rate limits as the local endpoint emulates them: which token bucket each operation spends
and each bucket's real size (the numbers live in request/ecs_rules.py); knobs may resize a bucket."""

from __future__ import annotations

from ecs_executor.request.ecs_rules import (
    DESCRIBE_BURST,
    DESCRIBE_RATE,
    EC2_RUN_TASK_RATE,
    FARGATE_RUN_TASK_RATE,
    RUN_TASK_BURST,
    TAG_MODIFY_BURST,
    TAG_MODIFY_RATE,
    TAG_READ_BURST,
    TAG_READ_RATE,
    TASK_DEFINITION_DELETE_BURST,
    TASK_DEFINITION_DELETE_RATE,
    TASK_DEFINITION_MODIFY_BURST,
    TASK_DEFINITION_MODIFY_RATE,
    TASK_DEFINITION_READ_BURST,
    TASK_DEFINITION_READ_RATE,
)

#: Operation groups with their real-ECS (burst, refill per second) token buckets. Operations not listed
#: here are never throttled by the bucket emulation.
DEFAULT_BUCKETS: dict[str, tuple[float, float]] = {
    "cluster_modify": (RUN_TASK_BURST, EC2_RUN_TASK_RATE),  # RunTask, StartTask, StopTask
    "cluster_read": (DESCRIBE_BURST, DESCRIBE_RATE),  # DescribeTasks, ListTasks
    "cluster_describe": (50, 20),  # DescribeClusters
    # ECS's published task definition and tag buckets (Register/Deregister share "modify"; the three
    # reads share "read")...
    "task_definition_modify": (TASK_DEFINITION_MODIFY_BURST, TASK_DEFINITION_MODIFY_RATE),
    "task_definition_read": (TASK_DEFINITION_READ_BURST, TASK_DEFINITION_READ_RATE),
    "tag_modify": (TAG_MODIFY_BURST, TAG_MODIFY_RATE),  # TagResource, UntagResource
    "tag_read": (TAG_READ_BURST, TAG_READ_RATE),  # ListTagsForResource
    "task_definition_delete": (TASK_DEFINITION_DELETE_BURST, TASK_DEFINITION_DELETE_RATE),
    # Task launches with launchType FARGATE, only when fargate=True.
    "fargate_launch": (RUN_TASK_BURST, FARGATE_RUN_TASK_RATE),
}

OPERATION_BUCKETS: dict[str, str] = {
    "RunTask": "cluster_modify",
    "StartTask": "cluster_modify",
    "StopTask": "cluster_modify",
    "DescribeTasks": "cluster_read",
    "ListTasks": "cluster_read",
    "DescribeClusters": "cluster_describe",
    "RegisterTaskDefinition": "task_definition_modify",
    "DeregisterTaskDefinition": "task_definition_modify",
    "DescribeTaskDefinition": "task_definition_read",
    "ListTaskDefinitions": "task_definition_read",
    "ListTaskDefinitionFamilies": "task_definition_read",
    "DeleteTaskDefinitions": "task_definition_delete",
    "TagResource": "tag_modify",
    "UntagResource": "tag_modify",
    "ListTagsForResource": "tag_read",
}
