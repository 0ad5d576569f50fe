"""ECS's resources as the endpoint holds them: clusters, task definitions, tasks and their containers.

Each record knows its ARN and how DescribeClusters, DescribeTaskDefinition and DescribeTasks show it; the
statuses, stop codes and error type ECS answers with are here too. Pure data: nothing here sleeps, spawns
or talks to the network. Tasks use ``__slots__`` because the benchmarks keep 10,000 of them alive. The
store and its state transitions are ``registry.py``'s.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from ecs_executor.request.ecs_rules import resolve_launch_target

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

    def _container_dict(self, container: Container) -> dict[str, Any]:
        """One container as DescribeTasks shows it."""
        spec = self.definition.containers[container.name]
        return _drop_none(
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

    def to_dict(self, include_tags: bool = True) -> dict[str, Any]:
        definition = self.definition
        overrides = self.overrides or {}
        region = self.cluster.region
        containers = [self._container_dict(container) for container in self.containers]
        data = {
            "attachments": [],
            "attributes": [{"name": "ecs.cpu-architecture", "value": self.cpu_architecture.lower()}],
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
            data["ephemeralStorage"] = {"sizeInGiB": self.ephemeral_storage_gib()}
        return _drop_none(data)

    @property
    def cpu_architecture(self) -> str:
        return str((self.definition.spec.get("runtimePlatform") or {}).get("cpuArchitecture") or "X86_64")

    def ephemeral_storage_gib(self) -> int | None:
        """RunTask's override, else the definition's, else Fargate's default of 20 GiB (None on EC2)."""
        storage = (self.overrides or {}).get("ephemeralStorage") or self.definition.spec.get(
            "ephemeralStorage"
        )
        return int((storage or {}).get("sizeInGiB") or 0) or (20 if self.launch_type == "FARGATE" else None)

    def ran_with(self) -> dict[str, Any]:
        """What the task ran with: its definition's settings with RunTask's overrides applied (what tests
        check a per-task image, platform or size against)."""
        spec, overrides = self.definition.spec, self.overrides or {}
        containers = {}
        for name, container in self.definition.containers.items():
            override = self.container_override(name)
            requirements = override.get("resourceRequirements") or container.get("resourceRequirements") or []
            gpu = next((r.get("value") for r in requirements if r.get("type") == "GPU"), None)
            containers[name] = {"image": container.get("image"), "gpu": gpu}
        return {
            "taskArn": self.arn,
            "taskDefinitionArn": self.definition.arn,
            "launchType": self.launch_type,
            "containers": containers,
            "runtimePlatform": dict(spec.get("runtimePlatform") or {}),
            "cpu": overrides.get("cpu") or spec.get("cpu"),
            "memory": overrides.get("memory") or spec.get("memory"),
            "ephemeralStorageGiB": self.ephemeral_storage_gib(),
        }
