"""Orphaned ECS tasks: which tasks with this executor's startedBy no scheduler tracks any more, and when
one of them may be stopped. Pure: descriptions, DB rows and clocks come in as values.

A scheduler knows only its own tracked ARNs. What all schedulers share is Airflow's metadata DB: a task
instance whose ``external_executor_id`` is the ECS task's ARN and whose state is ``queued``, ``running``
or ``restarting`` (Airflow's ``State.adoptable_states``: the states in which Airflow expects an executor
to be running the try, and adopts it when its scheduler dies) is still expected by Airflow. In every
other state the try's worker has finished, handed itself back (deferred, up_for_reschedule), or Airflow
moved the task instance on (scheduled again, failed, cleared), so its ECS task has nothing left to do.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecs_executor.request.ecs_rules import MAX_STOP_REASON
from ecs_executor.request.run_task import TAG_PREFIX

LIVE_TI_STATES = frozenset({"queued", "running", "restarting"})
# ECS is already stopping these (or our container has exited): nothing to stop.
FINISHING_STATUSES = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"})

TiKey = tuple[str, str, str, int]  # dag_id, task_id, run_id, map_index


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ECS task ListTasks found with our startedBy, as DescribeTasks (include TAGS) showed it."""

    arn: str
    cluster: str
    key: TiKey | None  # from the airflow:* tags; None without them
    try_number: int | None
    created_at: float | None  # epoch seconds
    finishing: bool
    tags: Mapping[str, str] = field(default_factory=dict)  # the airflow:* ones, for the log line


@dataclass(frozen=True, slots=True)
class TiRow:
    """The task instance the tags name, as Airflow's DB has it now."""

    state: str | None
    try_number: int
    external_executor_id: str | None
    # The scheduler job that queued it, when that job is alive (Airflow's own liveness rule).
    queued_by_live_job: int | None = None


class Verdict(str, enum.Enum):
    TRACKED = "tracked"  # this scheduler tracks it
    FINISHING = "finishing"  # ECS is stopping it, or our container exited
    NOT_OURS = "not ours"  # no airflow:* tags, or no such task instance in this Airflow's DB
    EXPECTED = "expected"  # its task instance is live with this ARN: some scheduler tracks it
    OTHERS = "others"  # another live scheduler queued its task instance: that scheduler's to judge
    UNKNOWN = "unknown"  # nobody expects it: stopped once the grace period has passed


def candidate(task: Mapping[str, Any], cluster: str, container_name: str) -> Candidate:
    tags = {
        str(t.get("key")): str(t.get("value"))
        for t in task.get("tags") or []
        if str(t.get("key", "")).startswith(TAG_PREFIX)
    }
    key: TiKey | None = None
    try_number: int | None = None
    try:
        key = (
            tags[TAG_PREFIX + "dag_id"],
            tags[TAG_PREFIX + "task_id"],
            tags[TAG_PREFIX + "run_id"],
            int(tags[TAG_PREFIX + "map_index"]),
        )
        try_number = int(tags[TAG_PREFIX + "try_number"])
    except (KeyError, ValueError):
        key = None
    exited = any(
        c.get("name") == container_name and c.get("exitCode") is not None
        for c in task.get("containers") or []
    )
    finishing = (
        task.get("desiredStatus") == "STOPPED" or task.get("lastStatus") in FINISHING_STATUSES or exited
    )
    return Candidate(
        str(task.get("taskArn")), cluster, key, try_number, epoch(task.get("createdAt")), finishing, tags
    )


def epoch(value: Any) -> float | None:
    """ECS timestamps: epoch seconds on the wire (how the engine reads responses), datetime via boto3."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def judge(c: Candidate, row: TiRow | None, tracked: bool, own_job: int | None = None) -> tuple[Verdict, str]:
    """The verdict for one task, and why (for the log line and StopTask's reason).

    A task Airflow no longer expects may still be tracked by the live scheduler that queued its task
    instance (a container still running after its try was marked by hand or deferred): that scheduler's
    own sweep judges it, knowing what it tracks. ``own_job`` is this scheduler's job id; unknown (None),
    every live job counts as another's."""
    if tracked:
        return Verdict.TRACKED, "tracked by this scheduler"
    if c.finishing:
        return Verdict.FINISHING, "ECS is stopping it"
    if c.key is None:
        return Verdict.NOT_OURS, "no airflow:* tags"
    if row is None:
        # Callbacks (no task instance), runs deleted since, or another Airflow sharing the cluster.
        return Verdict.NOT_OURS, "no such task instance in this Airflow's DB"
    if row.external_executor_id == c.arn and row.state in LIVE_TI_STATES:
        return Verdict.EXPECTED, f"task instance {row.state} with this ARN"
    if row.queued_by_live_job is not None and row.queued_by_live_job != own_job:
        return Verdict.OTHERS, f"queued by scheduler job {row.queued_by_live_job}, which is alive"
    holder = row.external_executor_id or "none"
    other = "this task" if holder == c.arn else f"ECS task {holder}"
    return Verdict.UNKNOWN, f"task instance is {row.state or 'none'} at try {row.try_number}, with {other}"


class GraceClock:
    """When the sweep first saw each task unknown (monotonic seconds); forgotten once it is not."""

    def __init__(self) -> None:
        self.first_unknown: dict[str, float] = {}

    def due(self, c: Candidate, now: float, wall_now: float, grace: float) -> bool:
        """Unknown for ``grace`` seconds of this scheduler's watching AND created ``grace`` seconds ago: a
        task another scheduler launched a moment ago, whose ARN that scheduler has not stored yet, lives."""
        first = self.first_unknown.setdefault(c.arn, now)
        if now - first < grace:
            return False
        return c.created_at is None or wall_now - c.created_at >= grace

    def unknown_for(self, arn: str, now: float) -> float:
        return now - self.first_unknown.get(arn, now)

    def forget(self, arn: str) -> None:
        self.first_unknown.pop(arn, None)

    def keep_only(self, arns: Iterable[str]) -> None:
        """Tasks no longer listed (stopped, or gone) are forgotten."""
        keep = set(arns)
        self.first_unknown = {a: t for a, t in self.first_unknown.items() if a in keep}


def decide(
    candidates: Iterable[Candidate],
    rows: Mapping[TiKey, TiRow],
    tracked: Iterable[str],
    clock: GraceClock,
    *,
    now: float,
    wall_now: float,
    grace: float,
    own_job: int | None = None,
) -> list[tuple[Candidate, str]]:
    """The tasks to stop now, each with why; updates the clock for every candidate."""
    mine = set(tracked)
    stop: list[tuple[Candidate, str]] = []
    for c in candidates:
        verdict, why = judge(c, rows.get(c.key) if c.key else None, c.arn in mine, own_job)
        if verdict is not Verdict.UNKNOWN:
            clock.forget(c.arn)
        elif clock.due(c, now, wall_now, grace):
            stop.append((c, why))
    return stop


def stop_reason(why: str, grace: float) -> str:
    """StopTask's reason (shown as the task's stoppedReason)."""
    text = f"Airflow ECS executor: orphaned task, tracked by no scheduler for {grace:.0f}s ({why})"
    return text[:MAX_STOP_REASON]


def describe_tags(c: Candidate) -> str:
    return ", ".join(f"{k.removeprefix(TAG_PREFIX)}={v}" for k, v in sorted(c.tags.items())) or "no tags"
