"""Live CloudWatch logs for the UI: TaskLogReader on fakes, then against moto (server mode)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ecs_executor.aws.clients import AwsClients
from ecs_executor.aws.container_logs import (
    GET_LOG_EVENTS_PACER,
    TaskLogReader,
    log_events_pacer,
    shared_reader,
)
from ecs_executor.request.arns import task_id_from_arn
from tests.conftest import CONTAINER, REGION, executor_settings

ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"


def _awslogs(**options: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": options}


def test_module_does_not_import_airflow_at_top_level():
    import ast
    from pathlib import Path

    import ecs_executor.aws.container_logs as module

    tree = ast.parse(Path(str(module.__file__)).read_text())
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    assert not any(name.startswith("airflow") for name in names)


# ---- fakes (no AWS) --------------------------------------------------------------------------------


class _FakeClients:
    """Stands in for AwsClients: one object per service."""

    def __init__(self, **by_service: Any):
        self.by_service = by_service
        self.calls: list[str] = []

    def client(self, service: str, region_name: str | None = None) -> Any:
        return self.by_service[service]


class _FakeEcs:
    def __init__(self, task_definition: dict[str, Any]):
        self.task_definition = task_definition
        self.describe_task_definition_calls = 0

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        return {"tasks": [{"taskArn": tasks[0], "taskDefinitionArn": f"td-for-{tasks[0][-4:]}"}]}

    def describe_task_definition(self, taskDefinition: str) -> dict[str, Any]:
        self.describe_task_definition_calls += 1
        return {"taskDefinition": self.task_definition}


class _DeniedLogs:
    def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform"}},
            "GetLogEvents",
        )


class _EchoLogs:
    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []

    def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.kwargs.append(kwargs)
        return {"events": [{"message": "one\n"}, {"message": "two"}]}


AWSLOGS_TD = {
    "containerDefinitions": [
        {"name": "sidecar", "image": "x"},
        {
            "name": CONTAINER,
            "image": "img",
            "memory": 512,
            "logConfiguration": _awslogs(**{"awslogs-group": "g", "awslogs-stream-prefix": "p"}),
        },
    ]
}


def test_init_does_no_io():
    class Exploding:
        def client(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no client may be built in __init__")

    TaskLogReader(executor_settings("prod"), clients=Exploding())
    TaskLogReader(executor_settings("prod"))  # the real factory builds nothing until read()


def test_access_denied_is_one_line_naming_the_permission():
    reader = TaskLogReader(
        executor_settings("prod"), clients=_FakeClients(ecs=_FakeEcs(AWSLOGS_TD), logs=_DeniedLogs())
    )
    sources, lines = reader.read(ARN)
    assert sources == []
    assert len(lines) == 1
    assert "AccessDeniedException" in lines[0] and "logs:GetLogEvents" in lines[0]


def test_limit_is_clamped_and_newlines_stripped():
    logs = _EchoLogs()
    reader = TaskLogReader(
        executor_settings("prod"), clients=_FakeClients(ecs=_FakeEcs(AWSLOGS_TD), logs=logs)
    )
    assert reader.read(ARN, limit=50_000)[1] == ["one", "two"]
    reader.read(ARN, limit=0)
    assert [k["limit"] for k in logs.kwargs] == [10_000, 1]
    assert all(k["startFromHead"] is False for k in logs.kwargs)


def test_task_definitions_are_cached_in_a_bounded_lru():
    ecs = _FakeEcs(AWSLOGS_TD)
    reader = TaskLogReader(
        executor_settings("prod"),
        clients=_FakeClients(ecs=ecs, logs=_EchoLogs()),
        cache_size=2,
    )
    for _ in range(3):
        reader.read(ARN[:-4] + "aaaa")
    assert ecs.describe_task_definition_calls == 1
    for suffix in ("bbbb", "cccc", "dddd"):
        reader.read(ARN[:-4] + suffix)
    assert ecs.describe_task_definition_calls == 4
    assert len(reader._task_definitions) == 2


def test_unexpected_exceptions_never_escape():
    class Broken:
        def client(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    reader = TaskLogReader(executor_settings("prod"), clients=Broken())
    sources, lines = reader.read(ARN)
    assert sources == [] and len(lines) == 1 and "boom" in lines[0]
    assert reader.last_lines(ARN) == []


@pytest.mark.parametrize("arn", [None, "", "not-an-arn", "arn:aws:ecs:us-east-1:1:cluster/x"])
def test_no_arn_explains(arn: str | None):
    reader = TaskLogReader(executor_settings("prod"))
    sources, lines = reader.read(arn)
    assert sources == [] and len(lines) == 1
    assert "no ECS task is recorded" in lines[0]


def test_read_for_ti_only_reads_the_current_try():
    logs = _EchoLogs()
    reader = TaskLogReader(
        executor_settings("prod"), clients=_FakeClients(ecs=_FakeEcs(AWSLOGS_TD), logs=logs)
    )

    class Ti:
        try_number = 2
        external_executor_id = ARN

    assert reader.read_for_ti(Ti(), 1) == ([], [])
    sources, lines = reader.read_for_ti(Ti(), 2)
    assert sources == [f"CloudWatch Logs g/p/{CONTAINER}/{task_id_from_arn(ARN)}"]
    assert lines == ["one", "two"]


# ---- against moto (server mode) --------------------------------------------------------------------


@pytest.fixture
def aws(moto_url: str) -> dict[str, Any]:
    kwargs = {"endpoint_url": moto_url, "region_name": REGION}
    return {name: boto3.client(name, **kwargs) for name in ("ecs", "logs")}  # type: ignore[call-overload]


@pytest.fixture
def deployment(aws: dict[str, Any], configure: Callable[..., None]) -> Callable[..., tuple[str, str, str]]:
    """Cluster + bridge-mode task definition (memory set) + one launched task: (cluster, arn, group)."""

    def make(log_configuration: dict[str, Any] | str | None = "awslogs") -> tuple[str, str, str]:
        cluster = f"logs-{uuid.uuid4().hex[:8]}"
        group = f"/ecs/{cluster}"
        if log_configuration == "awslogs":
            log_configuration = _awslogs(
                **{"awslogs-group": group, "awslogs-stream-prefix": "airflow", "awslogs-region": REGION}
            )
        container: dict[str, Any] = {"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512}
        if log_configuration:
            container["logConfiguration"] = log_configuration
        aws["ecs"].create_cluster(clusterName=cluster)
        aws["ecs"].register_task_definition(family=cluster, containerDefinitions=[container])
        # launchType FARGATE on a bridge task definition runs in moto (EC2 needs container instances).
        task = aws["ecs"].run_task(cluster=cluster, taskDefinition=cluster, launchType="FARGATE")
        configure(cluster)
        return cluster, task["tasks"][0]["taskArn"], group

    return make


def _put_lines(logs: Any, group: str, stream: str, messages: list[str]) -> None:
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def test_reads_the_latest_lines_of_a_running_task(aws, deployment):
    cluster, arn, group = deployment()
    stream = f"airflow/{CONTAINER}/{task_id_from_arn(arn)}"
    _put_lines(aws["logs"], group, stream, [f"line {i}" for i in range(250)])

    reader = TaskLogReader(executor_settings(cluster))
    sources, lines = reader.read(arn)
    assert sources == [f"CloudWatch Logs {group}/{stream}"]
    assert lines == [f"line {i}" for i in range(50, 250)]  # the last 200, oldest first
    assert reader.read(arn, limit=3) == (sources, ["line 247", "line 248", "line 249"])
    assert reader.last_lines(arn, 2) == ["line 248", "line 249"]
    assert shared_reader(executor_settings(cluster)).last_lines(arn, 1) == ["line 249"]


def test_last_lines_can_skip_describe_tasks(aws, deployment):
    cluster, arn, group = deployment()
    _put_lines(aws["logs"], group, f"airflow/{CONTAINER}/{task_id_from_arn(arn)}", ["Killed"])
    td_arn = aws["ecs"].describe_task_definition(taskDefinition=cluster)["taskDefinition"][
        "taskDefinitionArn"
    ]
    reader = TaskLogReader(executor_settings("some-other-cluster"))  # DescribeTasks would not find it there
    assert reader.last_lines(arn, 5, task_definition_arn=td_arn) == ["Killed"]


def test_task_definition_without_awslogs(deployment):
    cluster, arn, _ = deployment({"logDriver": "json-file", "options": {}})
    sources, lines = TaskLogReader(executor_settings(cluster)).read(arn)
    assert sources == []
    assert len(lines) == 1 and "not awslogs" in lines[0] and "json-file" in lines[0]


def test_awslogs_without_prefix(deployment):
    cluster, arn, _ = deployment(_awslogs(**{"awslogs-group": "/ecs/x"}))
    sources, lines = TaskLogReader(executor_settings(cluster)).read(arn)
    assert sources == [] and "awslogs-stream-prefix" in lines[0]


def test_stream_not_created_yet(aws, deployment):
    cluster, arn, group = deployment()
    aws["logs"].create_log_group(logGroupName=group)
    sources, lines = TaskLogReader(executor_settings(cluster)).read(arn)
    assert sources == []
    assert len(lines) == 1 and "does not exist yet" in lines[0]
    assert f"{group}/airflow/{CONTAINER}/{task_id_from_arn(arn)}" in lines[0]


def test_unknown_task_arn(deployment):
    cluster, _, _ = deployment()
    unknown = f"arn:aws:ecs:{REGION}:123456789012:task/{cluster}/{uuid.uuid4().hex}"
    sources, lines = TaskLogReader(executor_settings(cluster)).read(unknown)
    assert sources == [] and len(lines) == 1 and "unknown to cluster" in lines[0]


def test_empty_stream_has_a_source_and_no_lines(aws, deployment):
    cluster, arn, group = deployment()
    stream = f"airflow/{CONTAINER}/{task_id_from_arn(arn)}"
    aws["logs"].create_log_group(logGroupName=group)
    aws["logs"].create_log_stream(logGroupName=group, logStreamName=stream)
    assert TaskLogReader(executor_settings(cluster)).read(arn) == ([f"CloudWatch Logs {group}/{stream}"], [])


def test_endpoint_from_aws_endpoint_url_env(aws, deployment, monkeypatch, moto_url):
    """No connection at all: botocore's AWS_ENDPOINT_URL_<SERVICE> variables are honoured."""
    cluster, arn, group = deployment()
    _put_lines(aws["logs"], group, f"airflow/{CONTAINER}/{task_id_from_arn(arn)}", ["hello"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", moto_url)
    reader = TaskLogReader(executor_settings(cluster, conn_id="no_such_connection"))
    assert reader.read(arn)[1] == ["hello"]


def test_unreachable_endpoint_is_one_line(monkeypatch):
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEAD",
        json.dumps({"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9"}}),
    )
    reader = TaskLogReader(
        executor_settings("prod", conn_id="aws_dead"), clients=AwsClients("aws_dead", REGION)
    )
    started = time.monotonic()
    sources, lines = reader.read(ARN)
    assert sources == [] and len(lines) == 1 and "could not describe ECS task" in lines[0]
    assert time.monotonic() - started < 20


def test_executor_get_task_log_in_the_api_server(aws, deployment, new_executor, monkeypatch):
    """The API server builds the executor without start(); get_task_log must still work, lazily."""
    from ecs_executor import EcsExecutor

    _cluster, arn, group = deployment()
    stream = f"airflow/{CONTAINER}/{task_id_from_arn(arn)}"
    _put_lines(aws["logs"], group, stream, ["starting", "working hard"])
    reads: list[object] = []
    load_settings = EcsExecutor.load_settings
    monkeypatch.setattr(EcsExecutor, "load_settings", lambda self: reads.append(self) or load_settings(self))
    executor = new_executor(start=False)
    assert reads == []  # nothing read, nothing fetched in __init__

    class TI:
        external_executor_id = arn
        try_number = 1

    sources, lines = executor.get_task_log(TI(), 1)
    assert sources == [f"CloudWatch Logs {group}/{stream}"]
    assert lines == ["starting", "working hard"]
    TI.external_executor_id = None
    assert executor.get_task_log(TI(), 1)[0] == []
    assert reads == [executor]  # read once, on first use


# ---- pacing: one GetLogEvents limiter per process ------------------------------------------------------


class FrozenClock:
    """Time stands still; ``sleep`` only records how long each caller was told to wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)


def _in_threads(count: int, work: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: work(), range(count)))


def test_readers_share_the_process_pacer_and_one_reader_per_settings():
    settings = executor_settings("prod")
    assert TaskLogReader(settings).pacer is GET_LOG_EVENTS_PACER
    assert shared_reader(settings) is shared_reader(executor_settings("prod"))
    assert shared_reader(settings) is not shared_reader(executor_settings("other"))
    assert GET_LOG_EVENTS_PACER.rate == 10.0 and GET_LOG_EVENTS_PACER.burst == 10


def test_a_caller_past_its_wait_budget_is_told_it_was_skipped():
    clock = FrozenClock()
    logs = _EchoLogs()
    reader = TaskLogReader(
        executor_settings("prod"),
        clients=_FakeClients(ecs=_FakeEcs(AWSLOGS_TD), logs=logs),
        pacer=log_events_pacer(1.0, 1, clock=clock),
        sleep=clock.sleep,
    )
    # The UI waits up to READ_MAX_WAIT (2 s): turns now, at +1 s and at +2 s; +3 s is too far.
    for _ in range(3):
        assert reader.read(ARN)[1] == ["one", "two"]
    assert clock.waits == [1.0, 2.0]
    sources, lines = reader.read(ARN)
    assert sources == [] and len(lines) == 1 and "skipped: rate limit" in lines[0]
    assert reader.last_lines(ARN) == []  # crash reasons wait at most LAST_LINES_MAX_WAIT (1 s)
    assert len(logs.kwargs) == 3


def test_throttled_get_log_events_is_one_line_and_slows_the_pacer():
    class ThrottledLogs:
        def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetLogEvents"
            )

    clock = FrozenClock()
    pacer = log_events_pacer(10.0, 10, clock=clock)
    reader = TaskLogReader(
        executor_settings("prod"),
        clients=_FakeClients(ecs=_FakeEcs(AWSLOGS_TD), logs=ThrottledLogs()),
        pacer=pacer,
    )
    sources, lines = reader.read(ARN)
    assert sources == [] and "ThrottlingException" in lines[0]
    assert pacer.book(0.0) is None and pacer.rate == 10.0  # emptied, at the same fixed rate


def test_many_concurrent_readers_stay_within_the_limiter_on_moto(aws, deployment):
    """40 UI requests at once against moto: exactly the pacer's burst reaches GetLogEvents."""
    cluster, arn, group = deployment()
    _put_lines(aws["logs"], group, f"airflow/{CONTAINER}/{task_id_from_arn(arn)}", ["hello"])
    clock = FrozenClock()
    reader = TaskLogReader(
        executor_settings(cluster), pacer=log_events_pacer(1.0, 5, clock=clock), sleep=clock.sleep
    )
    sent: list[str] = []
    logs = reader.clients.client("logs", REGION)
    logs.meta.events.register("before-send.cloudwatch-logs.GetLogEvents", lambda **_: sent.append("x"))
    reader.read(arn)  # warm the task-definition caches and the clients
    results = _in_threads(40, lambda: reader.read(arn))
    read = [lines for _, lines in results if lines == ["hello"]]
    skipped = [lines for _, lines in results if "skipped: rate limit" in lines[0]]
    assert len(read) + len(skipped) == 40
    assert len(sent) == 1 + len(read)
    assert len(read) == 4 + 2  # burst 5 (one spent warming up), then turns at +1 s and +2 s
