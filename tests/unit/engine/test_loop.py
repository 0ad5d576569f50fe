"""The engine loop against a fake ECS client: commands reach their part, shutdown is bounded."""

from __future__ import annotations

import time

from ecs_executor import messages as m
from ecs_executor.core.lifecycle import TryState
from tests.support.fake_ecs import FakeEcs, launch, of, results_until, running_engine


def test_adopt_tracks_the_task_on_the_cluster_its_arn_names() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "x", {"cluster": "elsewhere"})
        (launched,) = [r for r in results_until(engine, of(m.Launched, "x")) if isinstance(r, m.Launched)]
    with running_engine(fake) as engine:  # a new scheduler
        engine.channel.send(m.Adopt("x", launched.task_arn, "elsewhere"))
        fake.set_status(launched.task_arn, "RUNNING")
        results_until(engine, lambda s: any(isinstance(r, m.StateChanged) for r in s))
        (t,) = engine.ctx.registry.by_key.values()
        assert t.state is TryState.RUNNING and t.cluster == "elsewhere"
    assert {r["cluster"] for r in fake.requests("describe_tasks")} == {"elsewhere"}


def test_end_waits_for_launches_in_flight_at_most_shutdown_timeout() -> None:
    fake = FakeEcs()
    fake.run_task_delay = 30.0  # never answers in time
    with running_engine(fake, shutdown_timeout="1") as engine:
        launch(engine, "slow")
        results_until(engine, lambda s: bool(fake.requests("run_task")), timeout=5)
        started = time.monotonic()
        engine.channel.send(m.Shutdown())
        assert engine.join(10)
        assert time.monotonic() - started < 5
        engine.channel.send(m.Shutdown())  # running_engine's own shutdown finds it ended
    assert engine.stopped_cleanly and engine.crash is None


def test_a_stop_for_an_unknown_key_is_ignored() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        engine.channel.send(m.Stop("nobody", "revoked"))
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
    assert fake.requests("stop_task") == []
