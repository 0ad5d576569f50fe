"""The facade's side of the result queues: a try's end never waits behind notices, every per-key order
the facade relies on still holds, and a backlog of queued workloads is admitted a bounded share per
heartbeat.

The result tests drive a facade without an engine: results are put on its real channel as the engine puts
them (``Channel.put_result``), and ``heartbeat()`` is the scheduler's."""

from __future__ import annotations

from typing import Any

import pytest
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


@pytest.fixture
def executor() -> Any:
    from ecs_executor import EcsExecutor

    return EcsExecutor(parallelism=20_000)


@pytest.fixture
def end(executor: Any) -> EngineEnd:
    """The engine's end of the facade's channel: results are sent as the engine sends them."""
    return EngineEnd(executor)


def beat(executor: Any) -> dict[Any, tuple[Any, Any]]:
    executor.heartbeat()
    return executor.get_event_buffer()


def test_a_final_state_behind_ten_thousand_notices_reaches_the_event_buffer_at_the_first_heartbeat(
    executor: Any, end: EngineEnd
) -> None:
    for i in range(10_001):
        executor.running.add(key(i))
    for i in range(10_000):
        end.send(m.Launched(key(i), arn(i), 1))
    executor.try_adopt_task_instances([FakeTI(key(10_000), arn(10_000))])
    end.send(ended(key(10_000), arn(10_000)))

    events = beat(executor)

    assert events[key(10_000)] == (SUCCESS, arn(10_000))
    assert sum(state == RUNNING for state, _ in events.values()) == NOTICES_PER_BEAT  # notices stay bounded
    assert key(10_000) not in executor.running
    # The rest of the notices follow, a bounded share per heartbeat, in order.
    reported = [k for k in events if k != key(10_000)]
    for _ in range(10_000 // NOTICES_PER_BEAT - 1):
        reported += list(beat(executor))
    assert reported == [key(i) for i in range(10_000)]


def test_a_launched_overtaken_by_its_own_final_is_ignored(executor: Any, end: EngineEnd) -> None:
    """The try ended before the facade applied its Launched: it is reported once, and the late Launched does
    not put it back into ``running`` or the event buffer."""
    for i in range(NOTICES_PER_BEAT + 1):
        executor.running.add(key(i))
    for i in range(NOTICES_PER_BEAT):
        end.send(running(key(i), arn(i)))
    late = key(NOTICES_PER_BEAT)
    end.send(m.Launched(late, arn(99_999), 1))
    end.send(ended(late, arn(99_999)))

    first = beat(executor)
    second = beat(executor)

    assert first[late] == (SUCCESS, arn(99_999))
    assert late not in second and late not in executor.running and view(executor).arn(late) is None


def test_a_relaunched_trys_final_waits_for_its_relaunching_and_launched(
    executor: Any, end: EngineEnd
) -> None:
    """The facade knows the try by its first ECS task; the final is about the relaunched one. It is applied
    once the notices sent before it (Relaunching, the new Launched) are: never dropped as another task's."""
    k = key(0)
    executor.running.add(k)
    end.send(m.Launched(k, arn(1), 1))
    assert beat(executor)[k] == (RUNNING, arn(1))
    others = [key(i) for i in range(1, NOTICES_PER_BEAT + 1)]
    for i, other in enumerate(others, start=1):
        executor.running.add(other)
        end.send(running(other, arn(1000 + i)))
    end.send(m.Relaunching(k, "capacity", 2, 0.0))
    end.send(m.Launched(k, arn(2), 2))
    end.send(ended(k, arn(2)))

    first = beat(executor)  # the notices before the final are not all applied yet: it waits
    assert k not in first and k in executor.running
    second = beat(executor)

    assert second[k] == (SUCCESS, arn(2))
    assert k not in executor.running and view(executor).parked == ()


def test_the_end_of_an_ecs_task_the_try_no_longer_runs_in_is_dropped_after_the_notices_before_it(
    executor: Any, end: EngineEnd
) -> None:
    k = key(0)
    executor.running.add(k)
    end.send(m.Launched(k, arn(1), 1))
    end.send(m.Relaunching(k, "capacity", 2, 0.0))
    end.send(m.Launched(k, arn(2), 2))
    beat(executor)
    end.send(ended(k, arn(1)))  # about the first task, which is gone

    assert k not in beat(executor) and k in executor.running


def test_finals_of_other_keys_do_not_wait_behind_a_parked_one(executor: Any, end: EngineEnd) -> None:
    parked, other = key(0), key(1)
    for k in (parked, other):
        executor.running.add(k)
    executor.try_adopt_task_instances([FakeTI(parked, arn(1)), FakeTI(other, arn(3))])
    for i in range(2, NOTICES_PER_BEAT + 2):
        end.send(running(key(i), arn(i)))  # not running: ignored, but in the way
    end.send(m.Relaunching(parked, "capacity", 2, 0.0))
    end.send(m.Launched(parked, arn(2), 2))
    end.send(ended(parked, arn(2)))
    end.send(ended(other, arn(3)))

    first = beat(executor)

    assert first[other] == (SUCCESS, arn(3)) and parked not in first
    assert beat(executor)[parked] == (SUCCESS, arn(2))


# ---- with an engine: re-queueing and admission ---------------------------------------------------------


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


def test_the_channel_keeps_finals_apart_and_numbers_every_result_in_the_order_sent() -> None:
    channel = m.Channel()
    sent = [
        m.Launched(key(0), arn(0), 1),
        running(key(0), arn(0)),
        m.LaunchFailed(key(1), "no capacity"),
        m.Relaunching(key(2), "capacity", 2, 1.0),
        ended(key(0), arn(0)),
        m.AdoptionFailed(key(3), arn(3), "MISSING"),
        m.EngineNote("warning", "slow"),
    ]
    for result in sent:
        channel.put_result(result)
    mark = m.next_sequence()

    finals, notices = channel.take(None, None)

    assert [r for _, r in finals] == [sent[2], sent[4], sent[5]]
    assert [r for _, r in notices] == [sent[0], sent[1], sent[3], sent[6]]
    numbers = sorted(seq for seq, _ in finals + notices)
    assert [r for _, r in sorted(finals + notices, key=lambda item: item[0])] == sent
    assert numbers[-1] < mark and len(set(numbers)) == len(sent)
    for result in sent:
        channel.put_result(result)
    assert channel.drain_results() == sent and not channel.has_results()
