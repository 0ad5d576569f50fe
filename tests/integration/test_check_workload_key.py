"""``check``'s workload-encryption rows against moto's KMS (server mode).

moto 5.2.5's KMS ignores ``DryRun`` (GenerateDataKey makes a data key), makes data keys with disabled keys
and keys pending deletion, and evaluates a key policy's Deny statements for DescribeKey only. So the rows
whose answers moto gives as KMS does (DescribeKey: missing, Disabled, PendingDeletion, another key spec, a
denied DescribeKey) are tested here; KMS's own DryRun answers (DryRunOperationException when allowed,
AccessDeniedException, DisabledException) are tested in tests/unit/check/test_workload_key.py on a client
stubbed and checked by botocore's KMS model.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import boto3
import pytest

from ecs_executor.aws.clients import AwsClients
from ecs_executor.check.report import run_check
from ecs_executor.check.rows import CheckResult
from ecs_executor.check.run import collect_checks
from tests.conftest import ACCOUNT, CONTAINER, REGION, executor_settings

TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/airflow-worker-task"
ROWS = ("workload key", "workload data keys", "workload decrypt")


@pytest.fixture
def aws(moto_url: str, configure: Any) -> dict[str, Any]:
    kwargs = {"endpoint_url": moto_url, "region_name": REGION}
    return {name: boto3.client(name, **kwargs) for name in ("ecs", "kms")}  # type: ignore[call-overload]


@pytest.fixture
def cluster(aws: dict[str, Any]) -> str:
    """A cluster and a task definition of the same name whose task role is TASK_ROLE."""
    name = f"kms-{uuid.uuid4().hex[:8]}"
    aws["ecs"].create_cluster(clusterName=name)
    aws["ecs"].register_task_definition(
        family=name,
        taskRoleArn=TASK_ROLE,
        containerDefinitions=[{"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512}],
    )
    return name


def _key(aws: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("KeyUsage", "ENCRYPT_DECRYPT")  # KMS's default; moto leaves it out when not given
    meta: dict[str, Any] = aws["kms"].create_key(**kwargs)["KeyMetadata"]
    return meta


def _rows(cluster: str, **options: str) -> dict[str, CheckResult]:
    settings = executor_settings(cluster, **options)
    rows = collect_checks(settings, clients=AwsClients.for_settings(settings))
    return {row.name: row for row in rows}


def test_unset_says_the_workload_travels_in_clear(aws, cluster):
    rows = _rows(cluster)
    row = rows["workload encryption"]
    assert row.status == "SKIP" and row.ok
    assert "workload_kms_key (AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY) unset" in row.detail
    assert "in clear" in row.detail and "docs/security.md" in row.detail
    assert not set(ROWS) & set(rows)


def test_an_enabled_symmetric_key_passes_by_every_name_kms_takes(aws, cluster):
    meta = _key(aws)
    alias = f"alias/wk-{uuid.uuid4().hex[:8]}"
    aws["kms"].create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:{alias}"
    for name in (meta["Arn"], meta["KeyId"], alias, alias_arn):
        rows = _rows(cluster, workload_kms_key=name)
        assert rows["workload key"].status == "PASS", (name, rows["workload key"])
        assert (
            rows["workload key"].detail == f"{meta['Arn']} is Enabled, SYMMETRIC_DEFAULT for ENCRYPT_DECRYPT"
        )
        data_keys = rows["workload data keys"]
        assert data_keys.status == "PASS", (name, data_keys)
        # moto makes a real data key despite DryRun; the row says so rather than claiming a DryRun answer.
        assert data_keys.detail == (
            "the scheduler may call GenerateDataKey for kms:EncryptionContext:ecs-executor:purpose = "
            "airflow-workload (this endpoint ignored DryRun; its data key was dropped)"
        )
        decrypt = rows["workload decrypt"]
        assert decrypt.status == "SKIP" and decrypt.detail.startswith("not verifiable from the scheduler")
        assert TASK_ROLE in decrypt.detail and name in decrypt.detail and "exit code 82" in decrypt.detail
        assert "workload encryption" not in rows


@pytest.mark.parametrize(
    ("change", "state", "fix"),
    [
        (lambda kms, key: kms.disable_key(KeyId=key), "Disabled", "aws kms enable-key --key-id"),
        (
            lambda kms, key: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7),
            "PendingDeletion",
            "aws kms cancel-key-deletion --key-id",
        ),
    ],
)
def test_a_key_that_is_not_enabled_fails_and_data_keys_are_not_tried(aws, cluster, change, state, fix):
    meta = _key(aws)
    change(aws["kms"], meta["KeyId"])
    rows = _rows(cluster, workload_kms_key=meta["Arn"])
    row = rows["workload key"]
    assert row.status == "FAIL"
    assert row.detail == f"{meta['Arn']} is {state}, not Enabled: no workload can be sealed or opened with it"
    assert f"({fix} {meta['Arn']})" in row.fix
    assert rows["workload data keys"].status == "SKIP"
    assert "not usable" in rows["workload data keys"].detail


def test_a_missing_key_fails_naming_the_option_and_its_variable(aws, cluster):
    missing = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{uuid.uuid4()}"
    rows = _rows(cluster, workload_kms_key=missing)
    row = rows["workload key"]
    assert row.status == "FAIL" and "NotFoundException" in row.detail and missing in row.detail
    assert "workload_kms_key (AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY)" in row.fix
    assert "WorkloadKmsKey=create" in row.fix
    assert rows["workload data keys"].status == "SKIP"


def test_a_key_that_cannot_make_data_keys_fails(aws, cluster):
    meta = _key(aws, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    row = _rows(cluster, workload_kms_key=meta["Arn"])["workload key"]
    assert row.status == "FAIL"
    assert row.detail == (
        f"{meta['Arn']} is a RSA_2048 key for SIGN_VERIFY; data keys need a SYMMETRIC_DEFAULT key for "
        "ENCRYPT_DECRYPT"
    )


def test_a_denied_describe_key_is_a_warning_and_data_keys_are_still_tried(aws, cluster):
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {"Effect": "Deny", "Principal": "*", "Action": "kms:DescribeKey", "Resource": "*"},
        ],
    }
    meta = _key(aws, Policy=json.dumps(deny))
    rows = _rows(cluster, workload_kms_key=meta["Arn"])
    row = rows["workload key"]
    assert row.status == "WARN" and "AccessDeniedException" in row.detail  # the executor only warns too
    assert "kms:DescribeKey" in row.fix and "SchedulerWorkloadKeyPolicy" in row.fix
    assert rows["workload data keys"].status == "PASS"  # a separate permission, asked separately


def test_a_task_definition_without_a_task_role_is_a_warning(aws, cluster):
    aws["ecs"].register_task_definition(
        family=cluster,
        containerDefinitions=[{"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512}],
    )
    meta = _key(aws)
    row = _rows(cluster, workload_kms_key=meta["Arn"])["workload decrypt"]
    assert row.status == "WARN" and "names no task role" in row.detail
    assert "kms:Decrypt" in row.fix


def test_the_table_and_exit_code(aws, cluster, configure, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    meta = _key(aws)
    configure(cluster, launch_type="EC2", workload_kms_key=meta["Arn"])  # bridge mode: the other rows pass
    out = io.StringIO()
    assert run_check(out=out) == 0, out.getvalue()
    aws["kms"].disable_key(KeyId=meta["KeyId"])
    out = io.StringIO()
    assert run_check(out=out) == 1
    assert f"{meta['Arn']} is Disabled" in out.getvalue()
