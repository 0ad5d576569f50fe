"""Sealed workloads against moto's KMS in server mode (behind a proxy that answers as strictly as KMS):
the engine's data keys, what ECS receives, and the failures KMS can answer mid-run. ECS is the fake
client (tests/support/fake_ecs.py); KMS is reached through the Airflow connection like in production."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ecs_executor import messages as m
from ecs_executor.core.envelope import KMS_CONTEXT, WORKLOAD_COMMAND, identity_matches, parse
from ecs_executor.facade.admission import to_launch
from ecs_executor.request.run_task import SEALED_COMMAND
from ecs_executor.worker.unseal import main as worker_main
from ecs_executor.worker.unseal import unseal
from tests.conftest import REGION, SECRET_TOKEN, make_workload
from tests.support.fake_ecs import FakeEcs, of, results_until, running_engine
from tests.support.kms_proxy import StrictKmsProxy

CONN = "aws_kms_test"


@pytest.fixture
def kms(moto_url: str) -> Any:
    return boto3.client("kms", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture
def kms_key(kms: Any) -> str:
    """A fresh symmetric key, named by an alias (what deploy/ecs-executor.yaml hands out)."""
    key_id = kms.create_key(Description="airflow workloads")["KeyMetadata"]["KeyId"]
    alias = f"alias/workloads-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return alias


@pytest.fixture
def kms_proxy(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StrictKmsProxy]:
    """KMS behind the proxy, reached through an Airflow connection whose extra names KMS's endpoint."""
    proxy = StrictKmsProxy(moto_url).start()
    extra = {"region_name": REGION, "service_config": {"kms": {"endpoint_url": proxy.url}}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({"conn_type": "aws", "extra": extra}))
    yield proxy
    proxy.stop()


class Clock:
    """The engine's data key clock, moved by the test (a lifetime is at least 60 s)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def sealed_engine(ecs: FakeEcs, key: str, **options: Any) -> Any:
    return running_engine(ecs, workload_kms_key=key, conn_id=CONN, **options)


def send(engine: Any, name: str) -> tuple[Any, str]:
    """A real ExecuteTask workload (with SECRET_TOKEN), queued as the executor would; its key and JSON."""
    key, launch, _ = to_launch(make_workload(name), time.monotonic() + 600)
    engine.channel.send(launch)
    return key, launch.workload_json


def launched(engine: Any, keys: list[Any]) -> list[m.Result]:
    return results_until(engine, lambda seen: all(of(m.Launched, k)(seen) for k in keys), timeout=30)


def commands(ecs: FakeEcs) -> list[str]:
    return [r["overrides"]["containerOverrides"][0]["command"] for r in ecs.requests("run_task")]


def test_one_data_key_per_lifetime_and_the_command_opens_only_with_kms(kms, kms_key, kms_proxy) -> None:
    ecs, clock = FakeEcs(), Clock()
    with sealed_engine(ecs, kms_key) as engine:
        engine.data_keys.clock = clock
        first = [send(engine, f"a{i}") for i in range(20)]
        launched(engine, [k for k, _ in first])
        assert kms_proxy.seen["GenerateDataKey"] == 1  # twenty launches, one data key
        clock.offset += 300  # the lifetime is over: the next launch needs a new key
        second = [send(engine, f"b{i}") for i in range(5)]
        launched(engine, [k for k, _ in second])
        assert kms_proxy.seen["GenerateDataKey"] == 2
        assert (engine.counters["kms_calls"], engine.counters["kms_failures"]) == (2, 0)
    sent = commands(ecs)
    assert len(sent) == 25 and all(c[:-1] == SEALED_COMMAND for c in sent)
    assert not any(SECRET_TOKEN in json.dumps(r) for r in ecs.requests("run_task"))
    wrapped = [parse(c[-1]).wrapped for c in sent]
    assert len(set(wrapped[:20])) == 1 and len(set(wrapped[20:])) == 1 and wrapped[0] != wrapped[20]
    # The worker's way back (ecs_executor.worker, with moto's KMS): Decrypt with the purpose context, open,
    # check the try, exec Airflow's command with the workload.
    for command, (_, workload_json) in zip(sent, first + second, strict=True):
        assert unseal(command[-1], make_client=lambda: kms) == workload_json
        assert identity_matches(workload_json, parse(command[-1]).context)
    execs: list[list[str]] = []
    assert worker_main(sent[0][3:], make_client=lambda: kms, execvp=lambda _, argv: execs.append(argv)) == 0
    assert execs == [[*WORKLOAD_COMMAND, first[0][1]]]
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=wrapped[0])  # without the purpose context KMS does not unwrap it
    assert parse(sent[0][-1]).kms_context == dict(KMS_CONTEXT)


def test_a_key_disabled_mid_run_fails_the_waiting_launches_then_heals(kms, kms_key, kms_proxy) -> None:
    ecs, clock = FakeEcs(), Clock()
    with sealed_engine(ecs, kms_key) as engine:
        engine.data_keys.clock = clock
        ok, _ = send(engine, "before")
        launched(engine, [ok])
        key_id = kms.describe_key(KeyId=kms_key)["KeyMetadata"]["KeyId"]
        kms.disable_key(KeyId=key_id)
        clock.offset += 300
        refused = [send(engine, f"refused{i}")[0] for i in range(3)]
        seen = results_until(engine, lambda s: all(of(m.LaunchFailed, k)(s) for k in refused), timeout=30)
        failed = [r for r in seen if isinstance(r, m.LaunchFailed)]
        assert {f.kind for f in failed} == {"kms"}
        for f in failed:
            assert "DisabledException" in f.reason and kms_key in f.reason
            assert "AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY" in f.reason and "enable the key" in f.reason
        assert kms_proxy.seen["GenerateDataKey"] == 2  # one refusal for all of them
        kms.enable_key(KeyId=key_id)
        clock.offset += 61  # the refusal is forgotten after a minute
        healed, _ = send(engine, "after")
        launched(engine, [healed])
    assert len(ecs.requests("run_task")) == 2


def test_throttled_and_failing_kms_makes_launches_wait_then_succeed(kms_key, kms_proxy) -> None:
    # Each of our attempts is four botocore attempts ("standard" mode, max_attempts 3 retries: like the
    # ECS client): two attempts throttled through, one failing with KMS's 500s, the fourth answered.
    kms_proxy.throttle_next = 8
    kms_proxy.unavailable_next = 4
    ecs = FakeEcs()
    with sealed_engine(ecs, kms_key) as engine:
        keys = [send(engine, f"w{i}")[0] for i in range(10)]
        seen = launched(engine, keys)
        assert not [r for r in seen if isinstance(r, m.LaunchFailed)]
        assert engine.counters["kms_failures"] == 3 and engine.counters["kms_calls"] == 4
    assert kms_proxy.seen["GenerateDataKey"] == 13 and len(ecs.requests("run_task")) == 10


def test_the_kms_client_honours_aws_endpoint_url_kms(kms_key, moto_url, monkeypatch) -> None:
    """A connection without a KMS endpoint: botocore's AWS_ENDPOINT_URL_KMS decides where KMS is."""
    proxy = StrictKmsProxy(moto_url).start()
    try:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps({"conn_type": "aws", "extra": {}}))
        monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", proxy.url)
        ecs = FakeEcs()
        with sealed_engine(ecs, kms_key) as engine:
            key, _ = send(engine, "a")
            launched(engine, [key])
        assert proxy.seen["GenerateDataKey"] == 1
    finally:
        proxy.stop()


def test_no_data_key_or_token_reaches_the_logs_even_at_debug(kms_key, kms_proxy, caplog) -> None:
    """botocore's DEBUG dumps hold GenerateDataKey's answer (the plaintext key) and RunTask's parameters."""
    ecs = FakeEcs()
    loggers = ("botocore", "aiobotocore", "ecs_executor")
    for name in loggers:
        caplog.set_level(logging.DEBUG, logger=name)
    with sealed_engine(ecs, kms_key) as engine:
        key, _ = send(engine, "a")
        launched(engine, [key])
        data_key = engine.data_keys.held()
    assert data_key is not None
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GenerateDataKey" in text and "Response body" in text  # botocore did dump the answer
    for secret in (base64.b64encode(data_key.plaintext).decode(), repr(data_key.plaintext), SECRET_TOKEN):
        assert secret not in text
    assert repr(data_key.plaintext) not in repr(data_key)
