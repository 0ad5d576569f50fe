"""Pure: a failed call, placement or start -> retry, refresh, relaunch (which budget) or fail."""

from __future__ import annotations

import pytest

from ecs_executor.core.relaunch import FailureKind
from ecs_executor.core.task_status import Phase, TaskStatus
from ecs_executor.core.triage import (
    Verdict,
    classify_api_error,
    classify_connection_error,
    classify_run_task_failure,
    classify_stopped,
)


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


def test_capacity_errors_are_relaunched_on_the_capacity_budget() -> None:
    limit = classify_api_error("ClientException", "Tasks provisioning capacity limit exceeded.", 400)
    assert (limit.verdict, limit.kind) == (Verdict.RELAUNCH, FailureKind.CAPACITY)
    # Other ClientExceptions are mistakes that never heal.
    missing = classify_api_error("ClientException", "Unable to find task definition 'x'", 400)
    assert missing.verdict == Verdict.FAIL
    for reason in ("RESOURCE:MEMORY", "Capacity is unavailable at this time.", "AGENT"):
        decision = classify_run_task_failure(reason)
        assert (decision.verdict, decision.kind) == (Verdict.RELAUNCH, FailureKind.CAPACITY)


def _failed_to_start(reason: str) -> TaskStatus:
    return TaskStatus(
        Phase.FAILED_TO_START, f"ECS task stopped (TaskFailedToStart); {reason}", None, "TaskFailedToStart"
    )


@pytest.mark.parametrize(
    ("reason", "verdict"),
    [
        # Will never heal: fail at once with the reason.
        (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
            "docker.io/acme/worker:nope: docker.io/acme/worker:nope: not found",
            Verdict.FAIL,
        ),
        (
            "CannotPullContainerError: pull access denied for acme/worker, repository does not exist",
            Verdict.FAIL,
        ),
        (
            "CannotPullContainerError: ... unexpected status code https://123.dkr.ecr...: 403 Forbidden",
            Verdict.FAIL,
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: ... ParameterNotFound",
            Verdict.FAIL,
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
            "retrieval failed: unable to retrieve secret from asm: AccessDeniedException: not authorized",
            Verdict.FAIL,
        ),
        ("something nobody has seen before", Verdict.FAIL),
        # Heals: relaunch.
        ("CannotPullContainerError: failed to copy: httpReadSeeker: read: i/o timeout", Verdict.RELAUNCH),
        ("Timeout waiting for network interface provisioning to complete.", Verdict.RELAUNCH),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: ... ThrottlingException: "
            "Rate exceeded",
            Verdict.RELAUNCH,
        ),
        ("ResourceInitializationError: failed to configure ENI", Verdict.RELAUNCH),
        ("Host EC2 (instance i-0123456789abcdef0) terminated.", Verdict.RELAUNCH),
    ],
)
def test_failed_to_start_triage(reason: str, verdict: Verdict) -> None:
    decision = classify_stopped(_failed_to_start(reason))
    assert decision is not None and decision.verdict == verdict
    assert reason[:40] in decision.reason


def test_a_task_that_ran_is_never_relaunched() -> None:
    oom = TaskStatus(Phase.FAILED, "exited with code 137", 137)
    decision = classify_stopped(oom)
    assert decision is not None and decision.verdict == Verdict.FAIL  # Airflow's retries decide
    assert classify_stopped(TaskStatus(Phase.SUCCESS)) is None


def test_spot_interruption_is_named_and_relaunched_only_when_opted_in() -> None:
    spot = TaskStatus(
        Phase.FAILED,
        "ECS task stopped (SpotInterruption); Your Spot Task was interrupted.",
        143,
        "SpotInterruption",
    )
    default = classify_stopped(spot)
    assert default is not None and (default.verdict, default.kind) == (Verdict.FAIL, FailureKind.SPOT)
    assert "interrupted by Spot" in default.reason
    opted = classify_stopped(spot, relaunch_spot=True)
    assert opted is not None and (opted.verdict, opted.kind) == (Verdict.RELAUNCH, FailureKind.SPOT)
    finished = TaskStatus(Phase.SUCCESS, "exited 0", 0, "SpotInterruption")
    assert classify_stopped(finished, relaunch_spot=True) is None  # it had finished its work


def test_a_spot_termination_notice_is_a_spot_interruption() -> None:
    """The two-minute warning's stop code (AWS's example event) counts as Spot only with Spot's reason."""
    notice = TaskStatus(
        Phase.FAILED,
        "ECS task stopped (TerminationNotice); Your Spot Task was interrupted.",
        143,
        "TerminationNotice",
    )
    decision = classify_stopped(notice, relaunch_spot=True)
    assert decision is not None and (decision.verdict, decision.kind) == (Verdict.RELAUNCH, FailureKind.SPOT)
    assert "interrupted by Spot (TerminationNotice)" in decision.reason
    other = TaskStatus(
        Phase.FAILED, "ECS task stopped (TerminationNotice); host retired", 143, "TerminationNotice"
    )
    decision = classify_stopped(other, relaunch_spot=True)
    assert decision is not None and (decision.verdict, decision.kind) == (Verdict.FAIL, FailureKind.START)
