"""The clean-up of derived task definitions against the botocore-checked fake ECS."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Any

import pytest

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.core.lifecycle import Tracked
from ecs_executor.engine import Engine
from ecs_executor.engine import definition_cleanup as cleanup_module
from ecs_executor.engine.definition_cleanup import Sweep
from ecs_executor.request.run_task import TryIdentity
from tests.support.fake_ecs import (
    OPTIONS,
    FakeEcs,
    client_error,
    launch,
    of,
    results_until,
    running_engine,
    started,
)

DAY = 86400.0
NOW = float(int(time.time()))  # whole seconds, as the last-used tag holds them
OLD = NOW - 30 * DAY
TASK = "arn:aws:ecs:us-east-1:123456789012:task/main/"


def ours(base: str = "td:1", last_used: float | None = OLD) -> dict[str, str]:
    tags = {"ecs-executor:managed": "true", "ecs-executor:hash": "ab" * 32, "ecs-executor:base": base}
    if last_used is not None:
        tags["ecs-executor:last-used"] = str(int(last_used))
    return tags


def sweep(engine: Engine) -> Sweep:
    cleaner = engine.definition_cleaner
    cleaner.spacing = 0.0
    cleaner.clock = lambda: NOW
    return engine.run_coroutine(cleaner.sweep_once, timeout=30)


def running_task(fake: FakeEcs, definition: str, cluster: str = "main", n: int = 1) -> None:
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{n:032x}"
    fake.tasks[arn] = {"taskArn": arn, "desiredStatus": "RUNNING", "lastStatus": "PENDING"}
    fake.tasks[arn]["taskDefinitionArn"] = definition


def test_unused_derived_definitions_are_deregistered_then_deleted(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeEcs()
    stale = fake.add_definition("td-x1111111111111111", ours(last_used=OLD - DAY))
    newest = fake.add_definition("td-x2222222222222222", ours(last_used=OLD))
    users = fake.add_definition("td-x3333333333333333", {"team": "data"}, registered_at=OLD - 300 * DAY)
    base = fake.add_definition("td", {}, registered_at=OLD)
    other = fake.add_definition("unrelated-x4444444444444444", ours(base="unrelated:1"))
    caplog.set_level(logging.INFO, logger="ecs_executor.engine.definition_cleanup")
    with running_engine(fake) as engine:
        result = sweep(engine)
        counters = dict(engine.counters)
    assert result.deregistered == [stale] and result.deleted == [stale] and result.problem is None
    assert fake.status_of(stale) == "DELETE_IN_PROGRESS"
    assert {fake.status_of(a) for a in (newest, users, base, other)} == {"ACTIVE"}
    assert (counters["definitions_deregistered"], counters["definitions_deleted"]) == (1, 1)
    # Only the base's derived families were listed: by the base's name.
    assert [r["familyPrefix"] for r in fake.requests("list_task_definition_families")] == ["td"]
    assert all(r["include"] == ["TAGS"] for r in fake.requests("describe_task_definition"))
    lines = [r.getMessage() for r in caplog.records]
    assert [ln for ln in lines if ln.startswith("Deregistered")] == [
        f"Deregistered task definition {stale} (derived from td:1, unused for {31 * DAY:.0f}s)"
    ]
    assert [ln for ln in lines if ln.startswith("Deleted")] == [
        f"Deleted task definition {stale} (DELETE_IN_PROGRESS)"
    ]


def test_a_definition_a_running_or_launching_task_uses_is_kept() -> None:
    fake = FakeEcs()
    by_task = fake.add_definition("td-x1111111111111111", ours())
    by_launch = fake.add_definition("td-x2222222222222222", ours())
    in_profile_cluster = fake.add_definition("td-x3333333333333333", ours())
    free = fake.add_definition("td-x4444444444444444", ours())
    running_task(fake, by_task)
    running_task(fake, in_profile_cluster, cluster="gpu", n=2)
    profiles = json.dumps({"gpu": {"cluster": "gpu"}})
    with running_engine(fake, derived_definition_keep="0", queue_profiles=profiles) as engine:

        async def launching() -> Sweep:
            tracked = Tracked("k", TryIdentity("d", "t", "r", 1), "main")
            tracked.kwargs = {"taskDefinition": by_launch}
            engine.ctx.registry.add(tracked)
            return await engine.definition_cleaner.sweep_once()

        engine.definition_cleaner.spacing = 0.0
        result = engine.run_coroutine(launching, timeout=30)
    assert result.deregistered == [free]
    assert {r["cluster"] for r in fake.requests("list_tasks")} == {"main", "gpu"}
    assert all(r["desiredStatus"] == "RUNNING" for r in fake.requests("list_tasks"))


def test_queue_profiles_bases_are_searched_and_pages_followed() -> None:
    fake = FakeEcs()
    fake.page_size = 1
    a = [fake.add_definition("td-x1111111111111111", ours()) for _ in range(3)]
    b = fake.add_definition("gpu-td-x2222222222222222", ours(base="gpu-td:7"))
    profiles = json.dumps({"gpu": {"task_definition": "arn:aws:ecs:us-east-1:1:task-definition/gpu-td:7"}})
    with running_engine(fake, derived_definition_keep="0", queue_profiles=profiles) as engine:
        result = sweep(engine)
    assert sorted(result.deregistered) == sorted([*a, b])
    assert sorted(r["familyPrefix"] for r in fake.requests("list_task_definition_families")) == [
        "gpu-td",
        "td",
    ]
    # Every page was followed (one item a page here).
    assert sum("nextToken" in r for r in fake.requests("list_task_definitions")) == 2
    assert sum("nextToken" in r for r in fake.requests("list_task_definition_families")) == 0


def test_deletes_go_in_batches_of_ten() -> None:
    fake = FakeEcs()
    arns = [fake.add_definition(f"td-x{i:016x}", ours(last_used=OLD - i)) for i in range(12)]
    with running_engine(fake, derived_definition_keep="0") as engine:
        result = sweep(engine)
    assert sorted(result.deleted) == sorted(arns)
    assert [len(r["taskDefinitions"]) for r in fake.requests("delete_task_definitions")] == [10, 2]


def test_what_it_deregistered_is_deleted_later_without_listing_it() -> None:
    fake = FakeEcs()
    arn = fake.add_definition("td-x1111111111111111", ours())
    fake.errors["delete_task_definitions"] = client_error("ServerException", "try later", 500)
    with running_engine(fake, derived_definition_keep="0") as engine:
        first = sweep(engine)
        assert first.deregistered == [arn] and first.deleted == [] and "ServerException" in str(first.problem)
        del fake.errors["delete_task_definitions"]
        second = sweep(engine)
        third = sweep(engine)
    assert second.deregistered == [] and second.deleted == [arn]
    assert third.deleted == [] and engine.definition_cleaner.deregistered == {}
    # The INACTIVE revision was never listed: only ACTIVE ones are.
    assert {r["status"] for r in fake.requests("list_task_definitions")} == {"ACTIVE"}


def test_a_deregistered_definition_still_in_use_is_deleted_once_free() -> None:
    fake = FakeEcs()
    arn = fake.add_definition("td-x1111111111111111", ours())
    with running_engine(fake, derived_definition_keep="0") as engine:
        fake.errors["delete_task_definitions"] = client_error("ServerException", "", 500)
        sweep(engine)
        del fake.errors["delete_task_definitions"]
        running_task(fake, arn)  # a task started in ECS's 10-minute window
        assert sweep(engine).deleted == []
        fake.tasks.clear()
        assert sweep(engine).deleted == [arn]


def test_access_denied_is_one_warning_and_launches_go_on(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeEcs()
    arn = fake.add_definition("td-x1111111111111111", ours())
    denied = client_error(
        "AccessDeniedException", "not authorized to perform: ecs:ListTaskDefinitionFamilies"
    )
    fake.errors["list_task_definition_families"] = denied
    with running_engine(fake, derived_definition_keep="0") as engine:
        result = sweep(engine)
        launch(engine, "a")
        results_until(engine, of(m.Launched, "a"))
    assert result.deregistered == [] and fake.status_of(arn) == "ACTIVE"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Task definition clean-up: ListTaskDefinitionFamilies failed (AccessDeniedException: not "
        "authorized to perform: ecs:ListTaskDefinitionFamilies); deregistered 0, deleted 0 this time; "
        "next try in 3600s"
    ]


def test_without_the_tasks_in_a_cluster_nothing_is_deregistered() -> None:
    fake = FakeEcs()
    arn = fake.add_definition("td-x1111111111111111", ours())
    fake.errors["list_tasks"] = client_error("AccessDeniedException", "no ecs:ListTasks")
    with running_engine(fake, derived_definition_keep="0") as engine:
        result = sweep(engine)
    assert result.deregistered == [] and fake.status_of(arn) == "ACTIVE"
    assert "ListTasks on cluster main failed" in str(result.problem)
    assert fake.requests("deregister_task_definition") == []


def test_a_denied_deregistration_ends_the_sweep_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeEcs()
    for i in range(3):
        fake.add_definition(f"td-x{i:016x}", ours())
    fake.errors["deregister_task_definition"] = client_error("AccessDeniedException", "denied")
    with running_engine(fake, derived_definition_keep="0") as engine:
        result = sweep(engine)
    assert result.deregistered == [] and len(fake.requests("deregister_task_definition")) == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_deregistrations_are_spaced_and_leave_the_burst_to_registration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeEcs()
    for i in range(3):
        fake.add_definition(f"td-x{i:016x}", ours())
    with running_engine(fake, derived_definition_keep="0") as engine:
        cleaner = engine.definition_cleaner
        cleaner.spacing = 0.2
        began = time.monotonic()
        assert len(engine.run_coroutine(cleaner.sweep_once, timeout=30).deregistered) == 3
        assert time.monotonic() - began >= 0.4
        assert cleaner.modify_bucket.available() >= 16  # three tokens taken from twenty

    # Registration has spent the burst down to the reserve: the clean-up waits, then gives up.
    monkeypatch.setattr(cleanup_module, "RESERVE_WAIT_SECONDS", 0.3)
    fake = FakeEcs()
    arn = fake.add_definition("td-x1111111111111111", ours())
    with running_engine(fake, derived_definition_keep="0") as engine:
        cleaner = engine.definition_cleaner

        async def busy_registration() -> Sweep:
            for _ in range(6):
                await cleaner.modify_bucket.acquire()
            return await cleaner.sweep_once()

        cleaner.modify_bucket.rate = cleaner.modify_bucket.max_rate = 0.01  # no refill meanwhile
        result = engine.run_coroutine(busy_registration, timeout=30)
    assert result.deregistered == [] and fake.status_of(arn) == "ACTIVE"
    assert "registration is using" in str(result.problem)


def test_the_engine_runs_the_clean_up_every_interval() -> None:
    fake = FakeEcs()
    arn = fake.add_definition("td-x1111111111111111", ours())
    settings = settings_from_mapping({**OPTIONS, "derived_definition_keep": "0"})

    async def factory() -> tuple[Any, contextlib.AsyncExitStack]:
        return fake, contextlib.AsyncExitStack()

    engine = Engine(settings, m.Channel(), client_factory=factory)
    assert engine.definition_cleaner.interval == 3600.0
    engine.definition_cleaner.interval = 0.05
    engine.definition_cleaner.spacing = 0.0
    with started(engine):
        deadline = time.monotonic() + 10
        while engine.counters["definitions_deleted"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert fake.status_of(arn) == "DELETE_IN_PROGRESS"


def test_a_definition_another_scheduler_deleted_meanwhile_is_no_problem() -> None:
    fake = FakeEcs()
    arn = fake.add_definition("td-x1111111111111111", ours())
    gone = client_error("ClientException", "Unable to describe task definition.")
    fake.errors["describe_task_definition"] = gone
    with running_engine(fake, derived_definition_keep="0") as engine:
        assert sweep(engine) == Sweep()  # listed, then gone before the describe
        del fake.errors["describe_task_definition"]
        fake.errors["deregister_task_definition"] = client_error(
            "ClientException", "The specified task definition does not exist."
        )
        assert sweep(engine) == Sweep()  # described, then gone before the deregistration
        fake.errors["describe_task_definition"] = client_error("ServerException", "", 500)
        assert "DescribeTaskDefinition failed" in str(sweep(engine).problem)
    assert fake.status_of(arn) == "ACTIVE"


def test_with_nothing_due_no_task_is_listed() -> None:
    fake = FakeEcs()
    fake.add_definition("td-x1111111111111111", ours(last_used=NOW - 60))  # used a minute ago
    fake.add_definition("td-x2222222222222222", ours(base="other:1"))  # stale, but its base's newest
    with running_engine(fake, derived_definition_keep="1") as engine:
        assert sweep(engine) == Sweep()
    assert fake.requests("list_tasks") == [] and fake.requests("describe_tasks") == []
    assert len(fake.requests("describe_task_definition")) == 2
