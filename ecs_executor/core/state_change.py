"""ECS task state change events, read once at the boundary. Pure: no I/O.

EventBridge delivers each "ECS Task State Change" event (source ``aws.ecs``) to an SQS queue as the
message body, unwrapped. Its ``detail`` is the task as DescribeTasks shows it (same member names; times
are ISO-8601 strings instead of numbers), so the tracker reads it with the same
``core.task_status.task_status``.
Events are at-least-once and unordered; ``detail.version`` grows by one with every change ECS announces
for the task, which is how a consumer spots duplicates, stale events and gaps.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ecs_executor.request.run_task import STARTED_BY

SOURCE = "aws.ecs"
DETAIL_TYPE = "ECS Task State Change"


def rule_pattern(cluster_arns: list[str]) -> dict[str, Any]:
    """The EventBridge pattern of a scheduler's rule: task state changes of the executor's own tasks
    (``startedBy`` begins with STARTED_BY, whichever team) in its clusters. deploy/ecs-executor.yaml and
    docs/event-tracking.md show the same pattern; tests keep them equal."""
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"clusterArn": list(cluster_arns), "startedBy": [{"prefix": STARTED_BY}]},
    }


@dataclass(frozen=True, slots=True)
class TaskEvent:
    task_arn: str
    cluster_arn: str
    version: int
    detail: Mapping[str, Any]  # shaped like a DescribeTasks entry
    changed_at: float | None  # epoch seconds of the change (detail.updatedAt, else the event's time)

    @property
    def cluster_name(self) -> str:
        return self.cluster_arn.split(":cluster/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message that is not an ECS task state change we can use; ``reason`` is for a debug line."""

    reason: str


def parse_message(body: str | bytes) -> TaskEvent | Dropped:
    """One SQS message body -> the event, or why it is not one (never raises)."""
    try:
        event = json.loads(body)
    except (ValueError, TypeError) as exc:
        return Dropped(f"not JSON ({exc})")
    if not isinstance(event, dict):
        return Dropped(f"not a JSON object but {type(event).__name__}")
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        return Dropped(
            f"not an ECS task state change (source={event.get('source')!r}, "
            f"detail-type={event.get('detail-type')!r})"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return Dropped("ECS task state change without a detail object")
    task_arn, cluster_arn, version = detail.get("taskArn"), detail.get("clusterArn"), detail.get("version")
    if not isinstance(task_arn, str) or not isinstance(cluster_arn, str):
        return Dropped("ECS task state change without taskArn or clusterArn")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return Dropped(f"ECS task state change for {task_arn} with version {version!r}")
    changed_at = _epoch(detail.get("updatedAt")) or _epoch(event.get("time"))
    return TaskEvent(task_arn, cluster_arn, version, detail, changed_at)


# ECS writes ``2024-11-13T21:22:46.71Z`` (milliseconds, trailing zeros dropped) and ``…46Z``; Python
# 3.10's fromisoformat reads neither, so the fraction is taken apart here.
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(?:Z|[+-]00:?00)$")


def _epoch(value: Any) -> float | None:
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    whole = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return whole.timestamp() + float(match.group(2) or 0)


class Order(str, enum.Enum):
    """Where an event's version stands against the newest one known for its task."""

    NEXT = "next"  # the change right after the one we know (or the first we know of)
    GAP = "gap"  # newer, but changes in between were not heard (lost or still on their way)
    DUPLICATE = "duplicate"  # the version we already know
    STALE = "stale"  # older than what we know: never move a task backwards


def order(known: int, version: int) -> Order:
    """``known`` is 0 when nothing versioned has been heard yet."""
    if version <= known:
        return Order.DUPLICATE if version == known else Order.STALE
    if known == 0 or version == known + 1:
        return Order.NEXT
    return Order.GAP
