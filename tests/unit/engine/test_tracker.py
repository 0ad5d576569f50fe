"""The tracker against a fake ECS client: per-cluster sweeps, MISSING, triage of stopped tasks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.core.lifecycle import Tracked, TryState
from ecs_executor.core.relaunch import RelaunchPolicy
from ecs_executor.core.task_status import Phase
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.context import Context
from ecs_executor.engine.tracker import Tracker
from ecs_executor.request.run_task import TryIdentity
from tests.support.fake_ecs import OPTIONS, FakeEcs, launch, of, results_until, running_engine


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ecs_executor.core.relaunch.RELAUNCH_BASE_SECONDS", 0.01)


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


def _stopped_tasks(fake: FakeEcs) -> set[str]:
    return {request["task"] for request in fake.requests("stop_task")}


def _exited(engine, fake: FakeEcs, exit_code: int) -> tuple[str, m.StateChanged]:
    """Launch "a", let it run, have its container exit; its ARN and the one final report."""
    launch(engine, "a")
    results_until(engine, of(m.Launched, "a"))
    (arn,) = list(fake.tasks)
    fake.set_status(arn, "RUNNING")
    fake.container_exited(arn, exit_code)
    seen = results_until(engine, final("a"))
    (ended,) = [r for r in seen if isinstance(r, m.StateChanged) and r.status.phase.is_terminal]
    return arn, ended


def test_a_try_ends_at_its_containers_exit_and_its_task_is_watched_until_stopped() -> None:
    """The exit code shows while ECS still stops the task (DEACTIVATING .. DEPROVISIONING): the verdict goes
    out then, once, and the task is described until STOPPED without a second report."""
    fake = FakeEcs()
    with running_engine(fake) as engine:
        arn, ended = _exited(engine, fake, 0)
        assert ended.status.phase == Phase.SUCCESS and not ended.status.task_stopped
        assert "DEACTIVATING" in ended.status.reason
        watched_from = fake.described(arn)
        results_until(engine, lambda _: fake.described(arn) >= watched_from + 3)
        fake.set_status(arn, "STOPPED", exit_code=0)
        time.sleep(0.5)  # sweeps every 0.05 s: STOPPED is seen
        stopped_at = fake.described(arn)
        time.sleep(0.5)
        assert fake.described(arn) == stopped_at  # no longer described once STOPPED
        late = engine.channel.drain_results()
    assert not [r for r in late if isinstance(r, m.StateChanged)]


def test_a_crash_is_reported_at_the_containers_exit_with_its_exit_code() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        _, ended = _exited(engine, fake, 137)
    assert ended.status.phase == Phase.FAILED and ended.status.exit_code == 137
    assert "out of memory" in ended.status.reason


def test_a_stopping_task_without_an_exit_code_waits_for_stopped() -> None:
    """Stopping before the container ran (or a failed start): only STOPPED says whether it ever started."""
    fake = FakeEcs()
    with running_engine(fake, max_run_task_attempts="1") as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        (arn,) = list(fake.tasks)
        fake.tasks[arn].update(
            lastStatus="DEPROVISIONING", desiredStatus="STOPPED", stopCode="TaskFailedToStart"
        )
        fake.tasks[arn]["version"] += 1
        early = results_until(engine, lambda _: fake.described(arn) >= 5)
        assert not [r for r in early if isinstance(r, m.StateChanged)]
        fake.set_status(
            arn, "STOPPED", stop_code="TaskFailedToStart", reason="CannotPullContainerError: x: not found"
        )
        seen = results_until(engine, final("a"))
    (ended,) = [r for r in seen if isinstance(r, m.StateChanged) and r.status.phase.is_terminal]
    assert ended.status.task_stopped and "CannotPullContainerError" in ended.status.reason


def test_a_requeued_trys_earlier_task_is_watched_and_stopped_when_airflow_revokes() -> None:
    """Airflow queues the same try again (a reschedule poke, a resumed deferral) while the earlier ECS task
    still runs: the earlier one reports nothing, is still described, and is stopped with the try."""
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        (first,) = list(fake.tasks)
        fake.set_status(first, "RUNNING")
        results_until(engine, lambda s: any(isinstance(r, m.StateChanged) for r in s))
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        (second,) = [arn for arn in fake.tasks if arn != first]
        fake.container_exited(first, 0)
        before = fake.described(first)
        quiet = results_until(engine, lambda _: fake.described(first) >= before + 3)
        assert not [r for r in quiet if isinstance(r, m.StateChanged) and r.task_arn == first]
        fake.tasks[first].update(lastStatus="RUNNING", desiredStatus="RUNNING", containers=[])  # hung instead
        engine.channel.send(m.Stop("a", "Airflow revoked the task"))
        results_until(engine, lambda _: _stopped_tasks(fake) == {first, second})


def test_terminate_also_stops_superseded_tasks() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        (first,) = list(fake.tasks)
        fake.set_status(first, "RUNNING")
        results_until(engine, lambda s: any(isinstance(r, m.StateChanged) for r in s))
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        engine.channel.send(m.Shutdown(stop_tasks=True))
        assert engine.join(10)
    assert _stopped_tasks(fake) == set(fake.tasks)


def test_reconcile_finds_due_tasks_oldest_first_without_visiting_the_rest() -> None:
    """Events mode: 10,000 tasks heard of just now and 5 not within reconcile_interval. A tick describes the
    5, longest unheard first, and looks at no other task; the next tick (nothing due) looks at none."""
    fake = FakeEcs()
    settings = settings_from_mapping({**OPTIONS, "reconcile_interval": "60"})

    async def factory() -> tuple[Any, contextlib.AsyncExitStack]:
        return fake, contextlib.AsyncExitStack()

    async def no_relaunch(t: Tracked, decision: Any) -> None:
        raise AssertionError("nothing is relaunched here")

    async def ticks() -> tuple[list[int], list[int]]:
        ctx = Context(settings, m.Channel(), RelaunchPolicy(3, 600))
        tracker = Tracker(ctx, EcsCalls(ctx, factory), no_relaunch, None)
        now = time.monotonic()
        for i in range(10_005):
            arn = f"arn:aws:ecs:us-east-1:123456789012:task/main/{i:032x}"
            t = Tracked(f"k{i}", TryIdentity("dag", f"k{i}", "run", 1), "main", state=TryState.RUNNING)
            t.arn, t.phase = arn, Phase.RUNNING
            # The last five were last heard of 100..104 s ago, the oldest last.
            t.heard_at = now if i < 10_000 else now - 100 - (i - 10_000)
            fake.tasks[arn] = {
                "taskArn": arn,
                "lastStatus": "RUNNING",
                "desiredStatus": "RUNNING",
                "version": 1,
            }
            ctx.registry.add(t)
        counts, visits = [], []
        for _ in range(2):
            counts.append(await tracker.reconcile_once())
            visits.append(tracker.due_visits)
        return counts, visits

    counts, visits = asyncio.run(ticks())

    assert counts == [5, 0] and visits == [5, 5]
    (request,) = fake.requests("describe_tasks")
    assert request["tasks"] == [
        f"arn:aws:ecs:us-east-1:123456789012:task/main/{i:032x}" for i in range(10_004, 9_999, -1)
    ]
