"""The cluster defaults reader against a fake ECS client: read once, batched, and a failure not kept."""

from __future__ import annotations

import pytest

from ecs_executor import messages as m
from tests.support.fake_ecs import FakeEcs, client_error, launch, of, results_until, running_engine

SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def test_configured_clusters_are_read_in_one_call_at_start_and_others_on_first_use() -> None:
    fake = FakeEcs()
    fake.cluster_defaults.update({"main": SPOT, "gpu": [], "later": SPOT})
    profiles = '{"gpu": {"cluster": "gpu"}}'
    with running_engine(fake, queue_profiles=profiles) as engine:
        launch(engine, "a")
        launch(engine, "b", {"cluster": "later"})
        results_until(engine, lambda s: of(m.Launched, "a")(s) and of(m.Launched, "b")(s))
        launch(engine, "c", {"cluster": "later"})
        results_until(engine, of(m.Launched, "c"))
        assert engine.clusters.known() == {"main": SPOT, "gpu": None, "later": SPOT}
    described = [r["clusters"] for r in fake.requests("describe_clusters")]
    assert described == [["main", "gpu"], ["later"]]


def test_an_unreadable_cluster_falls_back_to_fargate_and_is_read_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ecs_executor.engine.clusters.RETRY_READ_SECONDS", 60.0)
    fake = FakeEcs()
    fake.cluster_defaults["main"] = SPOT
    original = fake._describe_clusters
    answers = [client_error("AccessDeniedException", "not allowed")]

    def flaky(**kwargs):
        if answers:
            raise answers.pop()
        return original(**kwargs)

    fake._describe_clusters = flaky  # type: ignore[method-assign]
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
        monkeypatch.setattr("ecs_executor.engine.clusters.RETRY_READ_SECONDS", 0.0)  # time has passed
        launch(engine, "b")
        results_until(engine, of(m.Launched, "b"))
    first, second = fake.requests("run_task")
    assert first["launchType"] == "FARGATE"  # the cluster could not be read: our fallback
    assert "launchType" not in second  # read again: its default strategy applies
