"""Reading botocore's errors into our error kinds. The only module that imports botocore's exceptions.

(Provisional home: the AWS plumbing — session from the Airflow connection, client factories — joins it.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)

from ecs_executor.triage import (
    THROTTLING_CODES,
    Decision,
    Verdict,
    classify_api_error,
    classify_connection_error,
)


def error_code(exc: ClientError) -> tuple[str, str, int | None]:
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(err.get("Code", "Unknown")), str(err.get("Message", "")), status


def classify_exception(exc: BaseException) -> Decision:
    """Map anything an ECS call can raise to a triage verdict."""
    if isinstance(exc, ClientError):
        return classify_api_error(*error_code(exc))
    if isinstance(exc, NoCredentialsError):
        return classify_api_error("NoCredentials", str(exc))
    if isinstance(exc, (ParamValidationError, NoRegionError)):
        return Decision(Verdict.FAIL, f"invalid RunTask request: {exc}")
    if isinstance(exc, (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        return classify_connection_error(f"{type(exc).__name__}: {exc}")
    return Decision(Verdict.FAIL, f"unexpected error {type(exc).__name__}: {exc}")


def _parsed(response: Any) -> dict[str, Any] | None:
    """The parsed half of botocore's ``(http_response, parsed)`` needs-retry argument."""
    if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict):
        return response[1]
    return None


def throttled_response(response: Any) -> bool:
    parsed = _parsed(response)
    return parsed is not None and parsed.get("Error", {}).get("Code") in THROTTLING_CODES


def is_throttle(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc)[0] in THROTTLING_CODES


def may_have_been_applied(exc: BaseException) -> bool:
    """True when ECS may have acted on a request we got no usable answer for (lost reply, 5xx).

    Also when botocore retried before the final answer: an earlier attempt may have been the lost one.
    """
    if isinstance(exc, ClientError):
        metadata = exc.response.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode") or 0
        return int(status) >= 500 or int(metadata.get("RetryAttempts") or 0) > 0
    return not isinstance(exc, (NoCredentialsError, ParamValidationError, NoRegionError))
