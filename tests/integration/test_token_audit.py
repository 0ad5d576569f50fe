"""The demo's encrypted mode and its token search (``demo/token_audit.py``), without Airflow: a local
deployment's endpoint, moto's KMS and SQS, one ECS task carrying a sealed workload and one a plain one.

The search must find a plain token wherever it is (DescribeTasks, event bodies, a log file, also by a part
of it) and open a sealed command with KMS to learn its token; otherwise the e2e test's "found nothing"
would prove nothing.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import boto3

from ecs_executor.core.envelope import KMS_CONTEXT, DataKey, seal, try_context
from ecs_executor.demo.deployment import LocalDeployment
from ecs_executor.demo.task_definitions import CLUSTER, CONTAINER, REGION, TASK_FAMILY
from ecs_executor.demo.token_audit import WORKLOAD_KEY_ALIAS, audit_deployment

PREFIX = "AIRFLOW__AWS_ECS_EXECUTOR__"


def _token() -> str:
    return (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + secrets.token_urlsafe(60) + "." + secrets.token_urlsafe(32)
    )


def _workload(token: str, task_id: str) -> str:
    ti = {"dag_id": "d", "task_id": task_id, "run_id": "r", "map_index": -1, "try_number": 1}
    return json.dumps({"token": token, "ti": ti})


def _client(service: str, url: str) -> object:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_encrypted_deployment_and_the_token_search(tmp_path: Path) -> None:
    stack = LocalDeployment(tmp_path / "stack", tracking="events", encrypt=True)
    try:
        stack.start_local_ecs()
        env = stack.env()
        assert env[PREFIX + "WORKLOAD_KMS_KEY"] == stack.kms_key_arn
        assert env["AWS_ENDPOINT_URL_KMS"] == stack.sqs_url
        kms = _client("kms", stack.sqs_url)
        described = kms.describe_key(KeyId=WORKLOAD_KEY_ALIAS)["KeyMetadata"]  # type: ignore[attr-defined]
        assert described["Arn"] == stack.kms_key_arn and described["KeyState"] == "Enabled"

        generated = kms.generate_data_key(  # type: ignore[attr-defined]
            KeyId=stack.kms_key_arn, KeySpec="AES_256", EncryptionContext=dict(KMS_CONTEXT)
        )
        key = DataKey(
            generated["Plaintext"], generated["CiphertextBlob"], stack.kms_key_arn, time.monotonic() + 60
        )
        sealed_token, plain_token = _token(), _token()
        sealed_json = _workload(sealed_token, "sealed")
        envelope = seal(sealed_json, key, try_context(json.loads(sealed_json)["ti"]))
        ecs = _client("ecs", stack.ecs_url)
        arns = {}
        for name, last in (("sealed", envelope), ("plain", _workload(plain_token, "plain"))):
            overrides = {"containerOverrides": [{"name": CONTAINER, "command": ["true", last]}]}
            answer = ecs.run_task(  # type: ignore[attr-defined]
                cluster=CLUSTER, taskDefinition=TASK_FAMILY, launchType="EC2", overrides=overrides
            )
            arns[name] = answer["tasks"][0]["taskArn"]
        deadline = time.monotonic() + 30
        while sum('"STOPPED"' in body for body in stack.event_bodies) < 2:
            assert time.monotonic() < deadline, stack.event_bodies
            time.sleep(0.2)
        # A log line holding only the signature part of the plain token still counts.
        (stack.logs / "leaky.log").write_text(f"Authorization: ...{plain_token.rsplit('.', 1)[1]}\n")

        found = audit_deployment(stack)
        assert found.tokens == {arns["sealed"]: sealed_token, arns["plain"]: plain_token}
        assert found.sealed == {arns["sealed"]}
        assert found.searched["DescribeTasks answers"] == 2 and found.searched["log files"] >= 2
        assert not [where for where, arn in found.leaks if arn == arns["sealed"]], found.leaks
        plain = {where for where, arn in found.leaks if arn == arns["plain"]}
        assert f"DescribeTasks {arns['plain']}" in plain
        assert f"log {stack.logs / 'leaky.log'}" in plain
        assert any(where.startswith("event body #") for where in plain), plain
        assert "sighting" in found.summary()
    finally:
        stack.stop()
