"""Stopping against a fake ECS client: revoke, terminate, each task on its own cluster."""

from __future__ import annotations

from ecs_executor import messages as m
from ecs_executor.core.lifecycle import TryState
from tests.support.fake_ecs import FakeEcs, launch, of, results_until, running_engine


def test_revoke_stops_the_task_on_its_cluster_and_reports_nothing() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a", {"cluster": "other"})
        results_until(engine, of(m.Launched, "a"))
        (t,) = engine.ctx.registry.by_key.values()
        engine.channel.send(m.Stop("a", "revoked"))
        results_until(engine, lambda s: bool(fake.requests("stop_task")), timeout=5)
        assert t.state is TryState.STOPPING and engine.tracked_count() == 0
    (stop,) = fake.requests("stop_task")
    assert stop["cluster"] == "other" and stop["task"] == t.arn


def test_revoke_during_run_task_stops_what_it_started() -> None:
    fake = FakeEcs()
    fake.run_task_delay = 0.5  # the Stop is drained while RunTask is in flight
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, lambda s: bool(fake.requests("run_task")), timeout=5)
        engine.channel.send(m.Stop("a", "revoked"))
        results_until(engine, lambda s: bool(fake.requests("stop_task")), timeout=5)
        assert engine.tracked_count() == 0
    (run,) = fake.requests("run_task")
    (stop,) = fake.requests("stop_task")
    assert stop["task"] in fake.tasks and stop["cluster"] == run["cluster"]


def test_terminate_stops_every_task_concurrently() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        for name in ("a", "b", "c"):
            launch(engine, name, {"cluster": f"c-{name}"})
        results_until(engine, lambda s: sum(isinstance(r, m.Launched) for r in s) == 3)
        engine.channel.send(m.Shutdown(stop_tasks=True))
        assert engine.join(10)
        engine.channel.send(m.Shutdown())  # running_engine's own shutdown finds it ended
    assert sorted(r["cluster"] for r in fake.requests("stop_task")) == ["c-a", "c-b", "c-c"]
