"""The workload-encryption rows on KMS's own answers to a DryRun, which moto does not give (it ignores
DryRun): a botocore client stubbed and checked by KMS's service model (requests must be valid)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecs_executor.check.rows import Probe
from ecs_executor.check.workload_key import check_workload_key, key_region
from ecs_executor.core.envelope import KMS_CONTEXT
from tests.conftest import ACCOUNT, REGION, executor_settings

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/airflow-worker-task"
METADATA = {
    "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "Arn": KEY,
    "KeyState": "Enabled",
    "KeyUsage": "ENCRYPT_DECRYPT",
    "KeySpec": "SYMMETRIC_DEFAULT",
}
DRY_RUN = {"KeyId": KEY, "KeySpec": "AES_256", "EncryptionContext": dict(KMS_CONTEXT), "DryRun": True}


class Clients:
    def __init__(self, kms: Any):
        self.kms = kms
        self.regions: list[str | None] = []

    def client(self, service: str, region_name: str | None = None) -> Any:
        assert service == "kms"
        self.regions.append(region_name)
        return self.kms

    def describe_connection(self) -> str:
        return "a stub"


@pytest.fixture
def kms() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("kms", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _rows(client: Any, key: str = KEY) -> tuple[dict[str, Any], Clients]:
    clients = Clients(client)
    probe = Probe(executor_settings("c", workload_kms_key=key), clients, None)
    probe.seed("task_definition", lambda: {"taskRoleArn": ROLE})
    return {row.name: row for row in check_workload_key(probe)}, clients


def test_kms_answering_dry_run_operation_means_allowed(kms):
    client, stub = kms
    stub.add_response("describe_key", {"KeyMetadata": METADATA}, {"KeyId": KEY})
    stub.add_client_error(
        "generate_data_key",
        service_error_code="DryRunOperationException",
        service_message="The request would have succeeded, but the DryRun option is set.",
        expected_params=DRY_RUN,
    )
    rows, clients = _rows(client)
    assert clients.regions == [REGION]  # region_name's, where the engine and the tasks ask KMS
    assert rows["workload key"].status == "PASS"
    assert rows["workload data keys"].status == "PASS"
    assert rows["workload data keys"].detail == (
        "the scheduler may call GenerateDataKey for kms:EncryptionContext:ecs-executor:purpose = "
        "airflow-workload (DryRun)"
    )


def test_a_denied_dry_run_fails_with_the_condition_to_grant(kms):
    client, stub = kms
    stub.add_response("describe_key", {"KeyMetadata": METADATA}, {"KeyId": KEY})
    stub.add_client_error(
        "generate_data_key",
        service_error_code="AccessDeniedException",
        service_message="User: arn:aws:sts::111122223333:assumed-role/scheduler/i is not authorized",
        expected_params=DRY_RUN,
    )
    row = _rows(client)[0]["workload data keys"]
    assert row.status == "FAIL" and row.detail.startswith("GenerateDataKey (DryRun): AccessDeniedException")
    assert "kms:GenerateDataKey" in row.fix
    assert "kms:EncryptionContext:ecs-executor:purpose = airflow-workload" in row.fix
    assert "SchedulerWorkloadKeyPolicy" in row.fix


def test_another_refusal_names_the_option(kms):
    client, stub = kms
    stub.add_response("describe_key", {"KeyMetadata": METADATA}, {"KeyId": KEY})
    stub.add_client_error(
        "generate_data_key", service_error_code="KMSInvalidStateException", expected_params=DRY_RUN
    )
    row = _rows(client)[0]["workload data keys"]
    assert row.status == "FAIL" and "KMSInvalidStateException" in row.detail
    assert "workload_kms_key (AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY)" in row.fix


def test_a_key_in_another_region_than_region_name_fails_without_asking_kms(kms):
    client, _ = kms  # no response queued: any KMS call would fail the test
    other = KEY.replace(f":{REGION}:", ":eu-west-1:")
    rows, clients = _rows(client, other)
    assert clients.regions == []
    row = rows["workload key"]
    assert row.status == "FAIL"
    assert row.detail == (
        f"{other} is in eu-west-1, but the scheduler and its tasks ask KMS in {REGION} "
        "(region_name (AIRFLOW__AWS_ECS_EXECUTOR__REGION_NAME))"
    )
    assert rows["workload data keys"].status == "SKIP"


def test_the_key_region_is_the_arns_or_the_executors() -> None:
    assert key_region(KEY.replace(f":{REGION}:", ":eu-west-1:"), "us-east-1") == "eu-west-1"
    assert key_region(f"arn:aws:kms:ap-south-1:{ACCOUNT}:alias/airflow-workload", "us-east-1") == "ap-south-1"
    assert key_region("alias/airflow-workload", "us-east-1") == "us-east-1"
    assert key_region("1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1") == "us-east-1"
