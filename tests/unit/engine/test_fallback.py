"""Spot with an on-demand fallback, in the engine against the botocore-checked fake ECS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecs_executor import messages as m
from ecs_executor.core.task_status import Phase
from tests.support.fake_ecs import FakeEcs, launch, of, results_until, running_engine

SPOT = json.dumps([{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
NO_SPOT = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ecs_executor.core.relaunch.RELAUNCH_BASE_SECONDS", 0.01)
    monkeypatch.setattr("ecs_executor.core.relaunch.RETRY_BASE_SECONDS", 0.01)


def spot_short(fake: FakeEcs, fargate_failures: int = 0) -> None:
    """Every RunTask on FARGATE_SPOT meets no capacity; FARGATE only after ``fargate_failures`` refusals."""
    left = [fargate_failures]

    def answer(kwargs: dict[str, Any]) -> Any:
        fake.run_task_script.append(answer)
        if kwargs.get("capacityProviderStrategy") or left[0] > 0:
            left[0] -= 0 if kwargs.get("capacityProviderStrategy") else 1
            return {"tasks": [], "failures": [{"arn": "x", "reason": NO_SPOT}]}
        return None

    fake.run_task_script = [answer]


def targets(fake: FakeEcs) -> list[str]:
    return [
        r.get("launchType") or r["capacityProviderStrategy"][0]["capacityProvider"]
        for r in fake.requests("run_task")
    ]


def test_no_spot_capacity_moves_the_try_to_the_fallback_after_the_wait_and_it_stays() -> None:
    fake = FakeEcs()
    spot_short(fake, fargate_failures=1)
    options = {
        "capacity_provider_strategy": SPOT,
        "fallback_launch_type": "FARGATE",
        "fallback_after_seconds": "0.3",
    }
    with running_engine(fake, **options) as engine:
        launch(engine, "a")
        seen = results_until(engine, of(m.Launched, "a"))
        assert engine.counters["fallbacks"] == 1
    (launched,) = [r for r in seen if isinstance(r, m.Launched)]
    assert launched.on_fallback == "FARGATE (fallback: no FARGATE_SPOT capacity for 0 s)"
    assert launched.task_event() == (
        "ECS task launched",
        f"{launched.task_arn} on FARGATE (fallback: no FARGATE_SPOT capacity for 0 s) "
        f"(launch attempt {launched.attempt})",
    )
    moved = [r for r in seen if isinstance(r, m.Relaunching) and "fallback target FARGATE" in r.reason]
    assert len(moved) == 1 and moved[0].delay == 0.0
    sent = targets(fake)
    first = sent.index("FARGATE")
    assert first >= 2 and set(sent[:first]) == {"FARGATE_SPOT"} and set(sent[first:]) == {"FARGATE"}
    assert len(sent) - first == 2  # refused once on FARGATE too: stayed there
    on_fargate = fake.requests("run_task")[-1]
    assert on_fargate["platformVersion"] == "LATEST" and "capacityProviderStrategy" not in on_fargate
    waited = [r for r in seen if isinstance(r, m.Relaunching)]
    before = waited[: waited.index(moved[0])]
    assert all(r.delay <= 0.3 for r in before)  # woken when the fallback fell due, not a backoff later


@pytest.mark.parametrize("stop_code", ["SpotInterruption", "TerminationNotice"])
def test_a_spot_task_interrupted_before_its_container_ran_is_relaunched_on_the_fallback_at_once(
    stop_code: str,
) -> None:
    fake = FakeEcs()
    options = {"capacity_provider_strategy": SPOT, "fallback_launch_type": "FARGATE"}
    with running_engine(fake, **options) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        (arn,) = list(fake.tasks)
        fake.set_status(arn, "STOPPED", stop_code=stop_code, reason="Your Spot Task was interrupted.")
        seen = results_until(engine, lambda s: any(isinstance(r, m.Launched) and r.attempt == 2 for r in s))
        assert engine.counters["fallbacks"] == 1 and engine.counters["spot_interruptions"] == 1
        # On the fallback, a second interruption is not relaunched (relaunch_on_spot_interruption is off).
        fake.set_status(list(fake.tasks)[-1], "STOPPED", stop_code="SpotInterruption", reason="again")
        final = results_until(engine, of(m.StateChanged, "a"))
    (relaunching,) = [r for r in seen if isinstance(r, m.Relaunching)]
    assert relaunching.delay == 0.0 and f"interrupted by Spot ({stop_code})" in relaunching.reason
    (launched,) = [r for r in seen if isinstance(r, m.Launched)]
    assert (
        launched.on_fallback == "FARGATE (fallback: the Spot task was interrupted before its container ran)"
    )
    assert targets(fake) == ["FARGATE_SPOT", "FARGATE"]
    (changed,) = [r for r in final if isinstance(r, m.StateChanged)]
    assert changed.status.phase == Phase.FAILED


def test_a_spot_task_seen_running_is_never_relaunched_even_with_a_fallback() -> None:
    fake = FakeEcs()
    with running_engine(fake, capacity_provider_strategy=SPOT, fallback_launch_type="FARGATE") as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        (arn,) = list(fake.tasks)
        fake.set_status(arn, "RUNNING")
        results_until(engine, of(m.StateChanged, "a"))
        fake.set_status(
            arn, "STOPPED", stop_code="SpotInterruption", reason="Your Spot Task was interrupted."
        )
        (changed,) = [
            r for r in results_until(engine, of(m.StateChanged, "a")) if isinstance(r, m.StateChanged)
        ]
        assert changed.status.phase == Phase.FAILED and engine.counters["fallbacks"] == 0
    assert targets(fake) == ["FARGATE_SPOT"]


def test_without_the_option_a_spot_shortage_waits_capacity_wait_seconds_and_fails_as_before() -> None:
    fake = FakeEcs()
    spot_short(fake)
    with running_engine(fake, capacity_provider_strategy=SPOT, capacity_wait_seconds="0.5") as engine:
        launch(engine, "a")
        seen = results_until(engine, of(m.LaunchFailed, "a"))
        assert engine.counters["fallbacks"] == 0
    (failed,) = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert NO_SPOT in failed.reason and "capacity_wait_seconds=0.5" in failed.reason
    assert set(targets(fake)) == {"FARGATE_SPOT"} and len(targets(fake)) >= 2
    assert not any("fallback" in r.reason for r in seen if isinstance(r, m.Relaunching))


def test_a_task_naming_its_own_target_in_executor_config_gets_no_fallback() -> None:
    fake = FakeEcs()
    spot_short(fake)
    options = {
        "launch_type": "FARGATE",
        "fallback_launch_type": "EC2",
        "fallback_after_seconds": "0",
        "capacity_wait_seconds": "0.4",
    }
    with running_engine(fake, **options) as engine:
        launch(engine, "a", {"capacityProviderStrategy": json.loads(SPOT)})
        results_until(engine, of(m.LaunchFailed, "a"))
        assert engine.counters["fallbacks"] == 0
    assert set(targets(fake)) == {"FARGATE_SPOT"}


def test_the_fallback_after_zero_seconds_moves_at_the_first_shortage() -> None:
    fake = FakeEcs()
    spot_short(fake)
    options = {
        "capacity_provider_strategy": SPOT,
        "fallback_launch_type": "FARGATE",
        "fallback_after_seconds": "0",
    }
    with running_engine(fake, **options) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
    assert targets(fake) == ["FARGATE_SPOT", "FARGATE"]
