"""Managed task definitions in the engine, against the botocore-checked fake ECS client."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ecs_executor import messages as m
from ecs_executor.request.derived_definition import HASH_TAG, LAST_USED_TAG, MANAGED_TAG, tag_value
from ecs_executor.request.run_task import TryIdentity, new_launch_id
from tests.support.fake_ecs import FakeEcs, client_error, launch, of, results_until, running_engine

PASS_ROLE_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/scheduler/s is not authorized to perform: iam:PassRole "
    "on resource: arn:aws:iam::123456789012:role/task because no identity-based policy allows the "
    "iam:PassRole action"
)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ecs_executor.engine.definitions.FIRST_BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr("ecs_executor.core.relaunch.RETRY_BASE_SECONDS", 0.01)


def launched(seen: list[m.Result]) -> dict[object, m.Launched]:
    return {r.key: r for r in seen if isinstance(r, m.Launched)}


def ended(count: int):  # type: ignore[no-untyped-def]
    return lambda seen: len({r.key for r in seen if isinstance(r, (m.Launched, m.LaunchFailed))}) >= count


def test_hundred_tasks_over_ten_images_register_ten_definitions() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        for i in range(100):
            launch(engine, f"t{i}", {"image": f"repo/img:{i % 10}"})
        seen = results_until(engine, ended(100), timeout=30)
        assert len(launched(seen)) == 100
        assert engine.counters["definitions_registered"] == 10
    registered = fake.requests("register_task_definition")
    assert len(registered) == 10
    assert {r["containerDefinitions"][0]["image"] for r in registered} == {f"repo/img:{i}" for i in range(10)}
    for request in registered:
        assert tag_value(request["tags"], MANAGED_TAG) == "true"
        assert request["family"] == f"td-x{tag_value(request['tags'], HASH_TAG)[:16]}"  # type: ignore[index]
        assert tag_value(request["tags"], LAST_USED_TAG) is not None
    bases = [r for r in fake.requests("describe_task_definition") if r["taskDefinition"] == "td"]
    assert len(bases) == 1  # the base is described once and cached
    images = {}
    for run in fake.requests("run_task"):
        family, revision = run["taskDefinition"].rsplit("/", 1)[-1].split(":")
        assert run["taskDefinition"].startswith("arn:aws:ecs:") and revision == "1"  # full ARN, pinned
        images[family] = fake.revisions(family)[0]["containerDefinitions"][0]["image"]
    assert len(images) == 10 and not fake.requests("tag_resource")  # tagged as used when registered


def test_tasks_without_derivation_keep_the_base_definition() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
    assert fake.requests("run_task")[0]["taskDefinition"] == "td"
    assert not fake.requests("register_task_definition") and not fake.requests("describe_task_definition")


def test_another_scheduler_finds_the_definition_again_and_tags_it_used_once() -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a", {"image": "x:1", "runtime_platform": {"cpu_architecture": "ARM64"}})
        results_until(engine, of(m.Launched, "a"))
    first_arn = fake.requests("run_task")[0]["taskDefinition"]
    with running_engine(fake) as engine:  # a restart, or another scheduler sharing the account
        for i in range(5):
            launch(engine, f"b{i}", {"image": "x:1", "runtime_platform": {"cpu_architecture": "ARM64"}})
        results_until(engine, ended(5))
        assert engine.counters["definitions_reused"] == 1 and engine.counters["definitions_registered"] == 0
    assert len(fake.requests("register_task_definition")) == 1
    assert {r["taskDefinition"] for r in fake.requests("run_task")} == {first_arn}
    (tagged,) = fake.requests("tag_resource")  # once for five tasks (at most hourly per definition)
    assert tagged["resourceArn"] == first_arn and tagged["tags"][0]["key"] == LAST_USED_TAG


def test_throttles_and_concurrent_attempts_are_retried_without_costing_an_attempt() -> None:
    fake = FakeEcs()

    def other_scheduler_wins(request: dict) -> Exception:
        fake.store(request)
        return client_error(
            "ClientException",
            "Too many concurrent attempts to create a new revision of the specified family.",
        )

    fake.register_script = [
        lambda _: client_error("ThrottlingException", "Rate exceeded"),
        other_scheduler_wins,
    ]
    with running_engine(fake) as engine:
        launch(engine, "a", {"image": "x:1"})
        seen = results_until(engine, of(m.Launched, "a"))
        assert launched(seen)["a"].attempt == 1
        assert engine.counters["definition_retries"] == 2
        assert engine.counters["definitions_reused"] == 1  # described again: the other one registered it
    assert len(fake.requests("register_task_definition")) == 2
    assert fake.requests("run_task")[0]["taskDefinition"].endswith(":1")


def test_schedulers_registering_the_same_content_at_once_all_run_the_earliest_revision() -> None:
    """Another scheduler registered the same content a moment before this one's registration (both found
    nothing): each got its own revision; both run the earliest, found by its hash tag."""
    fake = FakeEcs()
    other: list[str] = []

    def other_scheduler_first(request: dict) -> None:
        other.append(fake.store(request))  # revision 1; this scheduler's becomes revision 2

    fake.register_script = [other_scheduler_first]
    with running_engine(fake) as engine:
        launch(engine, "a", {"image": "x:1"})
        launch(engine, "b", {"image": "x:1"})
        results_until(engine, ended(2))
        assert engine.counters["definitions_registered"] == 1
        assert engine.counters["definitions_converged"] == 1
    (earliest,) = other
    family = earliest.rsplit("/", 1)[-1].split(":")[0]
    assert [d["revision"] for d in fake.revisions(family)] == [1, 2]
    assert {r["taskDefinition"] for r in fake.requests("run_task")} == {earliest}
    (listed,) = fake.requests("list_task_definitions")
    assert listed["familyPrefix"] == family and listed["sort"] == "ASC"


def test_with_several_schedulers_one_looks_again_after_a_random_wait_before_registering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """schedulers_sharing_budget > 1: between finding nothing and registering, another scheduler's
    registration of the same content shows up; it is used and nothing is registered."""
    monkeypatch.setattr("ecs_executor.engine.definitions.REGISTER_SPREAD_SECONDS", 0.05)
    probe = FakeEcs()
    with running_engine(probe) as engine:
        launch(engine, "a", {"image": "x:1"})
        results_until(engine, of(m.Launched, "a"))
    (content,) = probe.requests("register_task_definition")

    class OtherSchedulerMeanwhile(FakeEcs):
        def _describe_task_definition(self, taskDefinition: str, include: Any = None, **kw: Any) -> Any:
            if taskDefinition == content["family"] and not self.revisions(content["family"]):
                self.store(content)  # registered by the other scheduler while this one looks
                raise client_error("ClientException", "Unable to describe task definition.")
            return super()._describe_task_definition(taskDefinition, include, **kw)

    fake = OtherSchedulerMeanwhile()
    with running_engine(fake, schedulers_sharing_budget="2") as engine:
        launch(engine, "b", {"image": "x:1"})
        results_until(engine, of(m.Launched, "b"))
        assert engine.counters["definitions_reused"] == 1 and engine.counters["definitions_registered"] == 0
    assert not fake.requests("register_task_definition")
    assert fake.requests("run_task")[0]["taskDefinition"].endswith(f"/{content['family']}:1")


def test_a_restarted_scheduler_finding_a_later_duplicate_runs_the_earliest_and_one_without_rights_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeEcs()
    with running_engine(fake) as engine:
        launch(engine, "a", {"image": "x:1"})
        results_until(engine, of(m.Launched, "a"))
    first = fake.requests("run_task")[0]["taskDefinition"]
    (registered,) = fake.requests("register_task_definition")
    duplicate = fake.store(registered)  # revision 2, registered at the same moment by another scheduler
    with running_engine(fake) as engine:
        launch(engine, "b", {"image": "x:1"})
        results_until(engine, of(m.Launched, "b"))
        assert engine.counters["definitions_reused"] == 1 and engine.counters["definitions_converged"] == 1
    assert fake.requests("run_task")[-1]["taskDefinition"] == first
    fake.errors["list_task_definitions"] = client_error("AccessDeniedException", "not authorized")
    with running_engine(fake) as engine:
        launch(engine, "c", {"image": "x:1"})
        results_until(engine, of(m.Launched, "c"))
    assert fake.requests("run_task")[-1]["taskDefinition"] == duplicate  # launched all the same
    assert "Could not look for earlier revisions" in caplog.text


def test_pass_role_denied_fails_every_waiting_task_naming_the_permission() -> None:
    fake = FakeEcs()
    fake.register_delay = 0.2  # all three wait on the one registration
    fake.register_script = [lambda _: client_error("AccessDeniedException", PASS_ROLE_DENIED)]
    with running_engine(fake) as engine:
        for name in ("a", "b", "c"):
            launch(engine, name, {"image": "x:1"})
        launch(engine, "plain")
        seen = results_until(engine, ended(4))
    failed = {r.key: r for r in seen if isinstance(r, m.LaunchFailed)}
    assert set(failed) == {"a", "b", "c"} and "plain" in launched(seen)
    for failure in failed.values():
        assert "iam:PassRole denied" in failure.reason and "iam:PassedToService" in failure.reason
        assert failure.kind == "task_definition"
    assert len(fake.requests("register_task_definition")) == 1
    assert [r["taskDefinition"] for r in fake.requests("run_task")] == ["td"]


def test_invalid_role_fails_naming_the_role() -> None:
    fake = FakeEcs()
    fake.register_script = [lambda _: client_error("ClientException", "Role is not valid")]
    with running_engine(fake) as engine:
        launch(engine, "a", {"image": "x:1"})
        seen = results_until(engine, of(m.LaunchFailed, "a"))
    (failure,) = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert "Role is not valid" in failure.reason and "taskRoleArn or executionRoleArn" in failure.reason


def test_revoked_while_waiting_for_registration_stops_cleanly_and_others_are_not_held_up() -> None:
    fake = FakeEcs()
    fake.register_delay = 1.0
    with running_engine(fake) as engine:
        launch(engine, "slow", {"image": "x:1"})
        time.sleep(0.2)
        started = time.monotonic()
        launch(engine, "plain")
        results_until(engine, of(m.Launched, "plain"))
        assert time.monotonic() - started < 0.8  # not behind the registration
        engine.channel.send(m.Stop("slow", "revoked"))
        launch(engine, "same", {"image": "x:1"})  # another try waiting on the same registration
        seen = results_until(engine, of(m.Launched, "same"), timeout=5)
        assert "slow" not in launched(seen)
    assert len(fake.requests("register_task_definition")) == 1  # the revoke did not cancel it
    assert len(fake.requests("run_task")) == 2


def test_base_without_our_container_fails_the_task_naming_the_option() -> None:
    fake = FakeEcs()
    with running_engine(fake, container_name="other") as engine:
        launch(engine, "a", {"image": "x:1"})
        seen = results_until(engine, of(m.LaunchFailed, "a"))
    (failure,) = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert "no container named 'other'" in failure.reason and "container_name" in failure.reason
    assert not fake.requests("register_task_definition")


def test_a_try_whose_token_expires_while_waiting_fails_as_expired() -> None:
    fake = FakeEcs()
    fake.register_delay = 1.0
    with running_engine(fake) as engine:
        command = m.Launch(
            "a",
            TryIdentity("dag", "a", "run", 1),
            "{}",
            {"image": "x:1"},
            time.monotonic() + 0.3,
            launch_id=new_launch_id(),
        )
        engine.channel.send(command)
        seen = results_until(engine, of(m.LaunchFailed, "a"))
    (failure,) = [r for r in seen if isinstance(r, m.LaunchFailed)]
    assert failure.kind == "expired" and not fake.requests("run_task")


def test_a_base_that_cannot_be_described_fails_the_task_naming_the_option() -> None:
    fake = FakeEcs()
    with running_engine(fake, task_definition="gone-x0123456789abcdef") as engine:
        launch(engine, "a", {"image": "x:1"})
        launch(engine, "b", {"image": "y:1"})
        seen = results_until(engine, ended(2))
    reasons = [r.reason for r in seen if isinstance(r, m.LaunchFailed)]
    assert len(reasons) == 2
    assert all("describe base task definition gone-x0123456789abcdef" in r for r in reasons)
    assert all("option task_definition" in r for r in reasons)
    assert not fake.requests("register_task_definition")


def test_a_throttled_registration_slows_the_modify_bucket_and_is_not_retried_by_botocore() -> None:
    throttled = (None, {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}})
    with running_engine(FakeEcs()) as engine:
        definitions = engine.definitions
        assert definitions._on_register_attempt(response=throttled) is False  # retried through the bucket
        assert definitions.modify_bucket.cuts == 1
        assert definitions._on_register_attempt(response=(None, {})) is None
        definitions._on_tag_attempt(response=throttled)
        assert definitions.tag_bucket.cuts == 1 and definitions.read_bucket.cuts == 0
