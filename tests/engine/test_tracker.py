"""The tracker against a fake ECS client: per-cluster sweeps, MISSING, triage of stopped tasks."""

from __future__ import annotations

import pytest

from ecs_executor import messages as m
from ecs_executor.states import Phase
from tests.engine.fake_ecs import FakeEcs, launch, of, results_until, running_engine


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ecs_executor.relaunch.RELAUNCH_BASE_SECONDS", 0.01)


def final(key: str):
    return lambda seen: any(
        isinstance(r, m.StateChanged) and r.key == key and r.status.phase.is_terminal for r in seen
    )


def test_each_task_is_described_on_its_own_cluster() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "home")
        launch(engine, "away", {"cluster": "other"})
        results_until(engine, lambda s: of(m.Launched, "home")(s) and of(m.Launched, "away")(s))
        results_until(engine, lambda s: len(fake.requests("describe_tasks")) >= 4, timeout=5)
        for arn in list(fake.tasks):
            fake.set_status(arn, "STOPPED", exit_code=0)
        seen = results_until(engine, lambda s: final("home")(s) and final("away")(s))
    assert {r.key for r in seen if isinstance(r, m.StateChanged) and r.status.phase == Phase.SUCCESS} == {
        "home",
        "away",
    }
    for request in fake.requests("describe_tasks"):
        assert all(f"/{request['cluster']}/" in arn for arn in request["tasks"])


def test_a_task_missing_three_sweeps_fails() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        fake.tasks.clear()
        seen = results_until(engine, final("a"))
    (changed,) = [r for r in seen if isinstance(r, m.StateChanged)]
    assert changed.status.phase == Phase.FAILED and "MISSING" in changed.status.reason


def test_an_adopted_unknown_arn_is_reported_not_adopted() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        engine.channel.send(m.Adopt("x", "arn:aws:ecs:us-east-1:123456789012:task/main/gone", "main"))
        (failed,) = [
            r for r in results_until(engine, of(m.AdoptionFailed, "x")) if isinstance(r, m.AdoptionFailed)
        ]
    assert "cluster 'main'" in failed.reason


def test_a_start_failure_that_heals_is_relaunched_and_one_that_does_not_is_failed() -> None:
    fake = FakeEcs()
    with running_engine(fake, max_run_task_attempts="3") as engine:
        launch(engine, "eni")
        launch(engine, "image")
        results_until(engine, lambda s: of(m.Launched, "eni")(s) and of(m.Launched, "image")(s))
        eni, image = list(fake.tasks)
        fake.set_status(
            eni,
            "STOPPED",
            stop_code="TaskFailedToStart",
            reason="Timeout waiting for network interface provisioning to complete.",
        )
        fake.set_status(
            image,
            "STOPPED",
            stop_code="TaskFailedToStart",
            reason="CannotPullContainerError: acme/x:1: not found",
        )
        seen = results_until(
            engine,
            lambda s: (
                final("image")(s)
                and any(isinstance(r, m.Launched) and r.key == "eni" and r.attempt == 2 for r in s)
            ),
        )
        # The relaunched task is a new ECS task whose versions start again at 1: it is still heard.
        fake.set_status(list(fake.tasks)[-1], "RUNNING")
        seen += results_until(
            engine, lambda s: any(isinstance(r, m.StateChanged) and r.key == "eni" for r in s)
        )
    (relaunching,) = [r for r in seen if isinstance(r, m.Relaunching)]
    assert relaunching.key == "eni" and relaunching.attempt == 2
    assert [r.status.phase for r in seen if isinstance(r, m.StateChanged) and r.key == "eni"] == [
        Phase.RUNNING
    ]
    (image_final,) = [r for r in seen if isinstance(r, m.StateChanged) and r.key == "image"]
    assert image_final.status.phase == Phase.FAILED and "will not heal" in image_final.status.reason


@pytest.mark.parametrize(("opted_in", "relaunched"), [(True, True), (False, False)])
def test_spot_before_the_container_ran_is_relaunched_only_when_opted_in(
    opted_in: bool, relaunched: bool
) -> None:
    fake = FakeEcs()
    with running_engine(fake, relaunch_on_spot_interruption=str(opted_in)) as engine:
        launch(engine, "spot")
        results_until(engine, of(m.Launched, "spot"))
        (arn,) = list(fake.tasks)
        fake.set_status(
            arn, "STOPPED", stop_code="SpotInterruption", reason="Your Spot Task was interrupted."
        )
        if relaunched:
            seen = results_until(
                engine, lambda s: any(isinstance(r, m.Launched) and r.attempt == 2 for r in s)
            )
            assert any(isinstance(r, m.Relaunching) and "interrupted by Spot" in r.reason for r in seen)
        else:
            (changed,) = [r for r in results_until(engine, final("spot")) if isinstance(r, m.StateChanged)]
            assert changed.status.phase == Phase.FAILED and "interrupted by Spot" in changed.status.reason
        assert engine.counters["spot_interruptions"] == 1
