"""Real Airflow and real ECS semantics, end to end through the executor against the local ECS endpoint:
re-queued tries, cluster default strategies, per-task launch targets and clusters, queue profiles,
capacity waits, start-failure triage, credentials that a refresh cannot heal."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import CONTAINER, Driver, make_workload
from tests.integration.test_fault_injection import failure_reason, queue, retry_events
from tests.support.executor_view import EngineEnd, arns, event_logs, view
from tests.support.fault_helpers import (
    CLUSTER,
    FAMILY,
    REGION,
    boto_client,
    ecs_census,
    try_id_of_key,
)
from tests.support.http_proxy import ForwardingProxy
from tests.support.polling import wait_for

FARGATE_FAMILY = "fargate-worker"


def fargate_definition() -> dict[str, Any]:
    return {
        "family": FARGATE_FAMILY,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512}],
    }


def make_cluster(
    url: str,
    name: str,
    default_strategy: list[dict[str, Any]] | None = None,
    providers: tuple[str, ...] = ("FARGATE", "FARGATE_SPOT"),
) -> None:
    params: dict[str, Any] = {"clusterName": name, "capacityProviders": list(providers)}
    if default_strategy:
        params["defaultCapacityProviderStrategy"] = default_strategy
    boto_client(url).create_cluster(**params)


def describe(url: str, cluster: str, arn: str) -> dict[str, Any]:
    (task,) = boto_client(url).describe_tasks(cluster=cluster, tasks=[arn])["tasks"]
    return task


def final(driver: Driver, workload: Any) -> Any:
    return driver.final_states().get(workload.ti.key)


def run_to_the_end(executor: Any, task_id: str) -> tuple[Any, Driver]:
    """Queue one task and heartbeat until it has a final state."""
    driver = Driver(executor)
    w = make_workload(task_id)
    queue(executor, [w])
    driver.until(lambda: final(driver, w) is not None, timeout=30)
    return w, driver


def tasks_for(url: str, workload: Any, cluster: str = CLUSTER) -> int:
    """ECS tasks the endpoint holds for this try (one per launch attempt)."""
    return sum(1 for t in ecs_census(url, cluster) if t.try_id == try_id_of_key(workload.ti.key))


def test_a_requeued_try_gets_its_own_ecs_task(local_ecs, point_at, executors):
    """Airflow queues the same try again (a deferred task resuming, a reschedule sensor's next poke).

    Before the fix the clientToken came from the try's key: ECS answered the second RunTask with the first,
    long-finished task (identical request) or ConflictException (different request)."""
    point_at(local_ecs.url)
    executor = executors()
    driver = Driver(executor)
    first = make_workload("deferrable")
    queue(executor, [first])
    driver.until(lambda: first.ti.key in arns(executor))
    first_arn = arns(executor)[first.ti.key]
    local_ecs.finish_task(first_arn, 0)
    driver.until(lambda: final(driver, first) is not None)

    # The trigger fired: the same try (same key, same try_number) is queued again.
    resumed = make_workload("deferrable")
    assert resumed.ti.key == first.ti.key
    driver.events.clear()
    queue(executor, [resumed])
    driver.until(lambda: resumed.ti.key in arns(executor) and arns(executor)[resumed.ti.key] != first_arn)
    second_arn = arns(executor)[resumed.ti.key]
    assert describe(local_ecs.url, CLUSTER, second_arn)["lastStatus"] in ("PENDING", "RUNNING")
    local_ecs.finish_task(second_arn, 0)
    driver.until(lambda: final(driver, resumed) is not None)
    assert [info for _, info in driver.events[resumed.ti.key]] == [second_arn, second_arn]
    assert ecs_census(local_ecs.url) and tasks_for(local_ecs.url, first) == 2


def test_a_previous_queueings_end_reported_after_the_requeue_leaves_the_new_one_running(
    local_ecs, point_at, executors
):
    """Seen with two schedulers on a loaded machine (tests/e2e/test_ha_schedulers.py): a deferred try is
    queued again before the scheduler has drained the end of the ECS task that deferred. Reported, that
    success took the key out of ``running`` and the scheduler failed the new queueing ("state changed
    externally"); it belongs to the previous queueing and is dropped."""
    point_at(local_ecs.url, poll_interval="0.2")
    executor = executors()
    driver = Driver(executor)
    first = make_workload("resumes")
    queue(executor, [first])
    driver.until(lambda: first.ti.key in arns(executor))
    first_arn = arns(executor)[first.ti.key]
    local_ecs.finish_task(first_arn, 0)
    # The engine reports the end; no heartbeat drains it before the try is queued again.
    wait_for(EngineEnd(executor).has_results, timeout=10)
    resumed = make_workload("resumes")
    driver.events.clear()
    queue(executor, [resumed])
    driver.beat()  # trigger_tasks queues the new launch, then sync drains the old task's end
    assert resumed.ti.key in executor.running and resumed.ti.key not in driver.events
    driver.until(lambda: arns(executor).get(resumed.ti.key, first_arn) != first_arn)
    second_arn = arns(executor)[resumed.ti.key]
    local_ecs.finish_task(second_arn, 0)
    driver.until(lambda: final(driver, resumed) is not None)
    assert [info for _, info in driver.events[resumed.ti.key]] == [second_arn, second_arn]


@pytest.mark.parametrize(
    ("default_strategy", "expected"),
    [
        ([{"capacityProvider": "FARGATE_SPOT", "weight": 1}], {"capacityProviderName": "FARGATE_SPOT"}),
        (None, {"launchType": "FARGATE"}),
    ],
)
def test_the_cluster_default_strategy_applies_when_no_launch_target_is_set(
    local_ecs, point_at, executors, default_strategy, expected
):
    cluster = "with-default" if default_strategy else "without-default"
    make_cluster(local_ecs.url, cluster, default_strategy)
    boto_client(local_ecs.url).register_task_definition(**fargate_definition())
    point_at(
        local_ecs.url, launch_type="", cluster=cluster, task_definition=FARGATE_FAMILY, subnets="subnet-1"
    )
    executor = executors()
    driver = Driver(executor)
    w = make_workload("default-target")
    queue(executor, [w])
    driver.until(lambda: w.ti.key in arns(executor))
    task = describe(local_ecs.url, cluster, arns(executor)[w.ti.key])
    for key, value in expected.items():
        assert task.get(key) == value, task


def test_a_per_task_strategy_replaces_the_configured_launch_type(local_ecs, point_at, executors):
    make_cluster(local_ecs.url, "spot", [{"capacityProvider": "FARGATE", "weight": 1}])
    boto_client(local_ecs.url).register_task_definition(**fargate_definition())
    point_at(
        local_ecs.url,
        cluster="spot",
        launch_type="FARGATE",
        task_definition=FARGATE_FAMILY,
        subnets="subnet-1",
    )
    executor = executors()
    driver = Driver(executor)
    w = make_workload(
        "on-spot",
        executor_config={"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]},
    )
    queue(executor, [w])
    driver.until(lambda: w.ti.key in arns(executor) or final(driver, w) is not None)
    assert w.ti.key in arns(executor), event_logs(executor, "on-spot")
    assert (
        describe(local_ecs.url, "spot", arns(executor)[w.ti.key]).get("capacityProviderName")
        == "FARGATE_SPOT"
    )


def test_a_task_on_another_cluster_is_tracked_stopped_and_adopted_there(local_ecs, point_at, executors):
    """Before the fix it was described on the default cluster, reported MISSING, relaunched: ran twice."""
    make_cluster(local_ecs.url, "elsewhere")
    point_at(local_ecs.url, poll_interval="0.2")
    executor = executors()
    driver = Driver(executor)
    away = make_workload("away", executor_config={"cluster": "elsewhere"})
    revoked = make_workload("revoked-away", executor_config={"cluster": "elsewhere"})
    queue(executor, [away, revoked])
    driver.until(lambda: {away.ti.key, revoked.ti.key} <= set(arns(executor)))
    arn = arns(executor)[away.ti.key]
    assert "/elsewhere/" in arn
    time.sleep(1.0)  # several sweeps: none may call it MISSING
    driver.beat()
    assert final(driver, away) is None

    # revoke: StopTask goes to the task's own cluster.
    revoked_arn = arns(executor)[revoked.ti.key]
    executor.revoke_task(ti=_FakeTI(revoked.ti.key, revoked_arn))
    driver.until(lambda: describe(local_ecs.url, "elsewhere", revoked_arn)["desiredStatus"] == "STOPPED")

    # a new scheduler adopts the running one by ARN and follows it on its cluster.
    executor.end()
    second = executors()
    d2 = Driver(second)
    assert second.try_adopt_task_instances([_FakeTI(away.ti.key, arn)]) == []
    local_ecs.finish_task(arn, 0)
    d2.until(lambda: final(d2, away) is not None)
    assert str(final(d2, away)) == "success"
    assert tasks_for(local_ecs.url, away, "elsewhere") == 1


class _FakeTI:
    def __init__(self, key: Any, arn: str | None):
        self.key = key
        self.external_executor_id = arn


def test_queue_profiles_route_tasks_and_an_unknown_queue_fails_with_the_choices(
    local_ecs, point_at, executors
):
    make_cluster(local_ecs.url, "gpu-cluster")
    boto_client(local_ecs.url).register_task_definition(
        family="gpu-worker",
        containerDefinitions=[{"name": CONTAINER, "image": "acme/airflow-gpu:1", "memory": 2048}],
    )
    profiles = '{"gpu": {"cluster": "gpu-cluster", "task_definition": "gpu-worker", "memory": 2048}}'
    point_at(local_ecs.url, queue_profiles=profiles)
    executor = executors()
    driver = Driver(executor)
    gpu = make_workload("train", queue="gpu")
    plain = make_workload("plain", queue="default")
    lost = make_workload("lost", queue="highmem")
    queue(executor, [gpu, plain, lost])
    driver.until(
        lambda: {gpu.ti.key, plain.ti.key} <= set(arns(executor)) and final(driver, lost) is not None
    )
    task = describe(local_ecs.url, "gpu-cluster", arns(executor)[gpu.ti.key])
    assert task["taskDefinitionArn"].endswith(":task-definition/gpu-worker:1")
    # A profile's memory is task-level (issue 24): RunTask overrides.memory, as a string.
    assert task["overrides"]["memory"] == "2048" and task["memory"] == "2048"
    (ours,) = [c for c in task["overrides"]["containerOverrides"] if c["name"] == CONTAINER]
    assert "memory" not in ours
    assert f"/{CLUSTER}/" in arns(executor)[plain.ti.key]
    reason = failure_reason(executor, "lost")
    assert "queue 'highmem' has no entry in queue_profiles; configured: gpu" in reason


def test_capacity_shortage_is_waited_out_past_max_attempts(local_ecs, point_at, executors):
    # Relaunches come 1-2 s, then 2-4 s apart: a 6 s wait could end before the third on a busy machine.
    point_at(local_ecs.url, max_run_task_attempts="2", capacity_wait_seconds="40")
    executor = executors()
    driver = Driver(executor)
    local_ecs.configure(run_task_failure_rate=1.0, run_task_failure_reason="RESOURCE:MEMORY")
    recovers = make_workload("capacity-recovers")
    queue(executor, [recovers])
    # Three relaunches: more than max_run_task_attempts allows for other failures.
    driver.until(lambda: len(retry_events(executor, "capacity-recovers")) >= 3, timeout=30)
    local_ecs.configure(run_task_failure_rate=0.0)
    driver.until(lambda: recovers.ti.key in arns(executor), timeout=30)
    assert view(executor).counters["relaunches_capacity"] >= 3


def test_capacity_shortage_is_given_up_on_time(local_ecs, point_at, executors):
    point_at(local_ecs.url, max_run_task_attempts="2", capacity_wait_seconds="6")
    executor = executors()
    driver = Driver(executor)
    local_ecs.configure(run_task_failure_rate=1.0, run_task_failure_reason="RESOURCE:MEMORY")
    started = time.monotonic()
    gives_up = make_workload("capacity-gives-up")
    queue(executor, [gives_up])
    driver.until(lambda: final(driver, gives_up) is not None, timeout=30)
    assert time.monotonic() - started >= 5.0
    reason = failure_reason(executor, "capacity-gives-up")
    assert "RESOURCE:MEMORY" in reason and "capacity_wait_seconds=6" in reason
    assert view(executor).counters["relaunches_capacity"] >= 1


@pytest.mark.parametrize(
    ("reason", "relaunched"),
    [
        (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
            "docker.io/acme/nope:1: docker.io/acme/nope:1: not found",
            False,
        ),
        ("Timeout waiting for network interface provisioning to complete.", True),
    ],
)
def test_start_failures_are_triaged_by_reason(local_ecs, point_at, executors, reason, relaunched):
    point_at(local_ecs.url, max_run_task_attempts="2")
    executor = executors()
    local_ecs.configure(fail_to_start_rate=1.0, fail_to_start_reason=reason)
    w, _driver = run_to_the_end(executor, "start-failure")
    tasks = tasks_for(local_ecs.url, w)
    assert tasks == (2 if relaunched else 1)
    assert ("launch attempts" in failure_reason(executor, "start-failure")) == relaunched
    if not relaunched:
        assert "will not heal by itself" in failure_reason(executor, "start-failure")


class RejectingProxy(ForwardingProxy):
    """Answers every ECS call with UnrecognizedClientException, whatever the credentials."""

    def __init__(self, upstream: str):
        super().__init__(upstream, name="rejecting-proxy")

    async def intercept(self, request: Any) -> Any:
        from aiohttp import web

        body = b'{"__type": "UnrecognizedClientException", "message": "The security token is invalid."}'
        return web.Response(status=400, body=body, headers={"Content-Type": "application/x-amz-json-1.1"})


def test_credentials_a_refresh_cannot_heal_fail_the_task_promptly(
    local_ecs, point_at, executors, monkeypatch
):
    monkeypatch.setattr("ecs_executor.engine.calls.CREDENTIALS_HOPELESS_SECONDS", 2.0)
    proxy = RejectingProxy(local_ecs.url).start()
    try:
        point_at(proxy.url, check_health_on_startup="False")
        executor = executors()
        driver = Driver(executor)
        w = make_workload("bad-credentials")
        queue(executor, [w])
        driver.until(lambda: final(driver, w) is not None, timeout=30)
    finally:
        proxy.stop()
    reason = failure_reason(executor, "bad-credentials")
    assert (
        "UnrecognizedClientException" in reason
        and "still rejected after the credentials were refreshed" in reason
    )
    assert "'aws_test'" in reason and "ecs:RunTask" in reason
    assert view(executor).counters["credential_refreshes"] >= 1


def test_start_does_the_first_heartbeats_lazy_work(local_ecs, point_at, executors, monkeypatch):
    """SQLAlchemy's mapper configuration (first Log row) and the metrics registry ran on the first
    heartbeat (~35 ms); start() does them now."""
    import sqlalchemy.orm

    calls: list[str] = []
    original = sqlalchemy.orm.configure_mappers
    monkeypatch.setattr(sqlalchemy.orm, "configure_mappers", lambda: (calls.append("mappers"), original())[1])
    point_at(local_ecs.url)
    executors()
    assert calls == ["mappers"]


def test_family_still_used_by_default(local_ecs, point_at, executors):
    """The base options still launch where they always did (no queue, no executor_config)."""
    point_at(local_ecs.url)
    executor = executors()
    driver = Driver(executor)
    w = make_workload("plain")
    queue(executor, [w])
    driver.until(lambda: w.ti.key in arns(executor))
    task = describe(local_ecs.url, CLUSTER, arns(executor)[w.ti.key])
    assert task["taskDefinitionArn"].endswith(f":task-definition/{FAMILY}:1") and task["launchType"] == "EC2"
    assert REGION in task["taskArn"]


def test_the_provisioning_limit_is_waited_out(local_ecs, point_at, executors):
    """RunTask's ClientException "Tasks provisioning capacity limit exceeded." is a capacity wait, not a
    permanent refusal (before: the task failed at once)."""
    point_at(local_ecs.url, max_run_task_attempts="1", capacity_wait_seconds="60")
    executor = executors()
    driver = Driver(executor)
    local_ecs.configure(capacity_shortage_seconds=2.0, capacity_shortage_kind="provisioning_limit")
    w = make_workload("provisioning")
    queue(executor, [w])
    driver.until(lambda: w.ti.key in arns(executor), timeout=30)
    retries = retry_events(executor, "provisioning")
    assert retries and all("Tasks provisioning capacity limit exceeded" in r for r in retries)


def test_a_missing_image_fails_at_once_with_its_reason(local_ecs, point_at, executors):
    point_at(local_ecs.url, max_run_task_attempts="3")
    executor = executors()
    local_ecs.configure(image_missing=True)
    w, _driver = run_to_the_end(executor, "no-image")
    reason = failure_reason(executor, "no-image")
    assert "CannotPullContainerError" in reason and "not found" in reason and "will not heal" in reason
    assert retry_events(executor, "no-image") == []
    assert tasks_for(local_ecs.url, w) == 1


def test_a_spot_interruption_is_named_in_the_log_and_counted(local_ecs, point_at, executors):
    point_at(local_ecs.url)
    executor = executors()
    local_ecs.configure(spot_interruption_seconds=0.5)
    _w, _driver = run_to_the_end(executor, "on-spot")
    assert "interrupted by Spot (SpotInterruption)" in failure_reason(executor, "on-spot")
    assert view(executor).counters["spot_interruptions"] == 1
    assert retry_events(executor, "on-spot") == []  # relaunch is opt-in


def test_a_running_try_interrupted_by_spot_is_not_relaunched_even_when_opted_in(
    local_ecs, point_at, executors
):
    """Airflow 3.3's Execution API refuses to start a try that is already running (409 invalid_state): a
    relaunch could only fail later and cost another ECS task."""
    point_at(local_ecs.url, relaunch_on_spot_interruption="True", max_run_task_attempts="2")
    executor = executors()
    local_ecs.configure(spot_interruption_seconds=0.5)
    w, _driver = run_to_the_end(executor, "on-spot-again")
    assert "interrupted by Spot (SpotInterruption)" in failure_reason(executor, "on-spot-again")
    assert retry_events(executor, "on-spot-again") == []
    assert tasks_for(local_ecs.url, w) == 1
