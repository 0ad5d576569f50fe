"""Pure: an ECS task description -> the phase and one-line reason the executor reports."""

from __future__ import annotations

import pytest

from ecs_executor.core.task_status import Phase, task_status


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


@pytest.mark.parametrize("last", ["RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"])
def test_the_verdict_comes_at_the_containers_exit_before_stopped(last: str) -> None:
    task = {
        "lastStatus": last,
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [{"name": "w", "lastStatus": "STOPPED", "exitCode": 3}],
    }
    status = task_status(task, "w")
    assert status.phase == Phase.FAILED and status.exit_code == 3 and not status.task_stopped
    assert last in status.reason and "exited with code 3" in status.reason
    task["containers"][0]["exitCode"] = 0
    assert task_status(task, "w").phase == Phase.SUCCESS


def test_an_exit_code_of_a_container_still_running_is_not_an_exit() -> None:
    """Only a STOPPED container's exit code counts (moto shows exitCode 0 on running containers)."""
    task = {
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "containers": [{"name": "w", "lastStatus": "RUNNING", "exitCode": 0}],
    }
    assert task_status(task, "w").phase == Phase.RUNNING
    task.update(lastStatus="DEACTIVATING", desiredStatus="STOPPED")
    assert task_status(task, "w").phase == Phase.STOPPING


def test_a_stopped_task_is_judged_stopped() -> None:
    assert task_status(stopped("EssentialContainerExited", 0), "w").task_stopped


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (81, "disabled, pending deletion, not found or unavailable"),
        (82, "task role may not decrypt"),
        (83, "does not authenticate for this try"),
        (84, "not a readable sealed workload"),
        (85, "no answer from KMS"),
    ],
)
def test_the_worker_s_exit_codes_fail_the_try_with_their_meaning_and_are_not_relaunched(
    code, meaning
) -> None:
    """ecs_executor.worker's refusals: the try never ran, and it is reported failed, never relaunched."""
    from ecs_executor.core.triage import Verdict, classify_stopped

    status = task_status(stopped("EssentialContainerExited", code), "w")
    assert status.phase == Phase.FAILED
    assert f"exited with code {code}: " in status.reason and meaning in status.reason
    decision = classify_stopped(status, relaunch_spot=True)
    assert decision is not None and decision.verdict == Verdict.FAIL
