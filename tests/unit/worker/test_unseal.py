"""The worker's decisions: which exit code each KMS answer means, and what reaches stderr.

KMS is a botocore ``Stubber`` on a real KMS client (requests checked against botocore's service model);
tests/integration/test_worker.py runs the real process against moto's KMS server.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)
from botocore.stub import Stubber

from ecs_executor.core.envelope import KMS_CONTEXT, WORKLOAD_COMMAND, DataKey, seal, try_context
from ecs_executor.core.task_status import EXIT_MEANINGS
from ecs_executor.worker import unseal as worker
from ecs_executor.worker.unseal import Refused, exit_for_kms_error, main, refusal_for

PLAINTEXT_KEY = bytes(range(32))
WRAPPED = b"wrapped-data-key-blob"
TOKEN = "eyJ.SECRET-TOKEN-IN-THE-WORKLOAD.sig"
IDENTITY = {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1, "try_number": 2}
WORKLOAD = (
    '{"ti":{"dag_id":"d","task_id":"t","run_id":"r","map_index":-1,"try_number":2},"token":"' + TOKEN + '"}'
)
ENVELOPE = seal(WORKLOAD, DataKey(PLAINTEXT_KEY, WRAPPED, "arn:key", 0.0), try_context(IDENTITY))

# Every error botocore's KMS model lists for Decrypt, and the exit code it means.
DECRYPT_ERRORS = {
    "NotFoundException": 81,
    "DisabledException": 81,
    "KMSInvalidStateException": 81,
    "KeyUnavailableException": 81,
    "InvalidKeyUsageException": 81,
    "InvalidGrantTokenException": 82,
    "InvalidCiphertextException": 83,
    "IncorrectKeyException": 83,
    "DependencyTimeoutException": 85,  # KMS's 5xx, after botocore's retries
    "KMSInternalException": 85,
    "DryRunOperationException": 85,  # we never ask for a dry run
}


def test_every_decrypt_error_in_the_service_model_has_its_exit_code() -> None:
    model = botocore.session.get_session().get_service_model("kms").operation_model("Decrypt")
    assert {shape.name for shape in model.error_shapes} == set(DECRYPT_ERRORS)
    for code, exit_code in DECRYPT_ERRORS.items():
        assert exit_for_kms_error(code) == exit_code, code


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        ("AccessDeniedException", 82),  # a policy, or the purpose condition on the encryption context
        ("UnrecognizedClientException", 82),
        ("ExpiredTokenException", 82),
        ("InvalidSignatureException", 82),
        ("ValidationException", 84),
        ("ThrottlingException", 85),
        ("SomethingNew", 85),
    ],
)
def test_errors_any_aws_api_answers(code: str, exit_code: int) -> None:
    assert exit_for_kms_error(code) == exit_code


@pytest.mark.parametrize(
    ("exc", "exit_code", "fragment"),
    [
        (NoCredentialsError(), 82, "task role"),
        (NoRegionError(), 85, "AWS_REGION"),
        (EndpointConnectionError(endpoint_url="https://kms.eu-west-1.amazonaws.com/"), 85, "kms.eu-west-1"),
        (ConnectTimeoutError(endpoint_url="https://kms"), 85, "ConnectTimeoutError"),
        (CredentialRetrievalError(provider="container-role", error_msg="timed out"), 85, "container-role"),
        (ParamValidationError(report="CiphertextBlob too long"), 84, "not a valid KMS ciphertext"),
    ],
)
def test_botocore_errors_without_an_answer(exc: Exception, exit_code: int, fragment: str) -> None:
    refused = refusal_for(exc)
    assert refused.exit_code == exit_code
    assert fragment in refused.line


def test_every_exit_code_has_a_meaning_for_the_task_log_and_one_line_of_advice() -> None:
    for exit_code in set(DECRYPT_ERRORS.values()) | {84}:
        assert exit_code in EXIT_MEANINGS
        line = Refused(exit_code, "why\nover two lines " + "x" * 1000).line
        assert "\n" not in line and len(line) < 600
        assert line.startswith("ecs_executor: cannot open the sealed workload: why over two lines xxx")


# --- main, with a stubbed KMS --------------------------------------------------------------------


@pytest.fixture
def kms() -> Any:
    client = botocore.session.get_session().create_client(
        "kms", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client


def expect_decrypt(kms: Any, plaintext: bytes = PLAINTEXT_KEY) -> None:
    kms.stubber.add_response(
        "decrypt",
        {"Plaintext": plaintext, "KeyId": "arn:aws:kms:eu-west-1:1:key/k"},
        {"CiphertextBlob": WRAPPED, "EncryptionContext": dict(KMS_CONTEXT)},
    )


def run(kms: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[Any], str]:
    calls: list[Any] = []
    code = main(argv, make_client=lambda: kms, execvp=lambda file, args: calls.append((file, args)))
    out, err = capsys.readouterr()
    assert out == ""
    assert TOKEN not in err and PLAINTEXT_KEY.hex() not in err and WORKLOAD not in err
    return code, calls, err


def test_decrypts_with_the_kms_context_and_execs_the_unsealed_command(kms: Any, capsys) -> None:
    expect_decrypt(kms)
    code, calls, err = run(kms, [ENVELOPE], capsys)
    assert (code, err) == (0, "")
    assert calls == [("python", [*WORKLOAD_COMMAND, WORKLOAD])]
    kms.stubber.assert_no_pending_responses()


@pytest.mark.parametrize(("error", "exit_code"), [("DisabledException", 81), ("AccessDeniedException", 82)])
def test_a_kms_refusal_exits_with_its_code_and_one_line(kms: Any, capsys, error: str, exit_code: int) -> None:
    kms.stubber.add_client_error("decrypt", error, "User arn:aws:sts::1:assumed-role/task/x may not")
    code, calls, err = run(kms, [ENVELOPE], capsys)
    assert (code, calls) == (exit_code, [])
    assert err.count("\n") == 1
    assert f"KMS Decrypt failed: {error}: User arn:aws:sts::1:assumed-role/task/x may not; " in err


def test_a_data_key_of_the_wrong_size_is_a_corrupt_envelope(kms: Any, capsys) -> None:
    expect_decrypt(kms, plaintext=b"short")
    code, calls, _ = run(kms, [ENVELOPE], capsys)
    assert (code, calls) == (84, [])


def test_a_corrupt_envelope_never_calls_kms(capsys) -> None:
    def no_client() -> Any:
        raise AssertionError("KMS called for an envelope that does not parse")

    code = main(["ecsw1.a.b"], make_client=no_client, execvp=lambda *_: None)
    assert code == 84
    assert "expected 6 dot-separated fields" in capsys.readouterr().err


def test_an_empty_wrapped_key_never_reaches_kms(capsys) -> None:
    parts = ENVELOPE.split(".")
    parts[3] = ""
    code = main([".".join(parts)], make_client=lambda: None, execvp=lambda *_: None)
    assert code == 84
    assert "wrapped data key is empty" in capsys.readouterr().err


def test_the_region_ecs_sets_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """ECS sets both; AWS_REGION is the task's Region (botocore alone reads only AWS_DEFAULT_REGION)."""
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert worker.kms_client().meta.region_name == "eu-central-1"
    monkeypatch.delenv("AWS_REGION")
    assert worker.kms_client().meta.region_name == "us-east-1"


def test_retries_are_standard_and_follow_aws_max_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    assert worker.kms_client().meta.config.retries == {"mode": "standard"}  # botocore's default: 3
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    assert worker.kms_client().meta.config.retries["total_max_attempts"] == 7
