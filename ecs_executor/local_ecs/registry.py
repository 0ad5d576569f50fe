"""The endpoint's ECS state: every cluster, task definition and task, and the tasks' state transitions.

Pure data, like ``model.py``: nothing here sleeps, spawns or talks to the network, so the lifecycle rules
can be read (and tested) in one place; ``runner.py`` decides when each transition happens.

Every change ECS would announce as a task state change event (a new task, and each ``version`` bump: a
lastStatus or desiredStatus change, a container exit) calls ``Registry.on_change`` once, after the task
holds its new state; ``event_publisher.EventPublisher`` uses it to deliver the events to SQS.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from ecs_executor.local_ecs.model import (
    DEPROVISIONING,
    ESSENTIAL_CONTAINER_EXITED,
    ESSENTIAL_EXITED_REASON,
    PENDING,
    PROVISIONING,
    RUNNING,
    SPOT_INTERRUPTED_REASON,
    SPOT_INTERRUPTION,
    STOPPED,
    TASK_FAILED_TO_START,
    Cluster,
    EcsError,
    Task,
    TaskDefinition,
    cluster_name_of,
    task_id_of,
)
from ecs_executor.request.ecs_rules import cluster_of_task_arn

# A deleted task definition revision that no task uses any more: gone (never a status ECS shows).
DELETE_IN_PROGRESS, GONE = "DELETE_IN_PROGRESS", "DELETED"


class Registry:
    """All ECS state of the endpoint, keyed by Region like the real service."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.clusters: dict[tuple[str, str], Cluster] = {}
        self.families: dict[tuple[str, str], list[TaskDefinition]] = {}
        self.tasks: dict[str, Task] = {}
        self.status_counts: Counter[str] = Counter()
        self.tasks_started = 0
        self.deduplicated = 0
        self._seq = 0
        # Called with the task after each change ECS would publish as an event (see the module doc).
        self.on_change: Callable[[Task], None] | None = None

    # Clusters -------------------------------------------------------------------------------------

    def create_cluster(self, region: str, name: str, params: dict[str, Any]) -> Cluster:
        key = (region, name)
        if key not in self.clusters:
            self.clusters[key] = Cluster(region, name, params)
        return self.clusters[key]

    def find_cluster(self, region: str, identifier: str) -> Cluster | None:
        return self.clusters.get((region, cluster_name_of(identifier)))

    def cluster(self, region: str, identifier: str | None) -> Cluster:
        found = self.find_cluster(region, identifier or "default")
        if found is None:
            raise EcsError("ClusterNotFoundException", "Cluster not found.")
        return found

    # Task definitions -----------------------------------------------------------------------------

    def register(self, region: str, spec: dict[str, Any]) -> TaskDefinition:
        revisions = self.families.setdefault((region, spec["family"]), [])
        definition = TaskDefinition(region, len(revisions) + 1, spec, self.clock())
        revisions.append(definition)
        return definition

    def find_definition(self, region: str, identifier: str) -> TaskDefinition | None:
        """Resolve ``family`` (latest ACTIVE), ``family:revision`` or a task definition ARN."""
        if identifier.startswith("arn:"):
            if ":task-definition/" not in identifier:
                return None
            identifier = identifier.split(":task-definition/", 1)[1]
        family, _, revision = identifier.partition(":")
        revisions = self.families.get((region, family)) or []
        if not revision:
            active = [d for d in revisions if d.status == "ACTIVE"]
            return active[-1] if active else None
        if not revision.isdigit() or not 1 <= int(revision) <= len(revisions):
            return None
        definition = revisions[int(revision) - 1]
        if definition.status == DELETE_IN_PROGRESS and not self.definition_in_use(definition):
            definition.status = GONE  # deleted, and no task uses it any more
        return None if definition.status == GONE else definition

    def definition_in_use(self, definition: TaskDefinition) -> bool:
        return any(t.definition is definition and t.last_status != STOPPED for t in self.tasks.values())

    # Tasks ----------------------------------------------------------------------------------------

    def new_task(self, cluster: Cluster, definition: TaskDefinition, params: dict[str, Any]) -> Task:
        self._seq += 1
        task = Task(cluster, definition, self._seq, self.clock(), params)
        self.tasks[task.id] = task
        cluster.tasks[task.id] = task
        cluster.desired_running[task.id] = task
        cluster.counts[PROVISIONING] += 1
        self.status_counts[PROVISIONING] += 1
        self.tasks_started += 1
        if self.on_change is not None:
            self.on_change(task)
        return task

    def find_task(self, identifier: str, cluster: Cluster | None = None) -> Task | None:
        task = self.tasks.get(task_id_of(identifier))
        if task is None or (cluster is not None and task.cluster is not cluster):
            return None
        named = cluster_of_task_arn(identifier)
        if named is not None and named != task.cluster.name:
            return None  # an ARN naming another cluster is not this task, whatever its id
        return task

    def iter_tasks(self, cluster: Cluster, desired_status: str, after_seq: int) -> Iterator[Task]:
        source = cluster.desired_running if desired_status in (RUNNING, PENDING) else cluster.tasks
        for task in source.values():
            if task.seq > after_seq and (desired_status != STOPPED or task.desired_status == STOPPED):
                yield task

    def _set_status(self, task: Task, status: str) -> None:
        if task.last_status == status:
            return
        for counts in (self.status_counts, task.cluster.counts):
            counts[task.last_status] -= 1
            counts[status] += 1
        task.last_status = status
        self._bump(task)

    def _want_stopped(self, task: Task, now: float) -> None:
        if task.stopping_at is None:
            task.stopping_at = now
        if task.desired_status != STOPPED:
            task.desired_status = STOPPED
            task.cluster.desired_running.pop(task.id, None)
            self._bump(task)

    def _bump(self, task: Task) -> None:
        """A new version of the task, announced once it holds its new state."""
        task.version += 1
        if self.on_change is not None:
            self.on_change(task)

    # Transitions ----------------------------------------------------------------------------------

    def to_pending(self, task: Task) -> None:
        self.advance(task, PENDING, pulling=True)

    def advance(self, task: Task, status: str, pulling: bool = False) -> None:
        """A step of the timing profile's walk up or down; ``pulling``: the image pull starts here."""
        if pulling:
            task.pull_started_at = task.pull_started_at or self.clock()
        self._set_status(task, status)

    def to_running(self, task: Task) -> None:
        now = self.clock()
        task.pull_stopped_at = task.pull_stopped_at or now
        task.started_at = now
        for container in task.containers:
            container.last_status = RUNNING
        self._set_status(task, RUNNING)

    def request_stop(self, task: Task, stop_code: str, reason: str) -> bool:
        """Record why a task stops (first cause wins); False when it was already stopping."""
        if task.stop_code is not None:
            self._want_stopped(task, self.clock())
            return False
        task.stop_code = stop_code
        task.stopped_reason = reason
        self._want_stopped(task, self.clock())
        return True

    def fail_to_start(self, task: Task, reason: str) -> None:
        task.pull_stopped_at = task.pull_stopped_at or self.clock()
        # Spot reclaiming the capacity before the containers start (knob spot_interruption_before_start).
        code = SPOT_INTERRUPTION if reason == SPOT_INTERRUPTED_REASON else TASK_FAILED_TO_START
        self.request_stop(task, code, reason)
        for container in task.containers:
            container.last_status = STOPPED
            container.reason = reason
        self.to_deprovisioning(task)

    def container_exited(self, task: Task, name: str, exit_code: int | None, essential: bool) -> None:
        for container in task.containers:
            if container.name == name and container.last_status != STOPPED:
                container.last_status = STOPPED
                container.exit_code = exit_code
                if all(other.last_status == STOPPED for other in task.containers):
                    task.execution_stopped_at = self.clock()  # the last container stopped
                self._bump(task)
        if essential:
            self.request_stop(task, ESSENTIAL_CONTAINER_EXITED, ESSENTIAL_EXITED_REASON)

    def to_deprovisioning(self, task: Task) -> None:
        now = self.clock()
        self._want_stopped(task, now)
        task.execution_stopped_at = task.execution_stopped_at or now
        for container in task.containers:
            container.last_status = STOPPED
        self._set_status(task, DEPROVISIONING)

    def to_stopped(self, task: Task) -> None:
        self.to_deprovisioning(task)
        task.stopped_at = self.clock()
        self._set_status(task, STOPPED)
