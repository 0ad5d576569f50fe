"""ExecuteCallback workloads run in ECS like tasks; metrics reach a real StatsD socket."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from tests.conftest import CONTAINER, SECRET_TOKEN, Driver, make_workload, moto_tasks

pytestmark = pytest.mark.usefixtures("moto_url")


def make_callback(dag_id: str = "dag", run_id: str = "run") -> object:
    from airflow.executors.workloads import BundleInfo, CallbackFetchMethod, ExecuteCallback
    from airflow.executors.workloads.callback import CallbackDTO

    callback_id = str(uuid.uuid4())
    return ExecuteCallback(
        callback=CallbackDTO(
            id=callback_id, fetch_method=CallbackFetchMethod.IMPORT_PATH, data={"path": "alerts.notify_team"}
        ),
        token=SECRET_TOKEN,
        dag_rel_path="dag.py",
        bundle_info=BundleInfo(name="dags-folder"),
        log_path=f"executor_callbacks/{dag_id}/{run_id}/{callback_id}",
    )


def test_callbacks_run_as_ecs_tasks(configure, ecs_cluster, new_executor):
    from airflow.utils.state import CallbackState

    configure(ecs_cluster)
    executor = new_executor()
    assert executor.supports_callbacks
    driver = Driver(executor)
    callback = make_callback()
    executor.queue_workload(callback, session=None)
    assert callback.key in executor.queued_callbacks
    driver.until(lambda: any(s == CallbackState.SUCCESS for s, _ in driver.events.get(callback.key, [])))
    assert not executor.queued_callbacks and callback.key not in executor.running
    (task,) = moto_tasks(ecs_cluster).values()
    override = next(o for o in task.overrides["containerOverrides"] if o["name"] == CONTAINER)
    payload = json.loads(override["command"][-1])
    assert payload["type"] == "ExecuteCallback" and payload["callback"]["id"] == callback.callback.id
    tags = {t["key"]: t["value"] for t in task.tags}
    assert tags["airflow:dag_id"] == "dag" and tags["airflow:task_id"] == "callback:notify_team"


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(sock.getsockname()[1]))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    received: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                received.extend(sock.recv(65535).decode().splitlines())
            except TimeoutError:
                return received

    yield drain
    sock.close()
    from airflow.observability.stats import Stats

    monkeypatch.undo()
    from airflow.observability.metrics import stats_utils

    Stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)


def test_metrics_are_emitted(configure, ecs_cluster, new_executor, statsd):
    configure(ecs_cluster)
    executor = new_executor()
    driver = Driver(executor)
    ok, bad = make_workload("ok"), make_workload("bad", executor_config={"count": 2})
    for w in (ok, bad):
        executor.queue_workload(w, session=None)
    driver.until(lambda: len(driver.final_states()) == 2)
    driver.beat()
    names = {line.split(":")[0] for line in statsd()}
    for metric in (
        "airflow.ecs_executor.launches",
        "airflow.ecs_executor.launch_failures.invalid_config",
        "airflow.ecs_executor.launch_latency.accepted",
        "airflow.ecs_executor.launch_latency.running",
        "airflow.ecs_executor.pending",
        "airflow.ecs_executor.running",
        "airflow.ecs_executor.run_task_calls",
        "airflow.ecs_executor.describe_calls",
        "airflow.ecs_executor.describe_cycle",
        "airflow.ecs_executor.run_task_rate",
    ):
        assert metric in names, sorted(n for n in names if "ecs_executor" in n)
