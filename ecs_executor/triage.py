"""Decide what a failed ECS call or launch means for the task. Pure: error codes in, verdicts out.

Retrying the wrong things wastes Airflow tries (a bad parameter never heals); not retrying the right
things fails tasks that a second later would have run (throttling, capacity). The table lives here so
it is reviewed and unit-tested in one place.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from ecs_executor.states import Phase, TaskStatus


class Verdict(str, enum.Enum):
    """What to do after a failed launch."""

    RETRY = "retry"  # try again later; does not use up a launch attempt (throttling, 5xx, network)
    REFRESH_CREDENTIALS = "refresh_credentials"  # rebuild the client, then retry; no attempt used
    RELAUNCH = "relaunch"  # transient ECS-side failure: new launch attempt, with backoff
    FAIL = "fail"  # permanent: fail the Airflow task now with the reason


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
# Substrings of RunTask failures[].reason that clear up by themselves (capacity, agents).
_TRANSIENT_FAILURE_MARKERS = ("RESOURCE:", "AGENT", "Capacity is unavailable", "capacity", "ATTRIBUTE")
# Substrings of stoppedReason for a task that never started yet may on a second try.
_TRANSIENT_START_MARKERS = (
    "CannotPullContainerError",
    "ResourceInitializationError",
    "ResourceNotFoundException",  # secrets/params briefly missing during deploys
    "Timeout waiting for network interface",
    "ENI",
    "InsufficientFreeAddressesInSubnet",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "DockerTimeoutError",
    "TaskFailedToStart",
)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


def classify_api_error(code: str, message: str = "", http_status: int | None = None) -> Decision:
    """A ClientError (or connection problem) from RunTask."""
    text = f"{code}: {message}" if message else code
    if code in THROTTLING_CODES:
        return Decision(Verdict.RETRY, f"ECS throttled the call ({text})")
    if code in CREDENTIAL_CODES:
        return Decision(Verdict.REFRESH_CREDENTIALS, f"AWS credentials were rejected ({text})")
    if code in SERVER_CODES or (http_status is not None and http_status >= 500):
        return Decision(Verdict.RETRY, f"ECS server error ({text})")
    if code in PERMANENT_CODES or (http_status is not None and 400 <= http_status < 500):
        return Decision(Verdict.FAIL, f"ECS rejected RunTask: {text}")
    return Decision(Verdict.FAIL, f"ECS RunTask failed: {text}")


def classify_connection_error(detail: str) -> Decision:
    """No answer at all: the request may or may not have been applied; the clientToken makes retry safe."""
    return Decision(Verdict.RETRY, f"no answer from ECS ({detail})")


def classify_run_task_failure(reason: str, detail: str | None = None) -> Decision:
    """An entry of RunTask's ``failures[]`` (HTTP 200, no task started)."""
    text = f"{reason} ({detail})" if detail else reason
    if any(marker in reason for marker in _TRANSIENT_FAILURE_MARKERS):
        return Decision(Verdict.RELAUNCH, f"ECS could not place the task: {text}")
    return Decision(Verdict.FAIL, f"ECS refused to run the task: {text}")


def classify_stopped(status: TaskStatus) -> Decision | None:
    """A stopped task: relaunch only if the Airflow try never ran; None when it is not a failure."""
    if status.phase == Phase.FAILED_TO_START:
        if any(marker in status.reason for marker in _TRANSIENT_START_MARKERS):
            return Decision(Verdict.RELAUNCH, status.reason)
        return Decision(Verdict.FAIL, status.reason)
    if status.phase == Phase.FAILED:
        return Decision(Verdict.FAIL, status.reason)
    return None


def backoff_seconds(
    attempt: int, *, base: float = 2.0, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff before launch attempt ``attempt + 1``."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)
