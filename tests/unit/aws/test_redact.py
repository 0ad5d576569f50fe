"""aws/redact.py: workload JWTs never reach botocore's DEBUG dumps."""

from __future__ import annotations

import logging

from ecs_executor.aws import redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0aSJ9.c2lnbmF0dXJl"


def test_a_token_in_a_noisy_logger_is_masked_and_the_record_kept(caplog) -> None:
    redact.install()
    redact.install()  # idempotent
    logger = logging.getLogger("botocore.endpoint")
    assert sum(isinstance(f, redact.RedactTokens) for f in logger.filters) == 1
    with caplog.at_level(logging.DEBUG, logger="botocore.endpoint"):
        logger.debug("Making request with params %s", {"command": ["--json-string", f'{{"token": "{JWT}"}}']})
    (record,) = [r for r in caplog.records if r.name == "botocore.endpoint"]
    assert JWT not in record.getMessage() and redact.MASK in record.getMessage()


def test_text_without_a_token_is_untouched() -> None:
    assert redact.redact("RunTask for dag.task try 1") == "RunTask for dag.task try 1"
    assert redact.redact(f"a {JWT} b") == f"a {redact.MASK} b"


def test_a_kms_data_key_in_a_noisy_logger_is_masked(caplog) -> None:
    """GenerateDataKey's answer holds the plaintext data key: on the wire (base64 JSON) and parsed (bytes)."""
    redact.install()
    wire = b'{"CiphertextBlob":"AQIDAHg=","KeyId":"arn:aws:kms:k","Plaintext":"c2VjcmV0LWRhdGEta2V5"}'
    parsed = {"CiphertextBlob": b"\x01\x02", "Plaintext": b"secret-data-key\\'\x00", "KeyId": "k"}
    for logger_name, args in (("botocore.parsers", wire), ("aiobotocore.endpoint", parsed)):
        logger = logging.getLogger(logger_name)
        with caplog.at_level(logging.DEBUG, logger=logger_name):
            logger.debug("Response body:\n%s", args)
        message = caplog.records[-1].getMessage()
        assert "c2VjcmV0LWRhdGEta2V5" not in message and "secret-data-key" not in message, message
        assert "Plaintext" in message and redact.MASK in message and "CiphertextBlob" in message
