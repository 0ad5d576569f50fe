"""Container logs from CloudWatch Logs: live in the Airflow UI, and the last lines of crashed tasks.

Airflow's API server calls ``executor.get_task_log(ti, try_number)`` for running task instances; the
ECS task's ARN is the task instance's ``external_executor_id``. The engine adds a crashed task's last
lines to its failure reason. Both read through ONE process-wide reader (``shared_reader``), and every
GetLogEvents request of the process passes ONE limiter (``GET_LOG_EVENTS_PACER``) sized to CloudWatch
Logs' GetLogEvents quota, which is per account and Region and shared with everything else reading logs.

The container's output is only reachable through the ``awslogs`` log driver, whose stream name is
predicted from the task definition (request/log_location.py).

Calls are synchronous boto3 (run by the API server, or by a worker thread of the engine) with short
timeouts. A caller never waits long for the limiter: past its wait budget it gets a "skipped: rate
limit" line instead (``READ_MAX_WAIT`` for the UI, ``LAST_LINES_MAX_WAIT`` for crash reasons). Nothing
here raises to the caller: every failure becomes one explanatory line.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ecs_executor.aws.clients import AwsClients, describe_error, error_code, is_throttle
from ecs_executor.core.pacing import TokenBucket
from ecs_executor.request.arns import cluster_from_task_arn, is_task_arn
from ecs_executor.request.log_location import LogLocation, awslogs_location, awslogs_problem

if TYPE_CHECKING:
    from ecs_executor.config.settings import EcsExecutorSettings

DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000  # CloudWatch Logs GetLogEvents maximum
CACHE_SIZE = 128
PREFIX = "ECS executor:"

# GetLogEvents: 10 requests per second per account per Region, changed only in special circumstances
# (CloudWatch Logs user guide, "CloudWatch Logs quotas"). The bucket holds one second's worth, so even a
# burst stays within the quota; other readers of the account (consoles, Airflow's CloudWatch remote
# logging) share it, and a throttled answer empties the bucket.
GET_LOG_EVENTS_RATE = 10.0
GET_LOG_EVENTS_BURST = 10
# How long a caller may wait for its turn. The UI can afford a short pause; crash reasons are a bonus
# fetched by an engine worker thread, which must not sit in a queue.
READ_MAX_WAIT = 2.0
LAST_LINES_MAX_WAIT = 1.0


class ClientSource(Protocol):
    """What readers and checks need: a boto3 client per service (tests pass fakes)."""

    def client(self, service: str, region_name: str | None = None) -> Any: ...


def log_events_pacer(
    rate: float = GET_LOG_EVENTS_RATE,
    burst: int = GET_LOG_EVENTS_BURST,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> TokenBucket:
    """A bucket for threads that read CloudWatch Logs: a fixed quota (a throttle empties the bucket but
    never lowers the rate), booked under a lock."""
    return TokenBucket(rate, burst, clock, min_rate=rate, guard=threading.Lock())


# One per process: the quota is per account and Region, whoever in this process reads.
GET_LOG_EVENTS_PACER = log_events_pacer()


class _Unavailable(Exception):
    """Carries the one line shown instead of log lines."""


class _LRU:
    """A small thread-safe LRU for immutable answers (task definitions, a task's definition ARN)."""

    def __init__(self, size: int):
        self._size = max(1, size)
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class TaskLogReader:
    """Reads the latest CloudWatch lines of an executor-launched ECS task; never raises; thread-safe.

    ``__init__`` does no I/O (Airflow builds executors in the API server just to read logs). Task
    definition revisions are immutable, and so is the revision a task runs: both are described once and
    kept in small LRUs, which also spares the ECS read budget the engine's DescribeTasks sweeps use.
    """

    def __init__(
        self,
        settings: EcsExecutorSettings,
        *,
        clients: ClientSource | None = None,
        cache_size: int = CACHE_SIZE,
        pacer: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.clients: ClientSource = clients or AwsClients.for_settings(settings)
        self.pacer = pacer or GET_LOG_EVENTS_PACER
        self._sleep = sleep
        self._task_definitions = _LRU(cache_size)
        self._definition_of_task = _LRU(cache_size)

    # -- public ------------------------------------------------------------------------------------

    def read(self, task_arn: str | None, limit: int = DEFAULT_LIMIT) -> tuple[list[str], list[str]]:
        """``(sources, lines)`` for Airflow's ``get_task_log``: the last ``limit`` lines, oldest first.

        On any failure: ``([], [one explanatory line])``.
        """
        try:
            location = self.locate(task_arn)
            lines = self._get_events(location, limit, READ_MAX_WAIT)
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
        answer already in hand) to skip a DescribeTasks call. Waits at most ``LAST_LINES_MAX_WAIT`` for
        the limiter; ``[]`` when its turn is further away.
        """
        try:
            location = self.locate(task_arn, task_definition_arn=task_definition_arn)
            return self._get_events(location, limit, LAST_LINES_MAX_WAIT)
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
        cached = self._definition_of_task.get(task_arn)
        if cached is not None:
            return str(cached)
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
        arn = str(tasks[0]["taskDefinitionArn"])
        self._definition_of_task.put(task_arn, arn)
        return arn

    def _task_definition(self, arn: str) -> dict[str, Any]:
        cached = self._task_definitions.get(arn)
        if cached is not None:
            return dict(cached)
        try:
            answer = self.clients.client("ecs").describe_task_definition(taskDefinition=arn)
        except Exception as exc:
            raise _Unavailable(f"could not describe task definition {arn}: {describe_error(exc)}") from None
        task_definition = dict(answer.get("taskDefinition") or {})
        self._task_definitions.put(arn, task_definition)
        return task_definition

    def _get_events(self, location: LogLocation, limit: int, max_wait: float) -> list[str]:
        limit = min(max(1, int(limit)), MAX_LIMIT)
        logs = self.clients.client("logs", location.region)
        wait = self.pacer.book(max_wait)
        if wait is None:
            raise _Unavailable(
                f"skipped: rate limit (this process reads CloudWatch Logs at most {self.pacer.rate:g} "
                "times a second, GetLogEvents' quota per account and Region); reload to try again"
            )
        if wait > 0:
            self._sleep(wait)
        try:
            answer = logs.get_log_events(
                logGroupName=location.group,
                logStreamName=location.stream,
                startFromHead=False,
                limit=limit,
            )
        except Exception as exc:
            code = error_code(exc)[0]
            if code == "ResourceNotFoundException":
                raise _Unavailable(
                    f"{location.source} does not exist yet; it is created when the container starts "
                    "writing output"
                ) from None
            hint = ""
            if is_throttle(exc):
                self.pacer.throttled()
                hint = " (others in this AWS account are reading CloudWatch Logs too; reload to try again)"
            elif code in ("AccessDeniedException", "AccessDenied"):
                hint = " (the API server's AWS identity needs logs:GetLogEvents)"
            raise _Unavailable(f"could not read {location.source}: {describe_error(exc)}{hint}") from None
        return [str(event.get("message", "")).rstrip("\n") for event in answer.get("events") or []]


_SHARED: dict[tuple[Any, ...], TaskLogReader] = {}
_SHARED_LOCK = threading.Lock()


def shared_reader(settings: EcsExecutorSettings) -> TaskLogReader:
    """The process's one reader for these settings: its clients and caches serve the UI and crash reasons.

    Keyed by what the reader depends on, so two executors of one team share it and teams stay apart.
    """
    key = (settings.conn_id, settings.region_name, settings.cluster, settings.container_name)
    with _SHARED_LOCK:
        reader = _SHARED.get(key)
        if reader is None:
            reader = _SHARED[key] = TaskLogReader(settings)
        return reader
