"""Pure classifiers: task description -> phase/reason, and failure -> what to do."""

from __future__ import annotations

import random

import pytest

from ecs_executor.states import Phase, TaskStatus, task_status
from ecs_executor.triage import (
    Verdict,
    backoff_seconds,
    classify_api_error,
    classify_connection_error,
    classify_run_task_failure,
    classify_stopped,
)


def stopped(stop_code=None, exit_code=None, reason="", container_reason=None, name="w"):
    container = {"name": name, "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if container_reason:
        container["reason"] = container_reason
    task = {
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stoppedReason": reason,
        "containers": [container],
    }
    if stop_code:
        task["stopCode"] = stop_code
    return task


@pytest.mark.parametrize(
    ("task", "phase", "fragments"),
    [
        ({"lastStatus": "PROVISIONING", "desiredStatus": "RUNNING"}, Phase.PENDING, ["PROVISIONING"]),
        ({"lastStatus": "PENDING", "desiredStatus": "RUNNING"}, Phase.PENDING, ["PENDING"]),
        ({"lastStatus": "RUNNING", "desiredStatus": "RUNNING"}, Phase.RUNNING, []),
        ({"lastStatus": "RUNNING", "desiredStatus": "STOPPED"}, Phase.STOPPING, []),
        ({"lastStatus": "DEPROVISIONING", "desiredStatus": "STOPPED"}, Phase.STOPPING, ["DEPROVISIONING"]),
        (
            stopped("EssentialContainerExited", 0, "Essential container in task exited"),
            Phase.SUCCESS,
            ["exited with code 0"],
        ),
        (stopped("EssentialContainerExited", 1), Phase.FAILED, ["exited with code 1"]),
        (
            stopped(
                "EssentialContainerExited",
                137,
                container_reason="OutOfMemoryError: Container killed due to memory usage",
            ),
            Phase.FAILED,
            ["137", "out of memory", "OutOfMemoryError"],
        ),
        (stopped("EssentialContainerExited", 78), Phase.FAILED, ["version does not match"]),
        (stopped("EssentialContainerExited", 66), Phase.FAILED, ["could not sync DAGs"]),
        (
            stopped(
                "TaskFailedToStart", None, "CannotPullContainerError: pull image manifest has been retried"
            ),
            Phase.FAILED_TO_START,
            ["TaskFailedToStart", "CannotPullContainerError"],
        ),
        (
            stopped("UserInitiated", None, "Task stopped by user"),
            Phase.FAILED,
            ["UserInitiated", "no exit code"],
        ),
        (
            stopped("SpotInterruption", 143, "Your Spot Task was interrupted."),
            Phase.FAILED,
            ["SpotInterruption", "SIGTERM"],
        ),
        (stopped(None, None, "", name="other"), Phase.FAILED, ["no stop code"]),
    ],
)
def test_task_status(task, phase, fragments) -> None:
    status = task_status(task, "w")
    assert status.phase == phase
    for fragment in fragments:
        assert fragment in status.reason
    assert "\n" not in status.reason


def test_our_container_is_judged_not_a_sidecar() -> None:
    task = stopped("EssentialContainerExited", 0)
    task["containers"].insert(0, {"name": "sidecar", "exitCode": 1})
    assert task_status(task, "w").phase == Phase.SUCCESS


@pytest.mark.parametrize(
    ("code", "status", "verdict"),
    [
        ("ThrottlingException", 400, Verdict.RETRY),
        ("RequestLimitExceeded", 400, Verdict.RETRY),
        ("ServerException", 500, Verdict.RETRY),
        ("Whatever", 503, Verdict.RETRY),
        ("ExpiredTokenException", 400, Verdict.REFRESH_CREDENTIALS),
        ("InvalidClientTokenId", 403, Verdict.REFRESH_CREDENTIALS),
        ("UnrecognizedClientException", 400, Verdict.REFRESH_CREDENTIALS),
        ("NoCredentials", None, Verdict.REFRESH_CREDENTIALS),
        ("InvalidParameterException", 400, Verdict.FAIL),
        ("ClientException", 400, Verdict.FAIL),
        ("AccessDeniedException", 400, Verdict.FAIL),
        ("ClusterNotFoundException", 400, Verdict.FAIL),
        ("PlatformUnknownException", 400, Verdict.FAIL),
    ],
)
def test_api_error_table(code, status, verdict) -> None:
    decision = classify_api_error(code, "msg", status)
    assert decision.verdict == verdict
    assert code in decision.reason


def test_connection_errors_are_retried() -> None:
    assert classify_connection_error("reset").verdict == Verdict.RETRY


@pytest.mark.parametrize(
    ("reason", "verdict"),
    [
        ("RESOURCE:MEMORY", Verdict.RELAUNCH),
        ("RESOURCE:CPU", Verdict.RELAUNCH),
        ("AGENT", Verdict.RELAUNCH),
        (
            "Capacity is unavailable at this time. Please try again later",
            Verdict.RELAUNCH,
        ),
        ("MISSING", Verdict.FAIL),
        ("INACTIVE", Verdict.FAIL),
    ],
)
def test_run_task_failure_table(reason, verdict) -> None:
    assert classify_run_task_failure(reason).verdict == verdict


def test_stopped_triage() -> None:
    pull = TaskStatus(
        Phase.FAILED_TO_START, "ECS task stopped (TaskFailedToStart); CannotPullContainerError: i/o timeout"
    )
    assert classify_stopped(pull).verdict == Verdict.RELAUNCH
    eni = TaskStatus(Phase.FAILED_TO_START, "Timeout waiting for network interface provisioning to complete.")
    assert classify_stopped(eni).verdict == Verdict.RELAUNCH
    weird = TaskStatus(Phase.FAILED_TO_START, "something unknown")
    assert classify_stopped(weird).verdict == Verdict.FAIL
    oom = TaskStatus(Phase.FAILED, "exited with code 137", 137)
    assert classify_stopped(oom).verdict == Verdict.FAIL  # it ran: Airflow's retries decide
    assert classify_stopped(TaskStatus(Phase.SUCCESS)) is None


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    values = [backoff_seconds(n, rng=rng) for n in range(1, 8)]
    assert 1.0 <= values[0] <= 2.0
    assert 4.0 <= values[2] <= 8.0
    assert all(v <= 60.0 for v in values)
    assert backoff_seconds(100, rng=rng) >= 30.0
