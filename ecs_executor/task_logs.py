"""Live container logs from CloudWatch Logs, for the Airflow UI while a task instance is RUNNING.

Airflow's API server calls ``executor.get_task_log(ti, try_number)`` for running task instances; the
ECS task's ARN is the task instance's ``external_executor_id``. The container's output is only reachable
through the ``awslogs`` log driver, whose stream name we can predict from the task definition:
``<awslogs-stream-prefix>/<container name>/<task id>``.

Calls are synchronous boto3 (the API server, not the scheduler, runs them) with short timeouts and few
retries so a slow AWS answer never hangs a UI request. Nothing here raises to the caller: every failure
becomes one explanatory line. Airflow is imported lazily (only for the connection hook).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError

if TYPE_CHECKING:
    from ecs_executor.config import EcsExecutorSettings

DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000  # CloudWatch Logs GetLogEvents maximum
TASK_DEFINITION_CACHE_SIZE = 128
PREFIX = "ECS executor:"

# Short timeouts and two attempts: these calls run inside a UI request or a one-shot CLI.
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=15,
    retries={"mode": "standard", "max_attempts": 2},
)


# ---- pure -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLocation:
    """Where one container of one ECS task writes its output in CloudWatch Logs."""

    group: str
    stream: str
    region: str | None = None

    @property
    def source(self) -> str:
        return f"CloudWatch Logs {self.group}/{self.stream}"


def task_id_from_arn(task_arn: str) -> str:
    """``arn:aws:ecs:r:acct:task/cluster/ID`` (or the old ``task/ID``) -> ``ID``."""
    return task_arn.rstrip("/").rsplit("/", 1)[-1]


def cluster_from_task_arn(task_arn: str) -> str | None:
    """The cluster name embedded in new-format task ARNs (``task/<cluster>/<id>``); None for old ARNs."""
    resource = task_arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "task" and parts[1] else None


def is_task_arn(value: object) -> bool:
    return isinstance(value, str) and value.startswith("arn:") and ":task/" in value


def _container(task_definition: Mapping[str, Any], container_name: str) -> Mapping[str, Any] | None:
    for container in task_definition.get("containerDefinitions") or []:
        if container.get("name") == container_name:
            return container
    return None


def awslogs_problem(task_definition: Mapping[str, Any], container_name: str) -> str | None:
    """Why the container's CloudWatch stream cannot be located; None when it can."""
    container = _container(task_definition, container_name)
    if container is None:
        names = [str(c.get("name")) for c in task_definition.get("containerDefinitions") or []]
        return f"the task definition has no container named {container_name!r} (it has: {', '.join(names)})"
    config = container.get("logConfiguration") or {}
    driver = config.get("logDriver")
    if driver != "awslogs":
        return (
            f"container {container_name!r} uses the {driver or 'default (json-file)'} log driver, not "
            "awslogs; live logs are read from CloudWatch Logs only"
        )
    options = config.get("options") or {}
    if not options.get("awslogs-group"):
        return f"container {container_name!r} sets no awslogs-group"
    if not options.get("awslogs-stream-prefix"):
        return (
            f"container {container_name!r} sets no awslogs-stream-prefix, so its CloudWatch stream name "
            "cannot be derived from the task ARN"
        )
    return None


def awslogs_location(
    task_definition: Mapping[str, Any], container_name: str, task_arn: str
) -> LogLocation | None:
    """The CloudWatch Logs group and stream of ``container_name`` in the task ``task_arn``.

    ECS names awslogs streams ``<awslogs-stream-prefix>/<container name>/<task id>``. Without a prefix
    the stream is named after the Docker container ID, which is neither in the task definition nor
    known before the container starts, so no location can be predicted: None. None also when the
    container does not exist or does not use the ``awslogs`` driver. ``region`` is ``awslogs-region``
    (None: the task's own Region).
    """
    if awslogs_problem(task_definition, container_name) is not None:
        return None
    task_id = task_id_from_arn(task_arn)
    if not task_id:
        return None
    container = _container(task_definition, container_name) or {}
    options = container["logConfiguration"]["options"]
    return LogLocation(
        group=str(options["awslogs-group"]),
        stream=f"{options['awslogs-stream-prefix']}/{container_name}/{task_id}",
        region=options.get("awslogs-region") or None,
    )


def describe_error(exc: BaseException) -> str:
    """One short line for any boto error (codes and messages only: no request data or credentials)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code") or "Error"
        message = str(err.get("Message") or "").strip()
        return f"{code}: {message}" if message else str(code)
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


# ---- AWS clients from the Airflow connection -------------------------------------------------------


class ClientSource(Protocol):
    """What readers and checks need: a boto3 client per service (tests pass fakes)."""

    def client(self, service: str, region_name: str | None = None) -> Any: ...


class AwsClients:
    """boto3 clients built from the executor's Airflow AWS connection, created on first use and cached.

    Uses the provider's ``AwsBaseHook`` so credentials, ``role_arn`` assumption, ``botocore_kwargs``,
    ``verify`` and ``endpoint_url`` (global or per service in the connection extra) behave exactly as for
    every other AWS hook; with no endpoint in the connection, botocore honours ``AWS_ENDPOINT_URL_<SERVICE>``
    and ``AWS_ENDPOINT_URL``. A missing connection falls back to the default credential chain.
    """

    def __init__(self, conn_id: str | None, region_name: str, config: Config | None = None):
        self.conn_id = conn_id or None
        self.region_name = region_name
        self._config = config or CLIENT_CONFIG
        self._lock = threading.Lock()
        self._hook: Any = None
        self._sessions: dict[str, Any] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    @classmethod
    def for_settings(cls, settings: EcsExecutorSettings) -> AwsClients:
        return cls(settings.conn_id, settings.region_name)

    def _get_hook(self) -> Any:
        if self._hook is None:
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

            self._hook = AwsBaseHook(
                aws_conn_id=self.conn_id, client_type="ecs", region_name=self.region_name
            )
        return self._hook

    def client(self, service: str, region_name: str | None = None) -> Any:
        region = region_name or self.region_name
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                hook = self._get_hook()
                session = self._sessions.get(region)
                if session is None:
                    session = self._sessions[region] = hook.get_session(region_name=region)
                # Options the user set in the connection's botocore_kwargs win over our defaults.
                config = self._config.merge(hook.config)
                self._clients[key] = session.client(
                    service,
                    region_name=region,
                    endpoint_url=hook.conn_config.get_service_endpoint_url(service_name=service),
                    config=config,
                    verify=hook.verify,
                )
            return self._clients[key]

    def describe_connection(self) -> str:
        """Which connection (or the default chain) and endpoint are used: never credentials."""
        try:
            conn_config = self._get_hook().conn_config
        except Exception as exc:
            return f"connection {self.conn_id!r} could not be loaded ({describe_error(exc)})"
        if not isinstance(conn_config.conn_id, str):
            where = (
                f"connection {self.conn_id!r} not found, using the default AWS credential chain"
                if self.conn_id
                else "default AWS credential chain"
            )
        else:
            where = f"connection {self.conn_id!r}"
            if conn_config.role_arn:
                where += f" assuming {conn_config.role_arn}"
        if conn_config.endpoint_url:
            where += f", endpoint {conn_config.endpoint_url}"
        return where


# ---- reading ---------------------------------------------------------------------------------------


class _Unavailable(Exception):
    """Carries the one line shown instead of log lines."""


class TaskLogReader:
    """Reads the latest CloudWatch lines of an executor-launched ECS task; never raises.

    ``__init__`` does no I/O (Airflow builds executors in the API server just to read logs). Task
    definition revisions are immutable, so each one is described once and kept in a small LRU.
    """

    def __init__(
        self,
        settings: EcsExecutorSettings,
        *,
        clients: ClientSource | None = None,
        cache_size: int = TASK_DEFINITION_CACHE_SIZE,
    ):
        self.settings = settings
        self.clients: ClientSource = clients or AwsClients.for_settings(settings)
        self._cache_size = max(1, cache_size)
        self._task_definitions: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- public ------------------------------------------------------------------------------------

    def read(self, task_arn: str | None, limit: int = DEFAULT_LIMIT) -> tuple[list[str], list[str]]:
        """``(sources, lines)`` for Airflow's ``get_task_log``: the last ``limit`` lines, oldest first.

        On any failure: ``([], [one explanatory line])``.
        """
        try:
            location = self.locate(task_arn)
            lines = self._get_events(location, limit)
        except _Unavailable as exc:
            return [], [f"{PREFIX} {exc}"]
        except Exception as exc:  # never break the log view
            return [], [f"{PREFIX} could not read live logs of {task_arn}: {describe_error(exc)}"]
        return [location.source], lines

    def read_for_ti(
        self, ti: Any, try_number: int, limit: int = DEFAULT_LIMIT
    ) -> tuple[list[str], list[str]]:
        """``get_task_log`` body: the task instance's ECS task is its ``external_executor_id``.

        Only the current try has a live ECS task; older tries return ``([], [])`` so Airflow shows the
        other log sources unchanged.
        """
        current = getattr(ti, "try_number", None)
        if current is not None and try_number != current:
            return [], []
        return self.read(getattr(ti, "external_executor_id", None), limit)

    def last_lines(
        self, task_arn: str, limit: int = 20, *, task_definition_arn: str | None = None
    ) -> list[str]:
        """The last ``limit`` CloudWatch lines of a (possibly stopped) task; ``[]`` when unavailable.

        For failure messages of crashed tasks: pass ``task_definition_arn`` (from the DescribeTasks
        answer already in hand) to skip a DescribeTasks call.
        """
        try:
            location = self.locate(task_arn, task_definition_arn=task_definition_arn)
            return self._get_events(location, limit)
        except Exception:
            return []

    def locate(self, task_arn: str | None, *, task_definition_arn: str | None = None) -> LogLocation:
        """The task's log location; raises _Unavailable with the reason (and boto errors)."""
        if not is_task_arn(task_arn):
            raise _Unavailable(
                "no ECS task is recorded for this task instance yet; live logs appear once its ECS task "
                "has been launched"
            )
        assert task_arn is not None
        if task_definition_arn is None:
            task_definition_arn = self._task_definition_arn(task_arn)
        task_definition = self._task_definition(task_definition_arn)
        container = self.settings.container_name
        location = awslogs_location(task_definition, container, task_arn)
        if location is None:
            reason = awslogs_problem(task_definition, container) or "the log location is unknown"
            raise _Unavailable(f"no live logs for {task_definition_arn}: {reason}")
        return location

    # -- AWS calls ---------------------------------------------------------------------------------

    def _task_definition_arn(self, task_arn: str) -> str:
        cluster = cluster_from_task_arn(task_arn) or self.settings.cluster
        try:
            answer = self.clients.client("ecs").describe_tasks(cluster=cluster, tasks=[task_arn])
        except Exception as exc:
            raise _Unavailable(f"could not describe ECS task {task_arn}: {describe_error(exc)}") from None
        tasks = answer.get("tasks") or []
        if not tasks or not tasks[0].get("taskDefinitionArn"):
            raise _Unavailable(
                f"ECS task {task_arn} is unknown to cluster {cluster!r} (ECS forgets stopped tasks after "
                "about an hour)"
            )
        return str(tasks[0]["taskDefinitionArn"])

    def _task_definition(self, arn: str) -> dict[str, Any]:
        with self._cache_lock:
            cached = self._task_definitions.get(arn)
            if cached is not None:
                self._task_definitions.move_to_end(arn)
                return cached
        try:
            answer = self.clients.client("ecs").describe_task_definition(taskDefinition=arn)
        except Exception as exc:
            raise _Unavailable(f"could not describe task definition {arn}: {describe_error(exc)}") from None
        task_definition = dict(answer.get("taskDefinition") or {})
        with self._cache_lock:
            self._task_definitions[arn] = task_definition
            self._task_definitions.move_to_end(arn)
            while len(self._task_definitions) > self._cache_size:
                self._task_definitions.popitem(last=False)
        return task_definition

    def _get_events(self, location: LogLocation, limit: int) -> list[str]:
        limit = min(max(1, int(limit)), MAX_LIMIT)
        logs = self.clients.client("logs", location.region)
        try:
            answer = logs.get_log_events(
                logGroupName=location.group,
                logStreamName=location.stream,
                startFromHead=False,
                limit=limit,
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise _Unavailable(
                    f"{location.source} does not exist yet; it is created when the container starts "
                    "writing output"
                ) from None
            hint = ""
            if error_code(exc) in ("AccessDeniedException", "AccessDenied"):
                hint = " (the API server's AWS identity needs logs:GetLogEvents)"
            raise _Unavailable(f"could not read {location.source}: {describe_error(exc)}{hint}") from None
        return [str(event.get("message", "")).rstrip("\n") for event in answer.get("events") or []]


def last_lines(
    settings: EcsExecutorSettings,
    task_arn: str,
    limit: int = 20,
    *,
    task_definition_arn: str | None = None,
    reader: TaskLogReader | None = None,
) -> list[str]:
    """Last CloudWatch lines of a task (e.g. a crashed one) for a failure message; ``[]`` if unavailable.

    Blocking: from async code call it through ``asyncio.to_thread``. Pass a long-lived ``reader`` to
    reuse its clients and task-definition cache.
    """
    reader = reader or TaskLogReader(settings)
    return reader.last_lines(task_arn, limit, task_definition_arn=task_definition_arn)
