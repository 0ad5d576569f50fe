"""messages.py: the channel between the scheduler thread and the engine thread."""

from __future__ import annotations

from typing import Any

from airflow.models.taskinstancekey import TaskInstanceKey

from ecs_executor import messages as m
from ecs_executor.core.task_status import Phase, TaskStatus


def try_key(i: int) -> TaskInstanceKey:
    return TaskInstanceKey("dag", f"t{i}", "run", 1, -1)


def task_arn(i: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/main/{i:032x}"


def ended(key: Any, arn: str) -> m.StateChanged:
    return m.StateChanged(
        key, arn, TaskStatus(Phase.SUCCESS, "container exited with code 0", 0, "EssentialContainerExited")
    )


def running_notice(key: Any, arn: str) -> m.StateChanged:
    return m.StateChanged(key, arn, TaskStatus(Phase.RUNNING, "running"))


def test_the_channel_keeps_finals_apart_and_numbers_every_result_in_the_order_sent() -> None:
    channel = m.Channel()
    sent: list[m.Result] = [
        m.Launched(try_key(0), task_arn(0), 1),
        running_notice(try_key(0), task_arn(0)),
        m.LaunchFailed(try_key(1), "no capacity"),
        m.Relaunching(try_key(2), "capacity", 2, 1.0),
        ended(try_key(0), task_arn(0)),
        m.AdoptionFailed(try_key(3), task_arn(3), "MISSING"),
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


def test_a_launch_is_a_task_event_after_a_relaunch_or_on_a_fallback_only() -> None:
    assert m.Launched("k", "arn:t", 1).task_event() is None  # the first attempt on its own target: as before
    assert m.Launched("k", "arn:t", 2).task_event() == ("ECS task launched", "arn:t (launch attempt 2)")
    on_fallback = m.Launched("k", "arn:t", 1, "FARGATE (fallback: the Spot task was interrupted)")
    assert on_fallback.task_event() == (
        "ECS task launched",
        "arn:t on FARGATE (fallback: the Spot task was interrupted) (launch attempt 1)",
    )
