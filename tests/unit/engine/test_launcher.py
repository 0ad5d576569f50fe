"""The launcher against a fake ECS client (requests checked against botocore's model), no network."""

from __future__ import annotations

import time

import pytest

from ecs_executor import messages as m
from ecs_executor.core.lifecycle import TryState
from ecs_executor.core.task_status import Phase
from tests.support.fake_ecs import FakeEcs, client_error, launch, of, results_until, running_engine


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ecs_executor.core.relaunch.RELAUNCH_BASE_SECONDS", 0.01)
    monkeypatch.setattr("ecs_executor.core.relaunch.RETRY_BASE_SECONDS", 0.01)


def test_a_launch_walks_the_lifecycle_to_done() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        (t,) = engine.ctx.registry.by_key.values()
        assert t.state is TryState.PENDING and t.kwargs is None and t.source is not None
        fake.set_status(t.arn or "", "RUNNING")
        results_until(engine, lambda seen: any(isinstance(r, m.StateChanged) for r in seen))
        assert t.state is TryState.RUNNING and t.source is None  # a task that ran is never relaunched
        fake.set_status(t.arn or "", "STOPPED", exit_code=0)
        done = results_until(
            engine,
            lambda seen: any(isinstance(r, m.StateChanged) and r.status.phase == Phase.SUCCESS for r in seen),
        )
        assert t.state is TryState.DONE and engine.tracked_count() == 0
        assert [type(r).__name__ for r in done] == ["StateChanged"]


def test_throttles_and_5xx_retry_the_same_request_and_use_no_attempt() -> None:
    fake = FakeEcs()
    fake.run_task_script = [
        lambda _: client_error("ThrottlingException", "Rate exceeded"),
        lambda _: client_error("ServerException", "", 500),
    ]
    with running_engine(fake) as engine:
        launch(engine, "a")
        (launched,) = [r for r in results_until(engine, of(m.Launched, "a")) if isinstance(r, m.Launched)]
        assert launched.attempt == 1
    tokens = [r["clientToken"] for r in fake.requests("run_task")]
    assert len(tokens) == 3 and len(set(tokens)) == 1  # lost reply -> same token -> same task


def test_a_capacity_failure_relaunches_with_a_new_token() -> None:
    fake = FakeEcs()
    fake.run_task_script = [lambda _: {"tasks": [], "failures": [{"arn": "x", "reason": "RESOURCE:MEMORY"}]}]
    with running_engine(fake) as engine:
        launch(engine, "a")
        seen = results_until(engine, of(m.Launched, "a"))
        assert [type(r).__name__ for r in seen] == ["Relaunching", "Launched"]
        assert engine.counters["relaunches_capacity"] == 1
    first, second = (r["clientToken"] for r in fake.requests("run_task"))
    assert first.endswith("-1") and second.endswith("-2") and first[:-2] == second[:-2]


def test_two_queueings_of_the_same_try_use_different_tokens() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        launch(engine, "a")  # a deferred task resuming: same key
        results_until(engine, of(m.Launched, "a"))
    first, second = (r["clientToken"] for r in fake.requests("run_task"))
    assert first != second


def test_bad_executor_config_fails_only_that_task_without_a_call() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "bad", {"count": 2})
        launch(engine, "good")
        seen = results_until(engine, lambda s: of(m.LaunchFailed, "bad")(s) and of(m.Launched, "good")(s))
    (failed,) = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert failed.kind == "invalid_config" and "must not set count" in failed.reason
    assert len(fake.requests("run_task")) == 1


@pytest.mark.parametrize(
    ("default", "expected"), [([{"capacityProvider": "FARGATE_SPOT", "weight": 1}], None), ([], "FARGATE")]
)
def test_no_launch_target_uses_the_cluster_default_or_fargate(default, expected) -> None:
    fake = FakeEcs()
    fake.cluster_defaults["main"] = default
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
    (request,) = fake.requests("run_task")
    assert request.get("launchType") == expected and "capacityProviderStrategy" not in request
    assert len(fake.requests("describe_clusters")) == 1  # read once, at start


@pytest.mark.parametrize(
    ("default", "config", "refused"),
    [
        ([], {"gpu": 1}, "executor_config: gpu = 1: Fargate has no GPUs"),  # our Fargate fallback
        ([{"capacityProvider": "FARGATE_SPOT"}], {"memory": 3000}, "memory = 3000 needs cpu too on Fargate"),
        ([{"capacityProvider": "gpu-asg"}], {"ephemeral_storage": 30}, "applies only to Fargate tasks"),
        ([{"capacityProvider": "gpu-asg"}], {"gpu": 1, "memory": 3000}, None),
        ([{"capacityProvider": "FARGATE"}], {"cpu": 1024, "memory": 2048, "ephemeral_storage": 30}, None),
    ],
)
def test_typed_keys_meet_the_target_the_cluster_default_decides(default, config, refused) -> None:
    fake = FakeEcs()
    fake.cluster_defaults["main"] = default
    with running_engine(fake) as engine:
        launch(engine, "typed", config)
        launch(engine, "plain")
        done = of(m.LaunchFailed, "typed") if refused else of(m.Launched, "typed")
        seen = results_until(engine, lambda s: done(s) and of(m.Launched, "plain")(s))
    failed = [r for r in seen if isinstance(r, m.LaunchFailed)]
    if refused:
        assert failed[0].kind == "invalid_config" and refused in failed[0].reason
        assert len(fake.requests("run_task")) == 1  # only the plain task's
    else:
        assert failed == [] and len(fake.requests("run_task")) == 2


def test_a_requeue_while_the_previous_launch_waits_replaces_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The previous queueing's relaunch must not start a second ECS task for the same try."""
    monkeypatch.setattr("ecs_executor.core.relaunch.RELAUNCH_BASE_SECONDS", 1.0)
    fake = FakeEcs()
    fake.run_task_script = [lambda _: {"tasks": [], "failures": [{"arn": "x", "reason": "RESOURCE:CPU"}]}]
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Relaunching, "a"))
        launch(engine, "a")  # Airflow queued the try again meanwhile
        results_until(engine, of(m.Launched, "a"))
        time.sleep(1.5)  # past the old relaunch's backoff
        assert engine.tracked_count() == 1
    assert len(fake.requests("run_task")) == 2 and len(fake.tasks) == 1


def test_capacity_waits_do_not_spend_the_attempts_of_other_failures() -> None:
    fake = FakeEcs()
    no_room = {"tasks": [], "failures": [{"arn": "x", "reason": "RESOURCE:MEMORY"}]}
    fake.run_task_script = [lambda _: no_room, lambda _: no_room]
    with running_engine(fake, max_run_task_attempts="2") as engine:
        launch(engine, "a")
        results_until(engine, lambda s: any(isinstance(r, m.Launched) and r.attempt == 3 for r in s))
        (arn,) = list(fake.tasks)
        reason = "Timeout waiting for network interface provisioning to complete."
        fake.set_status(arn, "STOPPED", stop_code="TaskFailedToStart", reason=reason)
        # Two capacity waits, then one start failure: still one relaunch left of max_run_task_attempts=2.
        results_until(engine, lambda s: any(isinstance(r, m.Launched) and r.attempt == 4 for r in s))


def test_a_revoke_answered_by_a_capacity_failure_ends_quietly() -> None:
    fake = FakeEcs()
    fake.run_task_delay = 0.5
    fake.run_task_script = [lambda _: {"tasks": [], "failures": [{"arn": "x", "reason": "RESOURCE:CPU"}]}]
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, lambda s: bool(fake.requests("run_task")), timeout=5)
        engine.channel.send(m.Stop("a", "revoked"))
        time.sleep(1.0)
        assert engine.tracked_count() == 0 and engine.counters["relaunches"] == 0
    assert len(fake.requests("run_task")) == 1


def test_credentials_fixed_after_a_hopeless_spell_heal_the_next_launch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ecs_executor.engine.calls.CREDENTIALS_HOPELESS_SECONDS", 0.0)
    fake = FakeEcs()
    rejected = client_error("UnrecognizedClientException", "The security token is invalid.")
    fake.run_task_script = [lambda _: rejected] * 2
    with running_engine(fake) as engine:
        launch(engine, "a")
        (failed,) = [
            r for r in results_until(engine, of(m.LaunchFailed, "a")) if isinstance(r, m.LaunchFailed)
        ]
        assert failed.kind == "credentials"
        launch(engine, "b")  # the credential source was fixed meanwhile: the rebuilt client works
        results_until(engine, of(m.Launched, "b"))
