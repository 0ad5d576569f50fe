"""Shared fixtures: a real moto server (aiobotocore is not intercepted by in-process mock_aws), an Airflow
home, workloads built without a database, and a scheduler-like heartbeat driver."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ecs_executor.config.settings import EcsExecutorSettings

# Airflow reads its home and config at import time: set them before anything imports airflow.
_HOME = tempfile.mkdtemp(prefix="ecs-executor-tests-")
os.environ.update(
    AIRFLOW_HOME=_HOME,
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__API_AUTH__JWT_SECRET="test-jwt-secret-0123456789abcdef0123456789",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="test-secret-key-DO-NOT-LOG",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)

from tests.support.sqs_server import sqs_queue, sqs_server  # noqa: E402, F401 - fixtures for every test

REGION = "us-east-1"
ACCOUNT = "123456789012"


TIERS = ("unit", "integration", "e2e", "repo")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's tier is its folder: ``-m unit`` (pure, fast), ``integration`` (moto server, the local
    ECS endpoint, real bash), ``e2e`` (a real Airflow), ``repo`` (the repository's own checks)."""
    for item in items:
        tier = item.path.relative_to(Path(__file__).parent).parts[0]
        if tier in TIERS:
            item.add_marker(tier)


def pytest_report_header() -> str:
    """Which timing the local deployments' ECS endpoint runs under (``ecs_executor.demo.deployment``)."""
    timing = os.environ.get("ECS_EXECUTOR_TEST_TIMING") or "instant (the endpoint's default)"
    return f"local ECS endpoint timing in local deployments: {timing} (ECS_EXECUTOR_TEST_TIMING)"


CONTAINER = "airflow-worker"
SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.SECRET-WORKLOAD-TOKEN.sig"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    yield url
    server.stop()


@pytest.fixture
def boto_ecs(moto_url: str) -> Any:
    import boto3

    return boto3.client("ecs", endpoint_url=moto_url, region_name=REGION)


def moto_tasks(cluster: str) -> dict[str, Any]:
    """moto's task objects for a cluster (same process: ThreadedMotoServer)."""
    from moto.ecs.models import ecs_backends

    return ecs_backends[ACCOUNT][REGION].tasks.get(cluster, {})


def finish_moto_task(cluster: str, arn: str, exit_code: int | None, reason: str = "") -> None:
    """Make a task STOPPED with an exit code, as the ECS agent would report it."""
    task = moto_tasks(cluster)[arn]
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = reason or "Essential container in task exited"
    for container in task.containers:
        container.exitCode = exit_code
        container.last_status = "STOPPED"


@pytest.fixture
def moto_manual_lifecycle() -> Iterator[None]:
    """Keep moto tasks RUNNING until a test stops them (moto advances one step per describe otherwise)."""
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1_000_000})
    yield
    state_manager.unset_transition("ecs::task")


@pytest.fixture
def ecs_cluster(boto_ecs: Any) -> str:
    """A fresh cluster and a bridge-mode task definition with memory set (moto crashes otherwise)."""
    name = f"c-{uuid.uuid4().hex[:8]}"
    boto_ecs.create_cluster(clusterName=name)
    boto_ecs.register_task_definition(
        family=name,
        containerDefinitions=[{"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512}],
    )
    return name


def executor_options(cluster: str, **options: Any) -> dict[str, Any]:
    """Options for a cluster whose task definition bears its name, reached via the ``aws_test`` connection."""
    return {
        "cluster": cluster,
        "container_name": CONTAINER,
        "region_name": REGION,
        "task_definition": cluster,
        "conn_id": "aws_test",
        **options,
    }


def executor_settings(cluster: str, **options: Any) -> EcsExecutorSettings:
    """``executor_options`` parsed as the executor would, without going through Airflow's config."""
    from ecs_executor.config.settings import settings_from_mapping

    return settings_from_mapping(executor_options(cluster, **options))


def executor_env(cluster: str, team: str | None = None, **options: str) -> dict[str, str]:
    base = executor_options(cluster, **{"poll_interval": "0.2", "shutdown_timeout": "5", **options})
    prefix = f"AIRFLOW__{team.upper()}___AWS_ECS_EXECUTOR__" if team else "AIRFLOW__AWS_ECS_EXECUTOR__"
    return {prefix + k.upper(): v for k, v in base.items()}


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> Callable[..., None]:
    """Point the executor at moto through an Airflow connection (endpoint_url extra) and set options."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_TEST",
        json.dumps({"conn_type": "aws", "extra": {"endpoint_url": moto_url, "region_name": REGION}}),
    )
    for key in [k for k in os.environ if "_AWS_ECS_EXECUTOR__" in k]:
        monkeypatch.delenv(key)

    def apply(cluster: str, team: str | None = None, **options: str) -> None:
        for key, value in executor_env(cluster, team, **options).items():
            monkeypatch.setenv(key, value)

    return apply


def make_workload(
    task_id: str = "t",
    *,
    dag_id: str = "dag",
    run_id: str = "run",
    try_number: int = 1,
    map_index: int = -1,
    executor_config: dict[str, Any] | None = None,
    queue: str | None = None,
) -> Any:
    """A workload carrying SECRET_TOKEN, so tests can assert it never leaks into logs or events."""
    from benchmarks.workloads import build_workload

    return build_workload(
        task_id,
        dag_id=dag_id,
        run_id=run_id,
        token=SECRET_TOKEN,
        dag_rel_path="dag.py",
        log_path=None,
        try_number=try_number,
        map_index=map_index,
        executor_config=executor_config,
        queue=queue,
    )


class Driver:
    """Drives an executor exactly as the scheduler loop does and records what it reports."""

    def __init__(self, executor: Any):
        self.executor = executor
        self.events: dict[Any, list[tuple[Any, Any]]] = {}
        self.heartbeat_seconds: list[float] = []

    def beat(self) -> None:
        started = time.perf_counter()
        self.executor.heartbeat()
        self.heartbeat_seconds.append(time.perf_counter() - started)
        for key, (state, info) in self.executor.get_event_buffer().items():
            self.events.setdefault(key, []).append((state, info))

    def until(self, predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.beat()
            if predicate():
                return
            time.sleep(interval)
        raise AssertionError(f"condition not met within {timeout}s; events: {self.summary()}")

    def final_states(self) -> dict[Any, Any]:
        from airflow.utils.state import TaskInstanceState

        out = {}
        for key, evs in self.events.items():
            terminal = [s for s, _ in evs if s in (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)]
            if terminal:
                out[key] = terminal[-1]
        return out

    def summary(self) -> dict[str, list[str]]:
        return {getattr(k, "task_id", str(k)): [str(s) for s, _ in v] for k, v in self.events.items()}


@pytest.fixture
def new_executor() -> Iterator[Callable[..., Any]]:
    """Build (and always end) executors; started unless start=False."""
    made: list[Any] = []

    def build(parallelism: int = 64, team_name: str | None = None, start: bool = True) -> Any:
        from ecs_executor import EcsExecutor

        executor = EcsExecutor(parallelism=parallelism, team_name=team_name)
        made.append(executor)
        if start:
            executor.start()
        return executor

    yield build
    for executor in made:
        with contextlib.suppress(Exception):
            executor.end()


# ---- a LocalEcs endpoint (pretend mode) and executors pointed at it --------------------------------


@pytest.fixture
def local_ecs() -> Iterator[Any]:
    from tests.support.fault_helpers import start_local_ecs

    ecs = start_local_ecs()
    yield ecs
    ecs.stop()


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point executors built from now on at ``url`` (a LocalEcs or a proxy) with these options."""
    from tests.support.fault_helpers import CLUSTER, CONN_ENV, FAMILY, connection_json

    for key in [k for k in os.environ if "_AWS_ECS_EXECUTOR__" in k]:
        monkeypatch.delenv(key)

    def apply(url: str, cluster: str = CLUSTER, **options: str) -> None:
        monkeypatch.setenv(CONN_ENV, connection_json(url))
        options = {"task_definition": FAMILY, "launch_type": "EC2", **options}
        for key, value in executor_env(cluster, **options).items():
            monkeypatch.setenv(key, value)

    return apply


@pytest.fixture
def executors(local_ecs: Any, new_executor: Callable[..., Any]) -> Callable[..., Any]:
    """new_executor, torn down before the LocalEcs endpoint it talks to."""
    return new_executor
