"""Spot with an on-demand fallback, end to end: the real executor, driven like the scheduler drives it,
against the local ECS endpoint with a Fargate Spot shortage (or interruption)."""

from __future__ import annotations

import json
import time
from typing import Any

from ecs_executor.local_ecs.faults import CAPACITY_UNAVAILABLE
from tests.conftest import Driver, make_workload
from tests.integration.test_ecs_semantics import FARGATE_FAMILY, describe, fargate_definition, make_cluster
from tests.integration.test_fault_injection import (
    FAILED,
    SUCCESS,
    failure_reason,
    finish_when_launched,
    queue,
    retry_events,
)
from tests.support.executor_view import arns, event_logs, view
from tests.support.fault_helpers import boto_client, ecs_census, tasks_per_try, try_id_of_key

SPOT = json.dumps([{"capacityProvider": "FARGATE_SPOT", "weight": 1}])


def spot_cluster(local_ecs: Any, point_at: Any, **options: str) -> None:
    """A cluster with FARGATE and FARGATE_SPOT; the executor prefers Spot (no launch type of its own)."""
    point_at(local_ecs.url)
    make_cluster(local_ecs.url, "spot")
    boto_client(local_ecs.url).register_task_definition(**fargate_definition())
    point_at(
        local_ecs.url,
        cluster="spot",
        launch_type="",
        capacity_provider_strategy=SPOT,
        task_definition=FARGATE_FAMILY,
        subnets="subnet-1",
        poll_interval="0.2",
        **options,
    )


def launch_events(executor: Any, task_id: str) -> list[str]:
    return [extra for event, extra in event_logs(executor, task_id) if event == "ECS task launched"]


def test_under_a_spot_shortage_tasks_start_on_fargate_after_the_wait_and_succeed(
    local_ecs, point_at, executors
):
    spot_cluster(
        local_ecs,
        point_at,
        fallback_launch_type="FARGATE",
        fallback_after_seconds="2",
        capacity_wait_seconds="20",
    )
    local_ecs.configure(spot_capacity_shortage=True)
    executor = executors()
    driver = Driver(executor)
    work = [make_workload(f"fb-{i}") for i in range(3)]
    started = time.monotonic()
    queue(executor, work)
    driver.until(lambda: all(w.ti.key in arns(executor) for w in work), timeout=30)
    assert time.monotonic() - started >= 2.0  # they waited fallback_after_seconds on Spot first
    for w in work:
        driver.until(lambda w=w: finish_when_launched(executor, local_ecs, w.ti.key))
    driver.until(lambda: all(w.ti.key in driver.final_states() for w in work), timeout=30)

    assert {driver.final_states()[w.ti.key] for w in work} == {SUCCESS}
    for w in work:
        task = describe(local_ecs.url, "spot", arns(executor).get(w.ti.key) or launched_arn(executor, w))
        assert task["launchType"] == "FARGATE" and not task.get("capacityProviderName")
        (launched,) = launch_events(executor, w.ti.task_id)
        assert " on FARGATE (fallback: no FARGATE_SPOT capacity for 2 s) (launch attempt " in launched, (
            launched
        )
        assert any(CAPACITY_UNAVAILABLE in text for text in retry_events(executor, w.ti.task_id))
        assert tasks_per_try(ecs_census(local_ecs.url, "spot"))[try_id_of_key(w.ti.key)] == 1
    assert view(executor).counters["fallbacks"] == 3


def launched_arn(executor: Any, workload: Any) -> str:
    (text,) = launch_events(executor, workload.ti.task_id)
    return text.split(" ", 1)[0]


def test_without_the_option_a_spot_shortage_waits_capacity_wait_seconds_and_fails(
    local_ecs, point_at, executors
):
    spot_cluster(local_ecs, point_at, capacity_wait_seconds="3")
    local_ecs.configure(spot_capacity_shortage=True)
    executor = executors()
    driver = Driver(executor)
    w = make_workload("no-fallback")
    started = time.monotonic()
    queue(executor, [w])
    driver.until(lambda: w.ti.key in driver.final_states(), timeout=30)
    assert time.monotonic() - started >= 3.0
    assert driver.final_states()[w.ti.key] == FAILED
    reason = failure_reason(executor, "no-fallback")
    assert CAPACITY_UNAVAILABLE in reason and "capacity_wait_seconds=3" in reason
    assert not any("fallback" in text for text in retry_events(executor, "no-fallback"))
    assert launch_events(executor, "no-fallback") == []
    assert ecs_census(local_ecs.url, "spot") == [] and view(executor).counters["fallbacks"] == 0


def test_a_spot_task_interrupted_before_it_ran_is_relaunched_on_fargate_at_once(
    local_ecs, point_at, executors
):
    spot_cluster(local_ecs, point_at, fallback_launch_type="FARGATE")
    local_ecs.configure(spot_interruption_before_start=True)
    executor = executors()
    driver = Driver(executor)
    w = make_workload("interrupted")
    queue(executor, [w])
    driver.until(lambda: bool(launch_events(executor, "interrupted")), timeout=30)
    driver.until(lambda: finish_when_launched(executor, local_ecs, w.ti.key))
    driver.until(lambda: w.ti.key in driver.final_states(), timeout=30)

    assert driver.final_states()[w.ti.key] == SUCCESS
    (launched,) = launch_events(executor, "interrupted")
    assert (
        "on FARGATE (fallback: the Spot task was interrupted before its container ran) (launch attempt 2)"
        in (launched)
    )
    (retry,) = retry_events(executor, "interrupted")
    assert "interrupted by Spot (SpotInterruption)" in retry and "launch attempt 2 in 0s" in retry
    assert tasks_per_try(ecs_census(local_ecs.url, "spot"))[try_id_of_key(w.ti.key)] == 2
