"""The sealed workload's data keys: when to ask KMS for a new one, and what a KMS answer means. Pure.

One data key (one ``kms:GenerateDataKey``) seals every workload for ``workload_data_key_seconds``. A new
one is asked for ahead of time (in the last tenth of the lifetime, while the current one still seals),
so launches wait on KMS only when it did not answer in time; an expired key never seals. KMS throttling,
5xx and lost connections are waited out (the try's own token bounds the wait); answers that say the key
cannot be used (disabled, missing, pending deletion, access denied) fail the tries waiting on the key
with a reason naming the option, the key and KMS's error (docs/security.md).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from typing import Any

from ecs_executor.core.relaunch import backoff_seconds
from ecs_executor.core.triage import CREDENTIAL_CODES, THROTTLING_CODES

#: Ask for the next data key once less than this share of the current one's lifetime is left.
REFRESH_SHARE = 0.1
#: After a refusal, launches fail at once with it for this long; then KMS is asked again.
REFUSAL_MEMORY_SECONDS = 60.0
#: Waits between GenerateDataKey attempts KMS did not answer: doubling, with jitter, capped.
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 20.0

#: KMS's answers that say the key itself cannot be used now; waiting does not heal them.
KEY_UNUSABLE_CODES = frozenset(
    {
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",  # pending deletion, pending import, ...
        "InvalidKeyUsageException",  # not an ENCRYPT_DECRYPT key, or not symmetric
        "InvalidArnException",
        "InvalidGrantTokenException",
        "IncorrectKeyException",
    }
)
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
#: KMS-side trouble that heals (KMS's own 5xx answers, a custom key store's dependency).
KMS_TRANSIENT_CODES = frozenset(
    {"KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException"}
)
#: Key states (DescribeKey KeyMetadata.KeyState) that make the key unusable for sealing for good.
#: The only key a data key for sealing comes from: symmetric, for encryption (DescribeKey's KeyMetadata).
KEY_USAGE, KEY_SPEC = "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT"
UNUSABLE_STATES = frozenset({"Disabled", "PendingDeletion", "PendingReplicaDeletion", "PendingImport"})

_HINTS = {
    "NotFoundException": "no such key or alias in this account and Region",
    "InvalidArnException": "no such key or alias in this account and Region",
    "DisabledException": "enable the key, or name another one",
    "KMSInvalidStateException": "the key is not usable in its state (pending deletion?): cancel the "
    "deletion, or name another key",
    "InvalidKeyUsageException": "name a symmetric key with key usage ENCRYPT_DECRYPT",
    "AccessDeniedException": "the scheduler's role needs kms:GenerateDataKey on the key, with the encryption "
    "context ecs-executor:purpose=airflow-workload (deploy/ecs-executor.yaml grants it)",
}


class KeyUse(str, enum.Enum):
    """What a launch does with the data key the engine holds."""

    USE = "use"  # seal with it
    USE_AND_REFRESH = "use_and_refresh"  # seal with it, and ask KMS for the next one in the background
    WAIT = "wait"  # none, or expired: wait for the next one


def key_use(expires_at: float | None, lifetime: float, now: float) -> KeyUse:
    """``expires_at`` of the held key (None: none held), its ``lifetime`` in seconds, the clock ``now``."""
    if expires_at is None or now >= expires_at:
        return KeyUse.WAIT
    if expires_at - now <= REFRESH_SHARE * lifetime:
        return KeyUse.USE_AND_REFRESH
    return KeyUse.USE


class KmsVerdict(str, enum.Enum):
    """What a failed GenerateDataKey means for the launches waiting on it."""

    WAIT = "wait"  # ask again after a backoff; nobody fails
    REFRESH_CLIENT = "refresh_client"  # credentials rejected: rebuild the KMS client, then ask again
    REFUSE = "refuse"  # fail the waiting launches with the reason; remembered REFUSAL_MEMORY_SECONDS


def kms_verdict(code: str, status: int | None) -> KmsVerdict:
    """``code`` and HTTP ``status`` of KMS's error; ``code`` empty for no answer (network, timeout)."""
    if not code or code in THROTTLING_CODES or code in KMS_TRANSIENT_CODES:
        return KmsVerdict.WAIT
    if code in CREDENTIAL_CODES:
        return KmsVerdict.REFRESH_CLIENT
    if code in KEY_UNUSABLE_CODES or code in ACCESS_DENIED_CODES:
        return KmsVerdict.REFUSE
    # Anything else: a 5xx heals, another 4xx (a validation error) would be refused again.
    return KmsVerdict.WAIT if (status or 500) >= 500 else KmsVerdict.REFUSE


def backoff(failures: int, rng: random.Random | None = None) -> float:
    """Seconds before the ``failures``-th GenerateDataKey retry."""
    return backoff_seconds(failures, FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, rng)


def refusal_reason(option: str, key: str, code: str, message: str) -> str:
    """The launch failure reason: the option (with its env var), the key, KMS's error and the fix."""
    hint = _HINTS.get("AccessDeniedException" if code in ACCESS_DENIED_CODES else code, "")
    said = f"{code}: {message}" if message else code
    return (
        f"not launched: no KMS data key to seal the workload with: {option} = {key!r}: KMS answered "
        f"GenerateDataKey with {said}" + (f"; {hint}" if hint else "")
    )


def key_metadata_problem(metadata: Mapping[str, Any]) -> str | None:
    """Why DescribeKey's ``KeyMetadata`` rules the key out for sealing workloads; None when it fits."""
    state = str(metadata.get("KeyState") or "")
    if state in UNUSABLE_STATES or (not state and metadata.get("Enabled") is False):
        return f"the key is {state or 'Disabled'}; enable it (or cancel its deletion), or name another key"
    if metadata.get("KeyManager") == "AWS":
        return (
            "the key is an AWS managed key, usable only by its own AWS service; name a customer managed key"
        )
    usage, spec = metadata.get("KeyUsage"), metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec")
    if usage not in (None, KEY_USAGE) or spec not in (None, KEY_SPEC):
        return (
            f"the key is a {spec} key for {usage}; GenerateDataKey needs a symmetric ({KEY_SPEC}) "
            f"key with key usage {KEY_USAGE}"
        )
    return None


def startup_refuses(code: str) -> bool:
    """A DescribeKey error at start-up that is an error (the key does not exist); others only warn
    (KMS unreachable, throttled, or DescribeKey not granted: the launches will tell)."""
    return code in ("NotFoundException", "InvalidArnException")
