"""Unwrap, open, check, exec: the sealed workload's way from the container's command to Airflow's runner.

Every failure ends the container with its own exit code (``core/task_status.py``) and one line on stderr
naming the reason and what to do; the try never ran, and the executor reports the failure to Airflow
(a non-zero exit is never relaunched). No line carries the workload, its token or the data key: the
lines hold KMS's error code and message, botocore's connection error, or a fixed text.

Network: one KMS Decrypt (with botocore's retries), nothing else. botocore finds the Region
(``AWS_REGION``, which ECS sets in every task, else ``AWS_DEFAULT_REGION``), the task role's
credentials and the endpoint (``AWS_ENDPOINT_URL_KMS`` or ``AWS_ENDPOINT_URL``) as in any AWS SDK.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from ecs_executor.core.envelope import (
    KMS_CONTEXT,
    WORKLOAD_COMMAND,
    ContextMismatch,
    CorruptEnvelope,
    identity_matches,
    open_sealed,
    parse,
)
from ecs_executor.core.task_status import (
    EXIT_CONTEXT_MISMATCH,
    EXIT_ENVELOPE_CORRUPT,
    EXIT_KMS_ACCESS_DENIED,
    EXIT_KMS_KEY_UNUSABLE,
    EXIT_KMS_UNREACHABLE,
)

PREFIX = "ecs_executor: cannot open the sealed workload: "
EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND = 126, 127  # as entrypoint.sh reports them
# Decrypt's errors in botocore's KMS service model, and the ones every AWS API may answer, by exit code.
# Throttling and KMS's own 5xx (KMSInternalException, DependencyTimeoutException) reach us only after
# botocore's retries: "no answer" (85), as is any code not listed.
_CODES: Mapping[str, int] = {
    **dict.fromkeys(
        (
            "DisabledException",  # the key is disabled
            "KMSInvalidStateException",  # pending deletion (or import, or an unusable custom key store)
            "NotFoundException",
            "KeyUnavailableException",  # a custom key store's key, disconnected
            "InvalidKeyUsageException",  # not a symmetric encrypt/decrypt key
        ),
        EXIT_KMS_KEY_UNUSABLE,
    ),
    **dict.fromkeys(
        (
            "AccessDeniedException",  # a policy, or the ecs-executor:purpose condition
            "InvalidGrantTokenException",
            "UnrecognizedClientException",  # credentials KMS does not know, or expired ones
            "InvalidSignatureException",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "IncompleteSignature",
            "MissingAuthenticationToken",
        ),
        EXIT_KMS_ACCESS_DENIED,
    ),
    # The wrapped key or its KMS context was altered (KMS authenticates the context), or wrapped
    # under another key (IncorrectKeyException needs a KeyId, which we never send; listed for safety).
    "InvalidCiphertextException": EXIT_CONTEXT_MISMATCH,
    "IncorrectKeyException": EXIT_CONTEXT_MISMATCH,
    # The request itself is malformed: the envelope's wrapped key or context is not what KMS accepts.
    "ValidationException": EXIT_ENVELOPE_CORRUPT,
    "SerializationException": EXIT_ENVELOPE_CORRUPT,
}
_ADVICE = {
    EXIT_KMS_KEY_UNUSABLE: "enable the key in workload_kms_key, cancel its deletion, or set another key",
    EXIT_KMS_ACCESS_DENIED: "give the task role kms:Decrypt on the key, conditioned on "
    "kms:EncryptionContext:ecs-executor:purpose = airflow-workload (docs/security.md)",
    EXIT_CONTEXT_MISMATCH: "the try did not run: an envelope opens only for the try it was sealed "
    "for, unaltered",
    EXIT_ENVELOPE_CORRUPT: "the command is not an envelope this ecs_executor can read: run the "
    "scheduler's ecs_executor version in the worker image",
    EXIT_KMS_UNREACHABLE: "check the task's route to KMS (NAT or a KMS VPC endpoint), AWS_REGION and "
    "AWS_ENDPOINT_URL_KMS",
}
_MAX_DETAIL = 300
# What an error KMS sends without a message means here.
_UNSAID = {
    "InvalidCiphertextException": " (the wrapped data key or its KMS encryption context was altered)",
}
# Bounded: a task without a route to KMS ends soon instead of hanging. Standard mode retries throttling
# and 5xx with backoff; its attempts follow AWS_MAX_ATTEMPTS when set (3 otherwise).
_CLIENT_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=10)


class Refused(Exception):
    """The envelope cannot be opened here; ``exit_code`` and ``line`` say why (no secret in either)."""

    def __init__(self, exit_code: int, detail: str, advice: str | None = None):
        self.exit_code = exit_code
        self.line = f"{PREFIX}{_one_line(detail).rstrip('.')}; {advice or _ADVICE[exit_code]}"
        super().__init__(self.line)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_DETAIL else flat[: _MAX_DETAIL - 3] + "..."


def exit_for_kms_error(code: str) -> int:
    """The exit code for an error code KMS answered Decrypt with (after botocore's retries)."""
    return _CODES.get(code, EXIT_KMS_UNREACHABLE)


def refusal_for(exc: Exception) -> Refused:
    """What a botocore exception from creating the client or calling Decrypt means for the try."""
    if isinstance(exc, ParamValidationError):  # e.g. a wrapped key longer than KMS accepts: not KMS's fault
        return Refused(
            EXIT_ENVELOPE_CORRUPT, f"the envelope's wrapped data key is not a valid KMS ciphertext ({exc})"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "")
        detail = f"KMS Decrypt failed: {code}" + (f": {message}" if message else _UNSAID.get(code, ""))
        return Refused(exit_for_kms_error(code), detail)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return Refused(
            EXIT_KMS_ACCESS_DENIED,
            f"no AWS credentials in the container ({exc})",
            "give the task definition a task role that may kms:Decrypt (docs/security.md)",
        )
    if isinstance(exc, NoRegionError):
        return Refused(
            EXIT_KMS_UNREACHABLE,
            "no AWS Region to call KMS in",
            "ECS sets AWS_REGION in every task; elsewhere set AWS_REGION or AWS_DEFAULT_REGION",
        )
    return Refused(EXIT_KMS_UNREACHABLE, f"no answer from KMS ({type(exc).__name__}: {exc})")


def kms_client() -> Any:
    """A KMS client as the container's AWS configuration makes it (``AWS_REGION`` first, as ECS means)."""
    session = botocore.session.get_session()
    return session.create_client(
        "kms", region_name=os.environ.get("AWS_REGION") or None, config=_CLIENT_CONFIG
    )


def _names_its_try(workload_json: str, context: Mapping[str, str]) -> bool:
    """A task's workload names its try (``identity_matches``). A callback names no task instance (the
    executor tags it with a made-up try, ``facade/admission.py``): its AES-GCM tag alone binds it."""
    try:
        is_callback = json.loads(workload_json).get("type") == "ExecuteCallback"
    except (ValueError, AttributeError):
        return False
    return is_callback or identity_matches(workload_json, context)


def unseal(envelope: str, make_client: Callable[[], Any] = kms_client) -> str:
    """The workload JSON inside ``envelope``, for the try it names; ``Refused`` otherwise."""
    try:
        sealed = parse(envelope)
    except CorruptEnvelope as exc:
        raise Refused(EXIT_ENVELOPE_CORRUPT, str(exc)) from None
    if not sealed.wrapped:
        raise Refused(EXIT_ENVELOPE_CORRUPT, "the wrapped data key is empty")
    if sealed.kms_context != KMS_CONTEXT:  # only the executor's purpose; never decrypt for another
        raise Refused(
            EXIT_CONTEXT_MISMATCH, "the envelope names another KMS encryption context than the executor's"
        )
    try:
        answer = make_client().decrypt(CiphertextBlob=sealed.wrapped, EncryptionContext=sealed.kms_context)
    except (BotoCoreError, ClientError, ValueError) as exc:  # ValueError: a malformed endpoint URL
        raise refusal_for(exc) from None
    try:
        workload_json = open_sealed(sealed, answer["Plaintext"])
    except ContextMismatch as exc:
        raise Refused(EXIT_CONTEXT_MISMATCH, str(exc)) from None
    except CorruptEnvelope as exc:
        raise Refused(EXIT_ENVELOPE_CORRUPT, str(exc)) from None
    if not _names_its_try(workload_json, sealed.context):
        raise Refused(
            EXIT_CONTEXT_MISMATCH,
            "the workload inside names another try than its envelope "
            f"(dag_id={sealed.context.get('dag_id')!r}, task_id={sealed.context.get('task_id')!r})",
        )
    return workload_json


def main(
    argv: Sequence[str],
    *,
    make_client: Callable[[], Any] = kms_client,
    execvp: Callable[[str, list[str]], Any] = os.execvp,
) -> int:
    """Exec the try's command, or return the exit code of why not (one line on stderr)."""
    if len(argv) != 1:
        refused = Refused(
            EXIT_ENVELOPE_CORRUPT,
            f"expected one argument (python -m ecs_executor.worker <envelope>), got {len(argv)}",
        )
        print(refused.line, file=sys.stderr)
        return refused.exit_code
    try:
        workload_json = unseal(argv[0], make_client)
    except Refused as refused:
        print(refused.line, file=sys.stderr)
        return refused.exit_code
    command = [*WORKLOAD_COMMAND, workload_json]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        execvp(command[0], command)
    except FileNotFoundError:
        path = os.environ.get("PATH", "")
        print(f"ecs_executor: command not found: {command[0]} (PATH={path})", file=sys.stderr)
        return EXIT_NOT_FOUND
    except OSError as exc:
        print(f"ecs_executor: cannot execute {command[0]}: {exc.strerror}", file=sys.stderr)
        return EXIT_CANNOT_EXECUTE
    return 0  # only when execvp is replaced (tests): the real one does not return
