"""The facade with a real engine against the local ECS endpoint: a try queued again before its previous
Launched was applied, and a backlog of queued workloads admitted a bounded share per heartbeat.

The order the facade applies results in, engine-free, is in tests/unit/test_executor.py."""

from __future__ import annotations

from typing import Any

from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from ecs_executor import executor as executor_module
from ecs_executor import messages as m
from ecs_executor.core.task_status import Phase, TaskStatus
from ecs_executor.facade.admission import MAX_ADMITTED_PER_HEARTBEAT
from tests.conftest import Driver, make_workload
from tests.support.executor_view import EngineEnd, arns, view
from tests.support.fault_helpers import FakeTI

RUNNING, SUCCESS = TaskInstanceState.RUNNING, TaskInstanceState.SUCCESS
NOTICES_PER_BEAT = executor_module.MAX_RESULTS_PER_SYNC


def arn(i: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/main/{i:032x}"


def key(i: int) -> TaskInstanceKey:
    return TaskInstanceKey("dag", f"t{i}", "run", 1, -1)


def ended(k: Any, task_arn: str) -> m.StateChanged:
    return m.StateChanged(
        k, task_arn, TaskStatus(Phase.SUCCESS, "container exited with code 0", 0, "EssentialContainerExited")
    )


def running(k: Any, task_arn: str) -> m.StateChanged:
    return m.StateChanged(k, task_arn, TaskStatus(Phase.RUNNING, "running"))


def test_a_try_queued_again_before_its_previous_launched_was_applied(local_ecs, point_at, executors) -> None:
    """The previous queueing's Launched waits behind notices when Airflow queues the try again; that ECS
    task's end, sent after the re-queue, must not end the new queueing."""
    point_at(local_ecs.url, poll_interval="0.2")
    executor = executors()
    driver = Driver(executor)
    first = make_workload("again")
    k = first.ti.key
    executor.queue_workload(first, session=None)
    executor.trigger_tasks(executor.parallelism)  # the Launch goes out; no heartbeat applies results yet
    end = EngineEnd(executor)
    driver_wait(end.has_notices)
    old = end.take_notice()
    assert isinstance(old, m.Launched) and old.key == k
    # Sent again behind a backlog of notices (about keys not running here: ignored, but in the way).
    for i in range(1, NOTICES_PER_BEAT + 1):
        end.send(running(key(i), arn(i)))
    end.send(old)
    local_ecs.configure(latency_ms=2000)  # the new queueing's Launched comes after all of that
    executor.queue_workload(make_workload("again"), session=None)
    executor.trigger_tasks(executor.parallelism)
    assert view(executor).superseded[k] == executor_module.UNANNOUNCED
    # The previous ECS task's end, decided just before the re-queue reached the engine.
    end.send(ended(k, old.task_arn))
    driver.until(lambda: arns(executor).get(k, old.task_arn) != old.task_arn, timeout=30)
    local_ecs.configure(latency_ms=0)

    assert k in executor.running and view(executor).parked == ()
    assert all(state != SUCCESS for state, _ in driver.events.get(k, []))
    new_arn = arns(executor)[k]
    local_ecs.finish_task(new_arn, 0)
    driver.until(lambda: k in driver.final_states(), timeout=30)
    assert driver.events[k][-1] == (SUCCESS, new_arn)


def driver_wait(predicate: Any, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_backlog_is_admitted_a_bounded_share_per_heartbeat(local_ecs, point_at, executors) -> None:
    """10,000 queued at once with a RunTask bucket that would start them all: each heartbeat takes at most
    MAX_ADMITTED_PER_HEARTBEAT, highest priority first; the rest stays queued for the scheduler."""
    point_at(local_ecs.url, run_task_burst="20000", run_task_rate="1000")
    executor = executors(parallelism=20_000)
    workloads = [make_workload(f"w{i}") for i in range(10_000)]
    revoked, *urgent = workloads[-4:]
    for w in (revoked, *urgent):
        w.ti.priority_weight = 10
    for w in workloads:
        executor.queue_workload(w, session=None)
    executor.revoke_task(ti=FakeTI(revoked.ti.key, None))  # no longer queued: never admitted
    bound = MAX_ADMITTED_PER_HEARTBEAT

    executor.heartbeat()

    assert len(executor.running) == bound and len(executor.queued_tasks) == 9_999 - bound
    assert {w.ti.key for w in urgent} <= executor.running and revoked.ti.key not in executor.running
    assert [k.task_id for k in view(executor).queued_order[3:]] == [f"w{i}" for i in range(bound - 3)]
    executor.heartbeat()
    assert len(executor.running) == 2 * bound
    assert [k.task_id for k in view(executor).queued_order[bound:]] == [
        f"w{i}" for i in range(bound - 3, 2 * bound - 3)
    ]
