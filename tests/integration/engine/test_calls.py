"""Pacing (engine/calls.py) against LocalEcs in pretend mode: how the engine spends the ECS API budget and
the scheduler's time.

Counts, not timings: calls made, calls throttled, messages sent, threads that touched the loop.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest
from airflow.utils.state import TaskInstanceState

from ecs_executor import messages as m
from ecs_executor.core.task_status import Phase
from ecs_executor.engine.tracker import DESCRIBE_IN_FLIGHT
from tests.conftest import Driver, make_workload
from tests.support.executor_view import EngineEnd, arns, engine_loop, engine_of, view
from tests.support.fault_helpers import FakeTI

RUNNING = TaskInstanceState.RUNNING


def queue_all(executor: Any, workloads: list[Any]) -> None:
    for w in workloads:
        executor.queue_workload(w, session=None)


def launched(driver: Driver, keys: list[Any]) -> int:
    return sum(1 for k in keys if any(state == RUNNING for state, _ in driver.events.get(k, [])))


def test_oversubscribed_run_task_limit_slows_the_bucket_instead_of_hammering_ecs(
    local_ecs, point_at, executors, capfd
):
    # The executor may send 100/s; ECS grants 5 + 5/s (other systems spend the rest of the budget).
    point_at(local_ecs.url, run_task_rate="100", run_task_burst="100", poll_interval="0.5")
    executor = executors(parallelism=200)
    local_ecs.configure(throttle=True, throttle_overrides={"cluster_modify": [5, 5]})
    driver = Driver(executor)
    workloads = [make_workload(f"over-{i:02d}") for i in range(60)]
    keys = [w.ti.key for w in workloads]
    queue_all(executor, workloads)
    driver.until(lambda: launched(driver, keys) == len(keys), timeout=120, interval=0.2)

    assert driver.summary().get("failed", []) == []
    stats, counters = local_ecs.stats(), view(executor).counters
    throttled = stats["faults"].get("bucket_throttle", 0)
    # Every RunTask that reached ECS was sent by the engine through its bucket: botocore retried none
    # (its retries would bypass the pacing).
    assert stats["calls"]["RunTask"] == counters["run_task_calls"]
    assert engine_of(executor).calls.run_bucket.cuts >= 1
    # A fixed pace of 100/s would be refused ~19 times per launch (55 at once, then 95 of every 100/s).
    assert throttled <= 2 * len(keys), f"{throttled} throttled RunTask calls for {len(keys)} launches"
    # The operator is told once why launches slowed down, not once per throttle.
    # (Airflow's logging writes the executor's log lines to stdout, past pytest's caplog.)
    notes = [line for line in capfd.readouterr().out.splitlines() if "ECS is throttling RunTask" in line]
    assert len(notes) == 1 and "instead of 100/s (run_task_rate)" in notes[0], notes


def test_scheduler_thread_never_wakes_the_engine_loop(local_ecs, point_at, executors):
    """A cross-thread wake-up is a syscall that releases the GIL; the heartbeat must not make one."""
    point_at(local_ecs.url, poll_interval="0.5")
    executor = executors()
    loop = engine_loop(executor)
    callers: list[str] = []
    original = loop.call_soon_threadsafe

    def recording(*args: Any, **kwargs: Any) -> Any:
        callers.append(threading.current_thread().name)
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = recording
    driver = Driver(executor)
    workloads = [make_workload(f"quiet-{i:02d}") for i in range(30)]
    keys = [w.ti.key for w in workloads]
    queue_all(executor, workloads)
    driver.until(lambda: launched(driver, keys) == len(keys), timeout=60)
    executor.revoke_task(ti=FakeTI(keys[0], None))
    driver.beat()
    assert threading.main_thread().name not in callers


def test_only_running_and_final_states_cross_the_queue(local_ecs, point_at, executors):
    point_at(local_ecs.url, poll_interval="0.2")
    executor = executors()
    sent = EngineEnd(executor).record_results()
    driver = Driver(executor)
    workloads = [make_workload(f"phase-{i}") for i in range(10)]
    keys = [w.ti.key for w in workloads]
    queue_all(executor, workloads)
    driver.until(lambda: launched(driver, keys) == len(keys), timeout=60)
    launched_arns = arns(executor)
    driver.until(lambda: sum(isinstance(r, m.StateChanged) for r in sent) >= len(keys), timeout=60)
    for arn in launched_arns.values():
        local_ecs.finish_task(arn, 0)
    driver.until(lambda: len(driver.final_states()) == len(keys), timeout=60)

    phases = [r.status.phase for r in sent if isinstance(r, m.StateChanged)]
    assert set(phases) <= {Phase.RUNNING, Phase.SUCCESS, Phase.FAILED}
    assert phases.count(Phase.RUNNING) == len(keys) and phases.count(Phase.SUCCESS) == len(keys)


def test_describe_calls_in_flight_are_bounded(local_ecs, point_at, executors):
    """A sweep over many tasks keeps at most DESCRIBE_IN_FLIGHT responses in the air (and in memory)."""
    point_at(local_ecs.url, poll_interval="0.2", run_task_burst="1000", run_task_rate="1000")
    executor = executors(parallelism=1200)
    local_ecs.configure(latency_ms=30)
    engine = engine_of(executor)
    in_flight = [0, 0]  # now, max
    original = engine.tracker._describe_locked

    async def counting(cluster: str, arns: list[str]) -> None:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            await original(cluster, arns)
        finally:
            in_flight[0] -= 1

    engine.tracker._describe_locked = counting
    driver = Driver(executor)
    workloads = [make_workload(f"many-{i:04d}") for i in range(1000)]
    keys = [w.ti.key for w in workloads]
    queue_all(executor, workloads)
    driver.until(lambda: launched(driver, keys) == len(keys), timeout=120, interval=0.2)
    calls_before = engine.counters["describe_calls"]
    driver.until(lambda: engine.counters["describe_calls"] >= calls_before + 20, timeout=60)
    assert 2 <= in_flight[1] <= DESCRIBE_IN_FLIGHT


@pytest.mark.parametrize("freeze", [False, True])
def test_start_freezes_the_garbage_collector_unless_told_not_to(local_ecs, point_at, executors, freeze):
    gc.unfreeze()
    point_at(local_ecs.url, freeze_gc_on_start=str(freeze))
    executors()
    assert (gc.get_freeze_count() > 0) is freeze


def test_only_throttles_slow_the_run_task_bucket():
    """botocore's needs-retry answers, as the engine's hook sees them: a 5xx or a lost reply says nothing
    about ECS's rate limit (counting them as refusals read random faults as a lower limit: the
    fault-injection run took 100 s instead of 17 s); a throttle cuts the rate and is not retried by
    botocore (its retry would bypass the bucket)."""
    from ecs_executor.config.settings import settings_from_mapping
    from ecs_executor.engine import Engine

    settings = settings_from_mapping(
        {"cluster": "c", "container_name": "w", "region_name": "us-east-1", "task_definition": "td"}
    )
    engine = Engine(settings, m.Channel())
    bucket = engine.calls.run_bucket

    def answer(code: str, status: int) -> tuple[None, dict[str, Any]]:
        return None, {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}

    faults = [answer("ServerException", 500), None, answer("ServiceUnavailableException", 503)] * 3
    for response in faults:
        assert engine.calls.on_cluster_modify_attempt(response=response) is None  # botocore decides as usual
    assert bucket.cuts == 0 and bucket.rate == bucket.max_rate
    assert engine.calls.on_cluster_modify_attempt(response=answer("ThrottlingException", 400)) is False
    # One throttle among ten answers: a 10 % cut, not the 4x of a bucket that saw nothing but refusals.
    assert bucket.cuts == 1 and bucket.rate == pytest.approx(0.9 * bucket.max_rate)


def test_executors_sharing_the_budget_launch_together_within_ecs_buckets(local_ecs, point_at, executors):
    """Two schedulers' executors with schedulers_sharing_budget=2 against ECS's own RunTask bucket
    (100 + 40/s): their halves add up to it, so launching both bursts at once is not throttled; each
    pacing for the whole bucket would send 200 calls into 100 tokens."""
    point_at(local_ecs.url, schedulers_sharing_budget="2", poll_interval="0.5")
    pair = [executors(parallelism=200), executors(parallelism=200)]
    for executor in pair:
        calls = engine_of(executor).calls
        assert (calls.run_bucket.max_rate, calls.run_bucket.burst) == (20.0, 50)
        assert (calls.describe_bucket.max_rate, calls.describe_bucket.burst) == (10.0, 50)
    local_ecs.configure(throttle=True)
    drivers = [Driver(executor) for executor in pair]
    keys = []
    for n, executor in enumerate(pair):
        workloads = [make_workload(f"share-{n}-{i:03d}") for i in range(100)]
        keys.append([w.ti.key for w in workloads])
        queue_all(executor, workloads)

    def both_launched() -> bool:
        drivers[1].beat()
        return all(launched(d, k) == len(k) for d, k in zip(drivers, keys, strict=True))

    drivers[0].until(both_launched, timeout=60, interval=0.1)
    assert all(d.summary().get("failed", []) == [] for d in drivers)
    throttled = local_ecs.stats()["faults"].get("bucket_throttle", 0)
    assert throttled <= 10, f"{throttled} RunTask calls throttled for 200 launches"
