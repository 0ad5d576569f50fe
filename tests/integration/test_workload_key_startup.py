"""The executor's start-up with ``workload_kms_key``: one kms:DescribeKey against moto's KMS (server mode).

A key that cannot seal stops the start with one message naming the option and its environment variable;
KMS unreachable or DescribeKey denied only warns. With a usable key, tasks launch with sealed commands.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from typing import Any

import boto3
import pytest

from ecs_executor.facade.startup import ExecutorStartupError
from ecs_executor.request.run_task import SEALED_COMMAND
from tests.conftest import REGION, SECRET_TOKEN, Driver, make_workload, moto_tasks
from tests.support.kms_proxy import StrictKmsProxy

pytestmark = pytest.mark.usefixtures("moto_manual_lifecycle")
OPTION = "[aws_ecs_executor] workload_kms_key (AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY)"


@pytest.fixture
def kms(moto_url: str) -> Any:
    return boto3.client("kms", endpoint_url=moto_url, region_name=REGION)


def new_key(kms: Any, **kwargs: Any) -> tuple[str, str]:
    """A fresh key (id) and an alias naming it."""
    key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
    alias = f"alias/wl-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id, alias


def refused(configure: Any, cluster: str, new_executor: Any, key: str) -> str:
    configure(cluster, workload_kms_key=key)
    with pytest.raises(ExecutorStartupError) as err:
        new_executor()
    message = str(err.value)
    assert message.startswith(f"ECS executor start-up check failed: {OPTION} = {key!r}: "), message
    return message


def test_a_missing_key_stops_the_start(configure, ecs_cluster, new_executor) -> None:
    assert "KMS has no such key (NotFoundException" in refused(
        configure, ecs_cluster, new_executor, "alias/does-not-exist"
    )


def test_a_disabled_key_stops_the_start(kms, configure, ecs_cluster, new_executor) -> None:
    key_id, alias = new_key(kms)
    kms.disable_key(KeyId=key_id)
    assert "the key is Disabled; enable it" in refused(configure, ecs_cluster, new_executor, alias)


def test_a_key_pending_deletion_stops_the_start(kms, configure, ecs_cluster, new_executor) -> None:
    key_id, _ = new_key(kms)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert "the key is PendingDeletion" in refused(configure, ecs_cluster, new_executor, key_id)


def test_a_signing_key_stops_the_start(kms, configure, ecs_cluster, new_executor) -> None:
    _, alias = new_key(kms, KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")
    message = refused(configure, ecs_cluster, new_executor, alias)
    assert "RSA_2048 key for SIGN_VERIFY" in message and "ENCRYPT_DECRYPT" in message


def kms_at(monkeypatch: pytest.MonkeyPatch, moto_url: str, kms_url: str) -> None:
    """The test connection, with KMS somewhere else than ECS (its per-service endpoint)."""
    extra = {
        "endpoint_url": moto_url,
        "region_name": REGION,
        "service_config": {"kms": {"endpoint_url": kms_url}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", json.dumps({"conn_type": "aws", "extra": extra}))


def test_kms_unreachable_at_start_up_only_warns(
    configure, ecs_cluster, new_executor, moto_url, monkeypatch, caplog
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    configure(ecs_cluster, workload_kms_key="alias/anything")
    kms_at(monkeypatch, moto_url, closed)
    with caplog.at_level(logging.WARNING, logger="ecs_executor.facade.startup"):
        executor = new_executor()
    assert executor.settings.workload_kms_key == "alias/anything"
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "ecs_executor.facade.startup"]
    assert warning.startswith(f"Could not check {OPTION} = 'alias/anything' with kms:DescribeKey: ")


def test_describe_key_denied_at_start_up_only_warns(
    kms, configure, ecs_cluster, new_executor, moto_url, monkeypatch, caplog
) -> None:
    _, alias = new_key(kms)
    proxy = StrictKmsProxy(moto_url).start()
    proxy.denied.add("DescribeKey")
    try:
        configure(ecs_cluster, workload_kms_key=alias)
        kms_at(monkeypatch, moto_url, proxy.url)
        with caplog.at_level(logging.WARNING, logger="ecs_executor.facade.startup"):
            new_executor()
    finally:
        proxy.stop()
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "ecs_executor.facade.startup"]
    assert "AccessDeniedException" in warning and "kms:DescribeKey" in warning


def test_with_a_usable_key_tasks_launch_sealed(kms, configure, ecs_cluster, new_executor) -> None:
    _, alias = new_key(kms)
    configure(ecs_cluster, workload_kms_key=alias)
    executor = new_executor()
    driver = Driver(executor)
    workload = make_workload("sealed")
    executor.queue_workload(workload, session=None)
    driver.until(lambda: bool(moto_tasks(ecs_cluster)), timeout=30)
    (task,) = moto_tasks(ecs_cluster).values()
    (override,) = task.overrides["containerOverrides"]
    assert override["command"][:-1] == SEALED_COMMAND and override["command"][-1].startswith("ecsw1.")
    assert SECRET_TOKEN not in json.dumps(task.overrides)
