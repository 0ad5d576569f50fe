"""In-memory ECS registry: clusters, task definitions and tasks, with their state transitions.

Pure data: nothing here sleeps, spawns or talks to the network, so the lifecycle rules can be read (and
tested) in one place. Tasks use ``__slots__`` because the benchmarks keep 10,000 of them alive.

Every change ECS would announce as a task state change event (a new task, and each ``version`` bump: a
lastStatus or desiredStatus change, a container exit) calls ``Registry.on_change`` once, after the task
holds its new state; ``event_publisher.EventPublisher`` uses it to deliver the events to SQS.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from ecs_executor.request.ecs_rules import cluster_of_task_arn, resolve_launch_target

ACCOUNT_ID = "123456789012"

# lastStatus values, in lifecycle order ("Amazon ECS task lifecycle"); which ones a task passes through
# depends on the timing profile (timing.py).
PROVISIONING = "PROVISIONING"
PENDING = "PENDING"
ACTIVATING = "ACTIVATING"
RUNNING = "RUNNING"
DEACTIVATING = "DEACTIVATING"
STOPPING = "STOPPING"
DEPROVISIONING = "DEPROVISIONING"
STOPPED = "STOPPED"

TASK_FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"
USER_INITIATED = "UserInitiated"
SPOT_INTERRUPTION = "SpotInterruption"

ESSENTIAL_EXITED_REASON = "Essential container in task exited"
USER_STOPPED_REASON = "Task stopped by user"
SPOT_INTERRUPTED_REASON = "Your Spot Task was interrupted."

_CONTAINER_NAMESPACE = uuid.UUID("6f1d51c4-93c5-4a8e-9a55-3f4d8ac2e0b7")


class EcsError(Exception):
    """An error ECS reports as ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.extra}


def invalid(message: str) -> EcsError:
    return EcsError("InvalidParameterException", message)


def cluster_arn(region: str, name: str) -> str:
    return f"arn:aws:ecs:{region}:{ACCOUNT_ID}:cluster/{name}"


def cluster_name_of(identifier: str) -> str:
    """Accept a cluster name or ARN, like ECS does everywhere a cluster is named."""
    if identifier.startswith("arn:"):
        return identifier.split(":cluster/", 1)[-1]
    return identifier


def task_id_of(identifier: str) -> str:
    """Accept a task ARN (new or old format) or a bare task id."""
    return identifier.rsplit("/", 1)[-1]


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


class Cluster:
    __slots__ = (
        "arn",
        "capacity_providers",
        "client_tokens",
        "configuration",
        "counts",
        "default_strategy",
        "desired_running",
        "name",
        "region",
        "settings",
        "tags",
        "tasks",
    )

    def __init__(self, region: str, name: str, params: dict[str, Any]) -> None:
        self.region = region
        self.name = name
        self.arn = cluster_arn(region, name)
        self.tags: list[dict[str, str]] = list(params.get("tags") or [])
        self.settings: list[dict[str, str]] = list(
            params.get("settings") or [{"name": "containerInsights", "value": "disabled"}]
        )
        self.configuration: dict[str, Any] | None = params.get("configuration")
        self.capacity_providers: list[str] = list(params.get("capacityProviders") or [])
        self.default_strategy: list[dict[str, Any]] = list(
            params.get("defaultCapacityProviderStrategy") or []
        )
        # Every task ever run here, in launch order (ListTasks pages through it).
        self.tasks: dict[str, Task] = {}
        # Tasks whose desiredStatus is still RUNNING: the default ListTasks filter stays cheap.
        self.desired_running: dict[str, Task] = {}
        self.counts: Counter[str] = Counter()
        # clientToken -> (request fingerprint, task ARNs, failures)
        self.client_tokens: dict[str, tuple[str, list[str], list[dict[str, str]]]] = {}

    def to_dict(self, include: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "clusterArn": self.arn,
            "clusterName": self.name,
            "status": "ACTIVE",
            "registeredContainerInstancesCount": 0,
            "runningTasksCount": self.counts[RUNNING],
            "pendingTasksCount": self.counts[PROVISIONING] + self.counts[PENDING] + self.counts[ACTIVATING],
            "activeServicesCount": 0,
            "statistics": [],
            "tags": self.tags if "TAGS" in include else [],
            "settings": self.settings if "SETTINGS" in include else [],
            "capacityProviders": self.capacity_providers,
            "defaultCapacityProviderStrategy": self.default_strategy,
        }
        if self.configuration is not None and "CONFIGURATIONS" in include:
            data["configuration"] = self.configuration
        if "ATTACHMENTS" in include:
            data["attachments"] = []
        return data


class TaskDefinition:
    __slots__ = ("arn", "containers", "family", "registered_at", "revision", "spec", "status", "tags")

    def __init__(self, region: str, revision: int, spec: dict[str, Any], registered_at: float) -> None:
        self.family: str = spec["family"]
        self.revision = revision
        self.arn = f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{self.family}:{revision}"
        self.tags: list[dict[str, str]] = list(spec.get("tags") or [])
        self.spec = {key: value for key, value in spec.items() if key != "tags"}
        self.containers: dict[str, dict[str, Any]] = {c["name"]: c for c in self.spec["containerDefinitions"]}
        self.status = "ACTIVE"
        self.registered_at = registered_at

    @property
    def fargate(self) -> bool:
        return "FARGATE" in (self.spec.get("requiresCompatibilities") or [])

    @property
    def ec2(self) -> bool:
        """Runnable on EC2 here: it requires nothing, or requires EC2 (or EXTERNAL) among others."""
        required = self.spec.get("requiresCompatibilities") or []
        return not required or bool({"EC2", "EXTERNAL"} & set(required))

    def to_dict(self) -> dict[str, Any]:
        compatibilities = ["EC2", "FARGATE"] if self.fargate else ["EXTERNAL", "EC2"]
        return {
            "taskDefinitionArn": self.arn,
            **self.spec,
            "revision": self.revision,
            "status": self.status,
            "compatibilities": compatibilities,
            "requiresAttributes": [],
            "placementConstraints": self.spec.get("placementConstraints", []),
            "volumes": self.spec.get("volumes", []),
            "registeredAt": self.registered_at,
            "registeredBy": f"arn:aws:iam::{ACCOUNT_ID}:root",
        }


class Container:
    __slots__ = ("exit_code", "last_status", "name", "reason")

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_status = PENDING
        self.exit_code: int | None = None
        self.reason: str | None = None


class Task:
    __slots__ = (
        "arn",
        "capacity_provider_name",
        "cluster",
        "containers",
        "created_at",
        "definition",
        "desired_status",
        "execution_stopped_at",
        "group",
        "id",
        "last_status",
        "launch_type",
        "overrides",
        "platform_version",
        "pull_started_at",
        "pull_stopped_at",
        "seq",
        "started_at",
        "started_by",
        "stop_code",
        "stopped_at",
        "stopped_reason",
        "stopping_at",
        "tags",
        "version",
    )

    def __init__(
        self,
        cluster: Cluster,
        definition: TaskDefinition,
        seq: int,
        created_at: float,
        params: dict[str, Any],
    ) -> None:
        self.id = uuid.uuid4().hex
        self.cluster = cluster
        self.arn = f"arn:aws:ecs:{cluster.region}:{ACCOUNT_ID}:task/{cluster.name}/{self.id}"
        self.definition = definition
        self.seq = seq
        self.overrides: dict[str, Any] | None = params.get("overrides") or None
        self.started_by: str | None = params.get("startedBy")
        self.group: str = params.get("group") or f"family:{definition.family}"
        self.tags: list[dict[str, str]] | None = params.get("tags") or None
        launch_type, provider = resolve_launch_target(params, cluster.default_strategy)
        self.capacity_provider_name: str | None = provider
        self.launch_type: str = launch_type
        self.platform_version: str | None = params.get("platformVersion") or (
            "1.4.0" if launch_type == "FARGATE" else None
        )
        self.containers = [Container(name) for name in definition.containers]
        self.last_status = PROVISIONING
        self.desired_status = RUNNING
        self.created_at = created_at
        self.pull_started_at: float | None = None
        self.pull_stopped_at: float | None = None
        self.started_at: float | None = None
        self.stopping_at: float | None = None
        self.execution_stopped_at: float | None = None
        self.stopped_at: float | None = None
        self.stop_code: str | None = None
        self.stopped_reason: str | None = None
        self.version = 1

    def container_arn(self, name: str) -> str:
        """The new-format container ARN; stable for a task and container name."""
        container_id = uuid.uuid5(_CONTAINER_NAMESPACE, self.id + name)
        cluster = self.cluster
        return f"arn:aws:ecs:{cluster.region}:{ACCOUNT_ID}:container/{cluster.name}/{self.id}/{container_id}"

    def container_override(self, name: str) -> dict[str, Any]:
        for override in (self.overrides or {}).get("containerOverrides") or []:
            if override.get("name") == name:
                return dict(override)
        return {}

    def to_dict(self, include_tags: bool = True) -> dict[str, Any]:
        definition = self.definition
        overrides = self.overrides or {}
        region = self.cluster.region
        containers = []
        for container in self.containers:
            spec = definition.containers[container.name]
            containers.append(
                _drop_none(
                    {
                        "containerArn": self.container_arn(container.name),
                        "taskArn": self.arn,
                        "name": container.name,
                        "image": spec.get("image"),
                        "lastStatus": container.last_status,
                        "exitCode": container.exit_code,
                        "reason": container.reason,
                        "networkBindings": [],
                        "networkInterfaces": [],
                        "healthStatus": "UNKNOWN",
                        "cpu": str(spec.get("cpu", 0)),
                        "memory": str(spec["memory"]) if "memory" in spec else None,
                    }
                )
            )
        data = {
            "attachments": [],
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "availabilityZone": f"{region}a",
            "capacityProviderName": self.capacity_provider_name,
            "clusterArn": self.cluster.arn,
            "connectivity": "CONNECTED" if self.pull_started_at is not None else None,
            "connectivityAt": self.pull_started_at,
            "containers": containers,
            "cpu": str(overrides.get("cpu") or definition.spec.get("cpu") or "") or None,
            "memory": str(overrides.get("memory") or definition.spec.get("memory") or "") or None,
            "createdAt": self.created_at,
            "desiredStatus": self.desired_status,
            "enableExecuteCommand": False,
            "executionStoppedAt": self.execution_stopped_at,
            "group": self.group,
            "healthStatus": "UNKNOWN",
            "lastStatus": self.last_status,
            "launchType": self.launch_type,
            "overrides": {"containerOverrides": [], "inferenceAcceleratorOverrides": [], **overrides},
            "platformVersion": self.platform_version,
            "platformFamily": "Linux" if self.launch_type == "FARGATE" else None,
            "pullStartedAt": self.pull_started_at,
            "pullStoppedAt": self.pull_stopped_at,
            "startedAt": self.started_at,
            "startedBy": self.started_by,
            "stopCode": self.stop_code,
            "stoppedAt": self.stopped_at,
            "stoppedReason": self.stopped_reason,
            "stoppingAt": self.stopping_at,
            "tags": (self.tags or []) if include_tags else None,
            "taskArn": self.arn,
            "taskDefinitionArn": definition.arn,
            "version": self.version,
        }
        if self.launch_type == "FARGATE":
            data["ephemeralStorage"] = {"sizeInGiB": 20}
        return _drop_none(data)


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
        return revisions[int(revision) - 1]

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
        self.request_stop(task, TASK_FAILED_TO_START, reason)
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
