"""The executor driven exactly like the scheduler drives it, against moto in server mode."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import pytest
from airflow.utils.state import TaskInstanceState

from ecs_executor.facade.startup import ExecutorStartupError
from ecs_executor.request.run_task import SCHEDULER_AIRFLOW_ENV, SCHEDULER_PYTHON_ENV, STARTED_BY
from tests.conftest import (
    CONTAINER,
    REGION,
    SECRET_TOKEN,
    Driver,
    finish_moto_task,
    make_workload,
    moto_tasks,
)
from tests.support.executor_view import arns, view
from tests.support.gate_proxy import GateProxy

pytestmark = pytest.mark.usefixtures("moto_url")


def _our_override(task: Any) -> dict[str, Any]:
    return next(o for o in task.overrides["containerOverrides"] if o["name"] == CONTAINER)


def test_n_tasks_launch_exactly_once_with_the_right_overrides(configure, ecs_cluster, new_executor):
    configure(ecs_cluster)
    executor = new_executor()
    driver = Driver(executor)
    workloads = [make_workload(f"t{i}") for i in range(25)]
    for w in workloads:
        executor.queue_workload(w, session=None)
    driver.until(lambda: len(driver.final_states()) == 25)

    tasks = moto_tasks(ecs_cluster)
    assert len(tasks) == 25  # exactly one ECS task per Airflow task
    assert all(s == TaskInstanceState.SUCCESS for s in driver.final_states().values())
    by_task_id = {}
    for arn, task in tasks.items():
        override = _our_override(task)
        command = override["command"]
        assert command[:4] == ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string"]
        payload = json.loads(command[4])
        by_task_id[payload["ti"]["task_id"]] = arn
        env = {e["name"]: e["value"] for e in override["environment"]}
        assert env["AIRFLOW_IS_EXECUTOR_CONTAINER"] == "true"
        assert SCHEDULER_PYTHON_ENV in env and SCHEDULER_AIRFLOW_ENV in env
        assert task.started_by == STARTED_BY
        assert {"key": "airflow:dag_id", "value": "dag"} in task.tags
    assert sorted(by_task_id) == sorted(f"t{i}" for i in range(25))
    # The scheduler stores the ARN reported with RUNNING as external_executor_id.
    for key, events in driver.events.items():
        running = [info for state, info in events if state == TaskInstanceState.RUNNING]
        assert running == [by_task_id[key.task_id]]
    assert executor.running == set()


def test_exit_codes_map_to_success_and_failure_with_reason_in_task_log(
    configure, ecs_cluster, new_executor, moto_manual_lifecycle
):
    configure(ecs_cluster)
    executor = new_executor()
    driver = Driver(executor)
    ok, crash, oom = make_workload("ok"), make_workload("crash"), make_workload("oom")
    for w in (ok, crash, oom):
        executor.queue_workload(w, session=None)
    driver.until(lambda: len(arns(executor)) == 3)
    launched = arns(executor)
    finish_moto_task(ecs_cluster, launched[ok.ti.key], 0)
    finish_moto_task(ecs_cluster, launched[crash.ti.key], 1)
    finish_moto_task(ecs_cluster, launched[oom.ti.key], 137, "OutOfMemoryError: Container killed")
    driver.until(lambda: len(driver.final_states()) == 3)
    states = driver.final_states()
    assert states[ok.ti.key] == TaskInstanceState.SUCCESS
    assert states[crash.ti.key] == TaskInstanceState.FAILED
    assert states[oom.ti.key] == TaskInstanceState.FAILED
    events = {e.task_id: e.extra for e in view(executor).task_events}
    assert "exited with code 137" in events["oom"] and "out of memory" in events["oom"]
    assert "exited with code 1" in events["crash"]
    assert "ok" not in events


def test_parallelism_is_respected(configure, ecs_cluster, new_executor, moto_manual_lifecycle):
    configure(ecs_cluster)
    executor = new_executor(parallelism=3)
    driver = Driver(executor)
    workloads = [make_workload(f"t{i}") for i in range(7)]
    for w in workloads:
        executor.queue_workload(w, session=None)
    driver.until(lambda: len(arns(executor)) == 3)
    for _ in range(5):
        driver.beat()
    assert len(moto_tasks(ecs_cluster)) == 3
    assert len(executor.queued_tasks) == 4
    done = 0
    while done < 7:
        running = arns(executor)
        for arn in running.values():
            finish_moto_task(ecs_cluster, arn, 0)
        done += len(running)
        driver.until(lambda n=done: len(driver.final_states()) == n)
        assert len(executor.running) <= 3
    assert len(moto_tasks(ecs_cluster)) == 7


def test_heartbeat_never_waits_on_the_network(configure, ecs_cluster, new_executor, moto_url):
    """With ECS answering nothing at all, heartbeat() still returns; launches land once it answers."""
    gate = GateProxy(moto_url).start()
    try:
        configure(ecs_cluster, check_health_on_startup="False")
        import os

        os.environ["AIRFLOW_CONN_AWS_TEST"] = json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": gate.url, "region_name": REGION}}
        )
        executor = new_executor()
        driver = Driver(executor)
        for i in range(50):
            executor.queue_workload(make_workload(f"t{i}"), session=None)
        driver.until(lambda: gate.requests_seen > 0, timeout=15)
        for _ in range(20):
            driver.beat()
        assert gate.requests_seen > 0  # the engine is blocked inside RunTask calls...
        assert driver.events == {}  # ...and nothing came back, yet every heartbeat returned
        assert len(executor.running) == 50 and not executor.queued_tasks
        gate.open()
        driver.until(lambda: len(driver.final_states()) == 50)
        assert len(moto_tasks(ecs_cluster)) == 50
    finally:
        gate.stop()


def test_executor_config_overrides_merge_by_container_name(configure, ecs_cluster, new_executor):
    base = {
        "overrides": {
            "containerOverrides": [{"name": CONTAINER, "environment": [{"name": "A", "value": "1"}]}]
        }
    }
    configure(ecs_cluster, run_task_kwargs=json.dumps(base))
    executor = new_executor()
    driver = Driver(executor)
    w = make_workload(
        "custom",
        executor_config={
            "overrides": {
                "memory": "2048",
                "containerOverrides": [{"name": CONTAINER, "environment": [{"name": "B", "value": "2"}]}],
            }
        },
    )
    executor.queue_workload(w, session=None)
    driver.until(lambda: w.ti.key in driver.final_states())
    (task,) = moto_tasks(ecs_cluster).values()
    env = {e["name"]: e["value"] for e in _our_override(task)["environment"]}
    assert env["A"] == "1" and env["B"] == "2" and env["AIRFLOW_IS_EXECUTOR_CONTAINER"] == "true"
    assert task.overrides["memory"] == "2048"


def test_bad_executor_config_fails_only_that_task(configure, ecs_cluster, new_executor):
    configure(ecs_cluster)
    executor = new_executor()
    driver = Driver(executor)
    bad = make_workload("bad", executor_config={"overides": {}})
    huge = make_workload(
        "huge",
        executor_config={
            "overrides": {
                "containerOverrides": [
                    {"name": CONTAINER, "environment": [{"name": "X", "value": "y" * 9000}]}
                ]
            }
        },
    )
    typed = make_workload("typed", executor_config={"ephemeral_storage": 500})
    good = make_workload("good", executor_config={"cpu": 1024, "memory": 2048, "environment": {"C": "3"}})
    for w in (bad, huge, typed, good):
        executor.queue_workload(w, session=None)
    driver.until(lambda: len(driver.final_states()) == 4)
    states = driver.final_states()
    assert states[bad.ti.key] == TaskInstanceState.FAILED
    assert states[huge.ti.key] == TaskInstanceState.FAILED
    assert states[typed.ti.key] == TaskInstanceState.FAILED
    assert states[good.ti.key] == TaskInstanceState.SUCCESS
    events = {e.task_id: e.extra for e in view(executor).task_events}
    assert 'Unknown parameter in input: "overides"' in events["bad"]
    assert "8192" in events["huge"]
    assert "executor_config ephemeral_storage = 500: ephemeral storage must be 21-200 GiB" in events["typed"]
    (task,) = moto_tasks(ecs_cluster).values()
    # The typed keys arrive as task-level overrides (strings) and our container's environment.
    assert (task.overrides["cpu"], task.overrides["memory"]) == ("1024", "2048")
    assert {"name": "C", "value": "3"} in _our_override(task)["environment"]


def test_permanent_run_task_error_fails_at_once(configure, ecs_cluster, new_executor):
    configure(ecs_cluster, task_definition="does-not-exist", check_health_on_startup="False")
    executor = new_executor()
    driver = Driver(executor)
    w = make_workload("t")
    executor.queue_workload(w, session=None)
    driver.until(lambda: w.ti.key in driver.final_states())
    assert driver.final_states()[w.ti.key] == TaskInstanceState.FAILED
    (event,) = view(executor).task_events
    assert "ECS rejected RunTask" in event.extra
    assert view(executor).counters["run_task_calls"] == 1  # not retried


def test_health_check_refuses_to_start_without_the_cluster(configure, new_executor):
    configure("no-such-cluster")
    with pytest.raises(ExecutorStartupError) as missing:
        new_executor()
    assert "cluster 'no-such-cluster'" in str(missing.value)


def test_health_check_refuses_a_task_definition_without_our_container(
    configure, ecs_cluster, new_executor, boto_ecs
):
    boto_ecs.register_task_definition(
        family="other-container", containerDefinitions=[{"name": "sidecar", "image": "x", "memory": 128}]
    )
    configure(ecs_cluster, task_definition="other-container")
    with pytest.raises(ExecutorStartupError) as wrong:
        new_executor()
    message = str(wrong.value)
    assert "no container named 'airflow-worker'" in message and "sidecar" in message
    assert "AIRFLOW__AWS_ECS_EXECUTOR__CHECK_HEALTH_ON_STARTUP" in message


def test_bad_config_refuses_to_start_with_one_message(configure, ecs_cluster, new_executor):
    configure(ecs_cluster, subnets=",".join(f"subnet-{i}" for i in range(17)), max_concurrent_calls="0")
    with pytest.raises(ExecutorStartupError) as err:
        new_executor()
    assert not isinstance(err.value, SystemExit)  # Airflow's job runner would swallow it and exit 0
    text = str(err.value)
    assert "AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS" in text and "at most 16" in text
    assert "AIRFLOW__AWS_ECS_EXECUTOR__MAX_CONCURRENT_CALLS" in text


def test_multi_team_instances_read_their_own_sections(configure, boto_ecs, new_executor, monkeypatch):
    clusters = {}
    for team in ("teama", "teamb"):
        name = f"{team}-cluster"
        boto_ecs.create_cluster(clusterName=name)
        boto_ecs.register_task_definition(
            family=name, containerDefinitions=[{"name": CONTAINER, "image": "x", "memory": 128}]
        )
        clusters[team] = name
        configure(name, team=team)
    monkeypatch.setenv("AIRFLOW__CORE__MULTI_TEAM", "True")
    a = new_executor(team_name="teama")
    b = new_executor(team_name="teamb")
    assert a.settings.cluster == "teama-cluster" and b.settings.cluster == "teamb-cluster"
    da, db = Driver(a), Driver(b)
    wa, wb = make_workload("a"), make_workload("b")
    a.queue_workload(wa, session=None)
    b.queue_workload(wb, session=None)
    da.until(lambda: wa.ti.key in da.final_states())
    db.until(lambda: wb.ti.key in db.final_states())
    assert len(moto_tasks("teama-cluster")) == 1 and len(moto_tasks("teamb-cluster")) == 1
    (task_a,) = moto_tasks("teama-cluster").values()
    assert task_a.started_by == f"{STARTED_BY}/teama"


def test_revoke_stops_the_ecs_task_and_forgets_it(
    configure, ecs_cluster, new_executor, moto_manual_lifecycle, boto_ecs
):
    configure(ecs_cluster)
    executor = new_executor()
    driver = Driver(executor)
    w = make_workload("t")
    executor.queue_workload(w, session=None)
    driver.until(lambda: w.ti.key in arns(executor))
    arn = arns(executor)[w.ti.key]

    class TI:
        key = w.ti.key

    executor.revoke_task(ti=TI())
    assert w.ti.key not in executor.running
    driver.until(lambda: moto_tasks(ecs_cluster)[arn].desired_status == "STOPPED")
    for _ in range(5):
        driver.beat()
    assert w.ti.key not in driver.final_states()  # revoke_task must not add events


def test_adoption_by_arn_reports_true_final_states(
    configure, ecs_cluster, new_executor, moto_manual_lifecycle
):
    configure(ecs_cluster)
    first = new_executor()
    d1 = Driver(first)
    workloads = [make_workload(f"t{i}") for i in range(6)]
    for w in workloads:
        first.queue_workload(w, session=None)
    d1.until(lambda: len(arns(first)) == 6)
    launched = arns(first)
    first.end()  # the scheduler dies; ECS tasks keep running
    finish_moto_task(ecs_cluster, launched[workloads[0].ti.key], 0)
    finish_moto_task(ecs_cluster, launched[workloads[1].ti.key], 2)

    class TI:
        def __init__(self, key: Any, arn: str | None):
            self.key, self.external_executor_id = key, arn

    second = new_executor()
    tis = [TI(key, arn) for key, arn in launched.items()] + [TI(make_workload("x").ti.key, None)]
    not_adopted = second.try_adopt_task_instances(tis)
    assert [t.external_executor_id for t in not_adopted] == [None]
    assert len(second.running) == 6
    d2 = Driver(second)
    d2.until(lambda: len(d2.final_states()) == 2)
    states = d2.final_states()
    assert states[workloads[0].ti.key] == TaskInstanceState.SUCCESS
    assert states[workloads[1].ti.key] == TaskInstanceState.FAILED
    for w in workloads[2:]:
        finish_moto_task(ecs_cluster, launched[w.ti.key], 0)
    d2.until(lambda: len(d2.final_states()) == 6)
    assert len(moto_tasks(ecs_cluster)) == 6  # nothing relaunched


def test_secrets_never_reach_logs(configure, ecs_cluster, new_executor, caplog, capfd, moto_manual_lifecycle):
    caplog.set_level(logging.DEBUG)
    configure(ecs_cluster)
    executor = new_executor()
    driver = Driver(executor)
    ok, bad = make_workload("ok"), make_workload("bad", executor_config={"count": 2})
    for w in (ok, bad):
        executor.queue_workload(w, session=None)
    driver.until(lambda: ok.ti.key in arns(executor) and bad.ti.key in driver.final_states())
    finish_moto_task(ecs_cluster, arns(executor)[ok.ti.key], 3)
    driver.until(lambda: ok.ti.key in driver.final_states())
    executor.end()
    # Library loggers propagate to caplog; Airflow's logging writes the executor's own lines to stdout.
    output = capfd.readouterr()
    events = "".join(e.extra for e in view(executor).task_events)
    text = caplog.text + output.out + output.err + events
    assert "Task " in output.out and "failed" in output.out  # the executor's own error line is in there
    # The access key *ID* appears in SigV4 headers at DEBUG (not a secret); the secret key must not.
    for secret in (SECRET_TOKEN, "SECRET-WORKLOAD-TOKEN", "test-secret-key-DO-NOT-LOG"):
        assert secret not in text
    assert "exited with code 3" in text


def test_end_returns_within_shutdown_timeout(configure, ecs_cluster, new_executor, moto_url):
    gate = GateProxy(moto_url).start()
    try:
        configure(ecs_cluster, check_health_on_startup="False", shutdown_timeout="1")
        import os
        import time

        os.environ["AIRFLOW_CONN_AWS_TEST"] = json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": gate.url, "region_name": REGION}}
        )
        executor = new_executor()
        executor.queue_workload(make_workload("stuck"), session=None)
        executor.heartbeat()
        started = time.monotonic()
        executor.end()
        elapsed = time.monotonic() - started
        assert elapsed < 1 + 5 + 2  # shutdown_timeout + join margin, never the 60 s read timeout
    finally:
        gate.stop()


def test_terminate_stops_all_tracked_tasks(configure, ecs_cluster, new_executor, moto_manual_lifecycle):
    configure(ecs_cluster)
    executor = new_executor()
    driver = Driver(executor)
    for i in range(5):
        executor.queue_workload(make_workload(f"t{i}"), session=None)
    driver.until(lambda: len(arns(executor)) == 5)
    executor.terminate()
    statuses = Counter(t.desired_status for t in moto_tasks(ecs_cluster).values())
    assert statuses == {"STOPPED": 5}


def test_crash_reason_includes_the_last_cloudwatch_lines(
    configure, boto_ecs, new_executor, moto_manual_lifecycle, moto_url
):
    import time
    import uuid

    import boto3

    cluster = f"logs-{uuid.uuid4().hex[:8]}"
    group = f"/ecs/{cluster}"
    boto_ecs.create_cluster(clusterName=cluster)
    options = {"awslogs-group": group, "awslogs-region": REGION, "awslogs-stream-prefix": "airflow"}
    boto_ecs.register_task_definition(
        family=cluster,
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": "x",
                "memory": 256,
                "logConfiguration": {"logDriver": "awslogs", "options": options},
            }
        ],
    )
    configure(cluster)
    executor = new_executor()
    driver = Driver(executor)
    w = make_workload("crashy")
    executor.queue_workload(w, session=None)
    driver.until(lambda: w.ti.key in arns(executor))
    arn = arns(executor)[w.ti.key]
    logs = boto3.client("logs", endpoint_url=moto_url, region_name=REGION)
    stream = f"airflow/{CONTAINER}/{arn.rsplit('/', 1)[-1]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    lines = ["loading dag", "ModuleNotFoundError: No module named 'pandas'"]
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )
    finish_moto_task(cluster, arn, 1)
    driver.until(lambda: w.ti.key in driver.final_states())
    ((_, event),) = view(executor).events_for("crashy")
    assert "exited with code 1" in event
    assert "last log lines: loading dag | ModuleNotFoundError: No module named 'pandas'" in event


def test_heartbeat_takes_only_what_ecs_will_accept_soon(configure, ecs_cluster, new_executor):
    """Beyond the RunTask bucket, workloads stay in queued_tasks (still queued for the scheduler, and
    offered again by priority) instead of piling up inside the engine."""
    configure(ecs_cluster, run_task_burst="5", run_task_rate="1")
    executor = new_executor()
    for i in range(20):
        executor.queue_workload(make_workload(f"t{i}"), session=None)
    executor.heartbeat()
    taken = 20 - len(executor.queued_tasks)
    assert 5 <= taken <= 7  # burst 5 + about one second of refill
    assert len(executor.running) == taken
    driver = Driver(executor)
    driver.until(lambda: len(driver.final_states()) == 20, timeout=60)
    assert len(moto_tasks(ecs_cluster)) == 20
