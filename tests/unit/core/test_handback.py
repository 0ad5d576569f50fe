"""A try that handed itself back to Airflow (rescheduled, deferred) before its container exited: the rule
(pure) and what the facade does with such an end, with Airflow's own failing of a try beside it."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor import messages as m
from ecs_executor.core.handback import handed_back
from ecs_executor.core.task_status import Phase, TaskStatus
from tests.conftest import make_workload

ARN = "arn:aws:ecs:us-east-1:123456789012:task/main/0123456789abcdef0123456789abcdef"
OTHER_ARN = "arn:aws:ecs:us-east-1:123456789012:task/main/fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize(
    ("db_state", "db_try", "expected"),
    [
        ("up_for_reschedule", 1, "up_for_reschedule"),  # a reschedule-mode sensor's poke
        ("deferred", 1, "deferred"),
        ("scheduled", 1, "scheduled"),  # Airflow already moved it on: a report would fail it
        ("queued", 1, None),  # the worker never ran the try: reported, so Airflow fails it
        ("running", 1, None),  # ended without telling Airflow: reported
        ("success", 1, None),  # finished: the report is harmless
        ("failed", 1, None),
        (None, 1, None),
        ("scheduled", 2, None),  # a later try: not ours to judge
        ("up_for_reschedule", 2, None),
    ],
)
def test_which_db_states_mean_the_try_handed_itself_back(db_state: Any, db_try: int, expected: Any) -> None:
    key = make_workload("t", try_number=1).ti.key
    assert handed_back(key, db_state, db_try) == expected


def test_keys_without_a_try_number_are_never_handed_back() -> None:
    assert handed_back("callback-key", "scheduled", 1) is None


@pytest.fixture
def executor() -> Any:
    """A facade without an engine: results are put on its channel as the engine would."""
    from ecs_executor import EcsExecutor

    return EcsExecutor(parallelism=4)


def _running(executor: Any, arn: str = ARN) -> Any:
    key = make_workload("t").ti.key
    executor.running.add(key)
    executor._arns[key] = arn
    return key


def _end(executor: Any, key: Any, arn: str = ARN, back: str | None = None) -> None:
    status = TaskStatus(Phase.SUCCESS, "container exited with code 0", 0, "EssentialContainerExited", False)
    executor._channel.put_result(m.StateChanged(key, arn, status, back))
    executor._process_results()


def test_a_handed_back_end_frees_the_slot_and_reports_nothing(executor: Any) -> None:
    key = _running(executor)
    _end(executor, key, back="up_for_reschedule")
    assert key not in executor.running
    assert key not in executor.event_buffer


def test_an_ordinary_end_is_reported(executor: Any) -> None:
    from airflow.utils.state import TaskInstanceState

    key = _running(executor)
    _end(executor, key)
    assert executor.event_buffer[key][0] == TaskInstanceState.SUCCESS


def test_an_end_of_an_ecs_task_the_try_no_longer_runs_in_is_dropped(executor: Any) -> None:
    key = _running(executor, arn=OTHER_ARN)  # Airflow queued the try again; a new ECS task answers for it
    _end(executor, key, arn=ARN)
    assert key in executor.running and key not in executor.event_buffer


def test_airflow_failing_a_try_itself_stops_its_ecs_task(executor: Any) -> None:
    """The scheduler's purge of tries without heartbeats calls change_state(FAILED, remove_running=True)."""
    from airflow.utils.state import TaskInstanceState

    key = _running(executor)
    executor.change_state(key, TaskInstanceState.FAILED, remove_running=True)
    (stop,) = executor._channel.drain_commands()
    assert isinstance(stop, m.Stop) and stop.key == key and "heartbeat" in stop.reason
    assert key not in executor.running and key not in executor._arns
    assert executor.event_buffer[key][0] == TaskInstanceState.FAILED
    (logged,) = list(executor._task_event_logs)
    assert ARN in str(logged)


def test_our_own_failure_report_stops_nothing(executor: Any) -> None:
    key = _running(executor)
    failed = TaskStatus(Phase.FAILED, "container exited with code 1", 1, "EssentialContainerExited")
    executor._channel.put_result(m.StateChanged(key, ARN, failed))
    executor._process_results()
    assert not executor._channel.drain_commands()
    assert key not in executor.running
