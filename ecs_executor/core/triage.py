"""Decide what a failed ECS call or launch means for the try. Pure: error codes in, verdicts out.

Retrying the wrong things wastes launch attempts and time (a bad parameter never heals); not retrying the
right things fails tries that a second later would have run (throttling, capacity). The table lives here
so it is reviewed and unit-tested in one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ecs_executor.core.relaunch import FailureKind
from ecs_executor.core.task_status import Phase, TaskStatus


class Verdict(str, enum.Enum):
    """What to do after a failed launch."""

    RETRY = "retry"  # try again later; does not use up a launch attempt (throttling, 5xx, network)
    REFRESH_CREDENTIALS = "refresh_credentials"  # rebuild the client, then retry; no attempt used
    RELAUNCH = "relaunch"  # transient ECS-side failure: new launch attempt, with backoff
    FAIL = "fail"  # permanent: fail the try now with the reason


THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "RequestExpired",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "NoCredentials",  # botocore NoCredentialsError, mapped by the engine
    }
)
SERVER_CODES = frozenset({"ServerException", "InternalFailure", "ServiceUnavailable", "InternalError"})
PERMANENT_CODES = frozenset(
    {
        "InvalidParameterException",
        "ClientException",  # e.g. "Unable to find task definition"
        "AccessDeniedException",
        "ClusterNotFoundException",
        "PlatformUnknownException",
        "PlatformTaskDefinitionIncompatibilityException",
        "UnsupportedFeatureException",
        "ValidationException",
        "BlockedException",
        "ConflictException",
    }
)
# Substrings of RunTask failures[].reason (or a ClientException message) meaning "no room yet": cluster auto
# scaling or Fargate capacity comes back within minutes.
_CAPACITY_MARKERS = (
    "RESOURCE:",
    "Capacity is unavailable",
    "No Container Instances",
    "AGENT",
    "ATTRIBUTE",
    "capacity",
)
# The same, as an exception's message: narrower, since a ClientException is usually a permanent mistake.
_CAPACITY_ERROR_MARKERS = (
    "capacity limit exceeded",  # "Tasks provisioning capacity limit exceeded."
    "Capacity is unavailable",
    "No Container Instances",
)
# A task that stopped before its container started (stopCode TaskFailedToStart): these reasons will
# never heal on their own, so relaunching only burns time and money.
_PERMANENT_START_MARKERS = (
    "not found",  # CannotPullContainerError: ... : not found (no such image or tag)
    "manifest unknown",
    "repository does not exist",
    "pull access denied",
    "access denied",
    "AccessDenied",
    "403 Forbidden",
    "unauthorized",
    "invalid reference format",
    "ParameterNotFound",
    "InvalidParameter",
    "ResourceNotFoundException",  # secret or parameter ARN that does not exist
    "ValidationException",
    "KMS key",
)
# ...unless the failure was throttling or a timeout somewhere along the way, which does heal.
_TRANSIENT_OVERRIDES = ("ThrottlingException", "Rate exceeded", "TooManyRequests", "i/o timeout", "timed out")
# Reasons a task that never started may well start on the next launch attempt. Anything else: not relaunched.
_TRANSIENT_START_MARKERS = (
    "CannotPullContainerError",  # registry i/o, once the permanent cases above are ruled out
    "ResourceInitializationError",  # ENI, secrets or logs set-up; throttled or timed out
    "Timeout waiting for network interface",
    "ENI",
    "InsufficientFreeAddressesInSubnet",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "DockerTimeoutError",
    "Host EC2",  # "Host EC2 (instance i-...) terminated.": the host was lost before the container started
    *_TRANSIENT_OVERRIDES,
)
SPOT_INTERRUPTION = "SpotInterruption"
# The two-minute warning's stop code; Spot's only when stoppedReason says so (docs.aws.amazon.com
# AmazonECS/latest/developerguide/fargate-capacity-providers.html, "Handling Fargate Spot termination
# notices": stopCode TerminationNotice, stoppedReason "Your Spot Task was interrupted.").
TERMINATION_NOTICE = "TerminationNotice"
SPOT_INTERRUPTED_REASON = "Your Spot Task was interrupted"


def is_spot_interruption(status: TaskStatus) -> bool:
    """Spot took the task's capacity: stopCode SpotInterruption, or TerminationNotice for Spot."""
    if status.stop_code == SPOT_INTERRUPTION:
        return True
    return status.stop_code == TERMINATION_NOTICE and SPOT_INTERRUPTED_REASON in status.reason


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    kind: FailureKind = FailureKind.START  # which relaunch budget a RELAUNCH spends


def classify_api_error(code: str, message: str = "", http_status: int | None = None) -> Decision:
    """A ClientError (or connection problem) from RunTask."""
    text = f"{code}: {message}" if message else code
    if code in THROTTLING_CODES:
        return Decision(Verdict.RETRY, f"ECS throttled the call ({text})")
    if code in CREDENTIAL_CODES:
        return Decision(Verdict.REFRESH_CREDENTIALS, f"AWS credentials were rejected ({text})")
    if code in SERVER_CODES or (http_status is not None and http_status >= 500):
        return Decision(Verdict.RETRY, f"ECS server error ({text})")
    if code == "ClientException" and any(marker in message for marker in _CAPACITY_ERROR_MARKERS):
        return Decision(
            Verdict.RELAUNCH, f"ECS has no capacity for the task yet ({text})", FailureKind.CAPACITY
        )
    if code in PERMANENT_CODES or (http_status is not None and 400 <= http_status < 500):
        return Decision(Verdict.FAIL, f"ECS rejected RunTask: {text}")
    return Decision(Verdict.FAIL, f"ECS RunTask failed: {text}")


def classify_connection_error(detail: str) -> Decision:
    """No answer at all: the request may or may not have been applied; the clientToken makes retry safe."""
    return Decision(Verdict.RETRY, f"no answer from ECS ({detail})")


def _is_capacity(text: str) -> bool:
    return any(marker in text for marker in _CAPACITY_MARKERS)


def classify_run_task_failure(reason: str, detail: str | None = None) -> Decision:
    """An entry of RunTask's ``failures[]`` (HTTP 200, no task started)."""
    text = f"{reason} ({detail})" if detail else reason
    if _is_capacity(reason):
        return Decision(Verdict.RELAUNCH, f"ECS could not place the task: {text}", FailureKind.CAPACITY)
    return Decision(Verdict.FAIL, f"ECS refused to run the task: {text}")


def classify_stopped(status: TaskStatus, *, relaunch_spot: bool = False) -> Decision | None:
    """A stopped task: relaunch only if the Airflow try never ran, or (opted in) Spot took its capacity;
    the tracker still never relaunches a try it saw running.

    None when it is not a failure.
    """
    if is_spot_interruption(status) and status.phase != Phase.SUCCESS:
        reason = f"interrupted by Spot ({status.stop_code}): {status.reason}"
        if relaunch_spot:
            return Decision(Verdict.RELAUNCH, reason, FailureKind.SPOT)
        return Decision(Verdict.FAIL, reason, FailureKind.SPOT)
    if status.phase == Phase.FAILED_TO_START:
        reason = status.reason
        transient_cause = any(marker in reason for marker in _TRANSIENT_OVERRIDES)
        if any(marker in reason for marker in _PERMANENT_START_MARKERS) and not transient_cause:
            return Decision(Verdict.FAIL, f"{reason} (will not heal by itself: not relaunched)")
        if any(marker in reason for marker in _TRANSIENT_START_MARKERS):
            return Decision(Verdict.RELAUNCH, reason, FailureKind.START)
        return Decision(Verdict.FAIL, reason)
    if status.phase == Phase.FAILED:
        return Decision(Verdict.FAIL, status.reason)
    return None
