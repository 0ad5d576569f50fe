"""core/data_key_policy.py: when a data key seals, when the next is asked for, what KMS's answers mean."""

from __future__ import annotations

import random

import pytest

from ecs_executor.core.data_key_policy import (
    MAX_BACKOFF_SECONDS,
    KeyUse,
    KmsVerdict,
    backoff,
    key_metadata_problem,
    key_use,
    kms_verdict,
    refusal_reason,
    startup_refuses,
)

OPTION = "workload_kms_key (AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY)"


@pytest.mark.parametrize(
    ("expires_at", "now", "expected"),
    [
        (None, 0.0, KeyUse.WAIT),  # none held yet
        (300.0, 0.0, KeyUse.USE),
        (300.0, 269.9, KeyUse.USE),
        (300.0, 270.0, KeyUse.USE_AND_REFRESH),  # the last tenth of 300 s
        (300.0, 299.9, KeyUse.USE_AND_REFRESH),
        (300.0, 300.0, KeyUse.WAIT),  # expired: never seals again
        (300.0, 1000.0, KeyUse.WAIT),
    ],
)
def test_a_key_seals_within_its_lifetime_and_the_next_is_asked_for_ahead(expires_at, now, expected) -> None:
    assert key_use(expires_at, 300.0, now) is expected


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, KmsVerdict.WAIT),
        ("KMSInternalException", 500, KmsVerdict.WAIT),
        ("DependencyTimeoutException", 503, KmsVerdict.WAIT),
        ("KeyUnavailableException", 500, KmsVerdict.WAIT),
        ("ServiceUnavailable", 503, KmsVerdict.WAIT),
        ("", None, KmsVerdict.WAIT),  # no answer: connection refused, timeout
        ("ExpiredTokenException", 400, KmsVerdict.REFRESH_CLIENT),
        ("NoCredentials", None, KmsVerdict.REFRESH_CLIENT),
        ("DisabledException", 400, KmsVerdict.REFUSE),
        ("NotFoundException", 400, KmsVerdict.REFUSE),
        ("KMSInvalidStateException", 400, KmsVerdict.REFUSE),
        ("InvalidKeyUsageException", 400, KmsVerdict.REFUSE),
        ("AccessDeniedException", 400, KmsVerdict.REFUSE),
        ("ValidationException", 400, KmsVerdict.REFUSE),  # would be refused again
    ],
)
def test_kms_errors_wait_refresh_or_refuse(code, status, expected) -> None:
    assert kms_verdict(code, status) is expected


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    first, later = backoff(1, rng), backoff(30, rng)
    assert 0.25 <= first <= 0.5
    assert MAX_BACKOFF_SECONDS / 2 <= later <= MAX_BACKOFF_SECONDS


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("DisabledException", "enable the key"),
        ("KMSInvalidStateException", "pending deletion"),
        ("NotFoundException", "no such key or alias"),
        ("InvalidKeyUsageException", "ENCRYPT_DECRYPT"),
        ("AccessDeniedException", "kms:GenerateDataKey"),
        ("AccessDenied", "ecs-executor:purpose=airflow-workload"),
    ],
)
def test_a_refusal_names_the_option_the_key_the_error_and_the_fix(code, hint) -> None:
    reason = refusal_reason(OPTION, "alias/wl", code, "it said no")
    assert reason.startswith("not launched: ")
    for part in (OPTION, "'alias/wl'", code, "it said no", hint):
        assert part in reason, (part, reason)


def test_a_refusal_without_a_message_or_known_hint_is_still_one_line() -> None:
    reason = refusal_reason(OPTION, "k", "ValidationException", "")
    assert reason.endswith("GenerateDataKey with ValidationException") and "\n" not in reason


ENABLED = {
    "KeyState": "Enabled",
    "Enabled": True,
    "KeyUsage": "ENCRYPT_DECRYPT",
    "KeySpec": "SYMMETRIC_DEFAULT",
}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"KeyManager": "CUSTOMER"}, None),
        ({"KeyState": "Disabled", "Enabled": False}, "the key is Disabled"),
        ({"KeyState": "PendingDeletion", "Enabled": False}, "the key is PendingDeletion"),
        ({"KeyState": "PendingImport"}, "the key is PendingImport"),
        ({"KeyManager": "AWS"}, "AWS managed key"),
        ({"KeyUsage": "SIGN_VERIFY", "KeySpec": "RSA_2048"}, "RSA_2048 key for SIGN_VERIFY"),
        ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "needs a symmetric"),
        ({"KeyState": "Unavailable"}, None),  # a disconnected custom key store may come back: launches tell
    ],
)
def test_start_up_rules_out_keys_that_cannot_make_data_keys(changes, problem) -> None:
    found = key_metadata_problem({**ENABLED, **changes})
    assert found == problem if problem is None else problem in (found or "")


def test_only_a_missing_key_stops_the_start_when_describe_key_fails() -> None:
    assert startup_refuses("NotFoundException") and startup_refuses("InvalidArnException")
    for code in ("AccessDeniedException", "ThrottlingException", "KMSInternalException", ""):
        assert not startup_refuses(code)
