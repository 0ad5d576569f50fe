"""engine/data_keys.py against a fake KMS client (requests checked against botocore's model), with a
clock the test moves; and the launcher sealing commands with it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.core.envelope import KMS_CONTEXT, open_sealed, parse
from ecs_executor.core.relaunch import RelaunchPolicy
from ecs_executor.engine.context import Context
from ecs_executor.engine.data_keys import DataKeys, DataKeyUnavailable
from ecs_executor.request.run_task import SEALED_COMMAND, TryIdentity, new_launch_id
from tests.support.fake_ecs import OPTIONS, FakeEcs, launch, of, results_until, running_engine
from tests.support.fake_kms import FakeKms, kms_error

KEY = "alias/workloads"
ENV = "AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ecs_executor.engine.data_keys.backoff", lambda failures, rng=None: 0.001)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def data_keys(fake: FakeKms, clock: Clock, **options: Any) -> tuple[DataKeys, Context]:
    settings = settings_from_mapping({**OPTIONS, "workload_kms_key": KEY, **options})
    ctx = Context(settings, m.Channel(), RelaunchPolicy(3, 600))
    return DataKeys(ctx, fake.factory, clock=clock), ctx


async def test_many_launches_share_one_generate_data_key_per_lifetime() -> None:
    fake, clock = FakeKms(), Clock()
    keys, ctx = data_keys(fake, clock)
    fake.delay = 0.01
    first = await asyncio.gather(*(keys.current() for _ in range(50)))
    assert len({id(k) for k in first}) == 1 and fake.generated() == 1
    ((_, request),) = fake.calls
    assert request == {"KeyId": KEY, "KeySpec": "AES_256", "EncryptionContext": dict(KMS_CONTEXT)}
    assert first[0].expires_at == 1000.0 + 300.0 and len(first[0].plaintext) == 32
    clock.now += 269  # still more than a tenth of the lifetime left
    assert await keys.current() is first[0] and fake.generated() == 1
    assert ctx.counters["kms_calls"] == 1 and ctx.counters["kms_failures"] == 0


async def test_the_next_key_is_asked_for_while_the_current_one_still_seals() -> None:
    fake, clock = FakeKms(), Clock()
    keys, _ = data_keys(fake, clock, workload_data_key_seconds="100")
    old = await keys.current()
    fake.gate = asyncio.Event()  # KMS is slow to answer the refresh
    clock.now += 95
    assert keys.held() is old and await keys.current() is old  # no launch waits for the refresh
    await asyncio.sleep(0.01)
    assert fake.generated() == 2  # one refresh for both
    fake.gate.set()
    await asyncio.sleep(0.01)
    new = keys.held()
    assert new is not None and new is not old and new.expires_at == clock.now + 100


async def test_an_expired_key_never_seals_launches_wait_for_the_next() -> None:
    fake, clock = FakeKms(), Clock()
    keys, _ = data_keys(fake, clock)
    old = await keys.current()
    fake.gate = asyncio.Event()
    clock.now += 300  # expired, and KMS has not answered yet
    assert keys.held() is None
    waiting = asyncio.ensure_future(keys.current())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    fake.gate.set()
    assert (await waiting) is not old


async def test_a_key_that_arrives_after_its_lifetime_never_seals_kms_is_asked_again() -> None:
    fake, clock = FakeKms(), Clock()
    keys, ctx = data_keys(fake, clock, workload_data_key_seconds="60")

    def slow(request: dict[str, Any]) -> Any:  # KMS answers after 70 s: the key is expired on arrival
        clock.now += 70
        return {"Plaintext": os.urandom(32), "CiphertextBlob": b"late", "KeyId": "arn:aws:kms:late"}

    fake.script = [slow]
    key = await keys.current()
    assert fake.generated() == 2 and key.expires_at > clock.now
    assert ctx.counters["kms_calls"] == 2 and keys.last_failure is None


async def test_throttling_5xx_and_lost_connections_are_waited_out() -> None:
    fake, clock = FakeKms(), Clock()
    keys, ctx = data_keys(fake, clock)
    fake.script = [
        kms_error("ThrottlingException", "Rate exceeded"),
        kms_error("KMSInternalException", "", 500),
        EndpointConnectionError(endpoint_url="https://kms.us-east-1.amazonaws.com"),
        kms_error("ThrottlingException", "Rate exceeded"),
    ]
    key = await asyncio.gather(keys.current(), keys.current())
    assert key[0] is key[1] and fake.generated() == 5
    assert ctx.counters["kms_calls"] == 5 and ctx.counters["kms_failures"] == 4
    notes = [r for r in ctx.channel.drain_results() if isinstance(r, m.EngineNote)]
    assert len(notes) == 1 and "after 3 attempts" in notes[0].message and "launches wait" in notes[0].message


async def test_a_refusal_fails_every_waiter_and_is_remembered_for_a_minute() -> None:
    fake, clock = FakeKms(), Clock()
    keys, ctx = data_keys(fake, clock)
    fake.script = [kms_error("DisabledException", f"{KEY} is disabled.")]
    outcomes = await asyncio.gather(*(keys.current() for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, DataKeyUnavailable) for o in outcomes) and fake.generated() == 1
    reason = str(outcomes[0])
    for part in (ENV, repr(KEY), "DisabledException", "is disabled", "enable the key"):
        assert part in reason
    clock.now += 59
    with pytest.raises(DataKeyUnavailable, match="DisabledException"):
        await keys.current()
    assert fake.generated() == 1  # remembered: KMS is not asked again
    clock.now += 2
    assert (await keys.current()).plaintext and fake.generated() == 2  # asked again after a minute
    assert ctx.counters["kms_failures"] == 1


async def test_a_refused_refresh_drops_the_held_key() -> None:
    """The key was disabled: what it seals would not decrypt in the worker either."""
    fake, clock = FakeKms(), Clock()
    keys, _ = data_keys(fake, clock)
    await keys.current()
    fake.script = [kms_error("KMSInvalidStateException", "pending deletion")]
    clock.now += 280
    assert keys.held() is not None  # refresh started in the background
    await asyncio.sleep(0.01)
    assert keys.held() is None
    with pytest.raises(DataKeyUnavailable, match="KMSInvalidStateException"):
        await keys.current()


async def test_rejected_credentials_rebuild_the_client() -> None:
    fake, clock = FakeKms(), Clock()
    keys, _ = data_keys(fake, clock)
    fake.script = [
        kms_error("ExpiredTokenException", "The security token included in the request is expired")
    ]
    await keys.current()
    assert (fake.clients_built, fake.closed, fake.generated()) == (2, 1, 2)
    await keys.close()
    assert fake.closed == 2


def test_data_keys_need_the_option() -> None:
    settings = settings_from_mapping(OPTIONS)
    with pytest.raises(ValueError, match="workload_kms_key"):
        DataKeys(Context(settings, m.Channel(), RelaunchPolicy(3, 600)), FakeKms().factory)


# ---- the launcher ------------------------------------------------------------------------------------


def sealed_request(fake_ecs: FakeEcs) -> tuple[list[str], dict[str, Any]]:
    (request,) = fake_ecs.requests("run_task")
    (override,) = request["overrides"]["containerOverrides"]
    return override["command"], request


def test_the_command_carries_only_the_sealed_workload_and_opens_for_its_try() -> None:
    ecs, kms = FakeEcs(), FakeKms()
    with running_engine(ecs, kms_factory=kms.factory, workload_kms_key=KEY) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        assert engine.data_keys is not None
        key = engine.data_keys.held()
    command, _ = sealed_request(ecs)
    assert command[:-1] == SEALED_COMMAND and "secret" not in command[-1] and "token" not in command[-1]
    assert key is not None and kms.generated() == 1
    assert (kms.clients_built, kms.closed) == (1, 1)  # built on the engine's loop, closed at its end
    sealed = parse(command[-1])
    assert sealed.wrapped == key.wrapped and sealed.kms_context == dict(KMS_CONTEXT)
    assert (sealed.context["dag_id"], sealed.context["task_id"], sealed.context["try_number"]) == (
        "dag",
        "a",
        "1",
    )
    assert open_sealed(sealed, key.plaintext) == '{"token": "secret"}'


def test_without_the_option_the_workload_travels_as_today_and_kms_is_never_built() -> None:
    ecs, kms = FakeEcs(), FakeKms()
    with running_engine(ecs, kms_factory=kms.factory) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        assert engine.data_keys is None
    command, _ = sealed_request(ecs)
    assert command[-1] == '{"token": "secret"}' and kms.clients_built == 0


def test_a_refused_key_fails_the_waiting_launches_with_kind_kms_and_no_run_task() -> None:
    ecs, kms = FakeEcs(), FakeKms()
    kms.script = [kms_error("AccessDeniedException", "not authorized to perform kms:GenerateDataKey")]
    with running_engine(ecs, kms_factory=kms.factory, workload_kms_key=KEY) as engine:
        launch(engine, "a")
        launch(engine, "b")
        seen = results_until(engine, lambda s: of(m.LaunchFailed, "a")(s) and of(m.LaunchFailed, "b")(s))
    failed = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert {f.kind for f in failed} == {"kms"} and ecs.requests("run_task") == []
    assert all(ENV in f.reason and "AccessDeniedException" in f.reason for f in failed)
    assert engine.counters["kms_failures"] == 1


def test_a_try_revoked_while_waiting_for_a_key_never_launches() -> None:
    ecs, kms = FakeEcs(), FakeKms()
    kms.script = [kms_error("ThrottlingException", "Rate exceeded")] * 100_000  # KMS throttles for long
    with running_engine(ecs, kms_factory=kms.factory, workload_kms_key=KEY) as engine:
        launch(engine, "a")
        time.sleep(0.3)
        engine.channel.send(m.Stop("a", "Airflow revoked the task"))
        time.sleep(0.5)
        assert engine.tracked_count() == 0
        kms.script.clear()  # KMS answers again: nothing for the revoked try
        launch(engine, "b")
        results_until(engine, of(m.Launched, "b"))
    assert [r["tags"][1]["value"] for r in ecs.requests("run_task")] == ["b"]


def test_a_try_whose_token_expires_while_kms_gives_no_key_fails_naming_kms() -> None:
    ecs, kms = FakeEcs(), FakeKms()
    kms.script = [kms_error("ThrottlingException", "Rate exceeded")] * 100_000
    with running_engine(ecs, kms_factory=kms.factory, workload_kms_key=KEY) as engine:
        engine.channel.send(
            m.Launch(
                "a",
                TryIdentity("dag", "a", "run", 1),
                '{"token": "secret"}',
                None,
                time.monotonic() + 0.5,
                launch_id=new_launch_id(),
            )
        )
        seen = results_until(engine, of(m.LaunchFailed, "a"))
    (failed,) = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert failed.kind == "kms" and ecs.requests("run_task") == []
    assert "token expired" in failed.reason and "ThrottlingException: Rate exceeded" in failed.reason
    assert ENV in failed.reason or "workload_kms_key" in failed.reason


def test_a_sealed_workload_over_ecss_limit_fails_only_that_launch() -> None:
    ecs, kms = FakeEcs(), FakeKms()
    huge = json.dumps({"token": os.urandom(6000).hex()})  # incompressible: sealed, over 8,192 characters
    with running_engine(ecs, kms_factory=kms.factory, workload_kms_key=KEY) as engine:
        for name, workload in (("huge", huge), ("small", '{"token": "secret"}')):
            identity = TryIdentity("dag", name, "run", 1)
            engine.channel.send(
                m.Launch(name, identity, workload, None, time.monotonic() + 600, launch_id=new_launch_id())
            )
        seen = results_until(engine, lambda s: of(m.LaunchFailed, "huge")(s) and of(m.Launched, "small")(s))
    (failed,) = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert failed.kind == "invalid_config" and "over ECS's limit of 8192" in failed.reason
    assert len(ecs.requests("run_task")) == 1


async def test_a_teams_refusal_names_the_teams_env_var() -> None:
    fake, clock = FakeKms(), Clock()
    settings = settings_from_mapping({**OPTIONS, "workload_kms_key": KEY})
    keys = DataKeys(
        Context(settings, m.Channel(), RelaunchPolicy(3, 600)), fake.factory, team_name="teamA", clock=clock
    )
    fake.script = [kms_error("NotFoundException", f"Alias {KEY} is not found.")]
    with pytest.raises(DataKeyUnavailable) as err:
        await keys.current()
    assert "AIRFLOW__TEAMA___AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY" in str(err.value)
    assert "no such key or alias" in str(err.value)
