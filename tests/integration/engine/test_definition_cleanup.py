"""The clean-up of derived task definitions against the local ECS endpoint, with two schedulers sweeping
at once: the unused derived definition is deregistered and deleted; the newest one, the one a RUNNING task
uses, a user's untagged one and the base stay."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.engine import Engine
from ecs_executor.engine.definition_cleanup import Sweep
from ecs_executor.request.run_task import RunTaskBuilder
from tests.conftest import executor_options
from tests.support.fake_ecs import started
from tests.support.fault_helpers import CLUSTER, CONN_ENV, FAMILY, boto_client, connection_json

HASH = "ab" * 32


def register(url: str, suffix: str, tags: dict[str, str]) -> str:
    """A derived definition of the base, registered as the executor would (our container, our tags)."""
    ecs = boto_client(url)
    base = ecs.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]
    answer = ecs.register_task_definition(
        family=f"{FAMILY}-x{suffix}",
        containerDefinitions=base["containerDefinitions"],
        tags=[{"key": k, "value": v} for k, v in tags.items()],
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def ours(used_seconds_ago: float) -> dict[str, str]:
    return {
        "ecs-executor:managed": "true",
        "ecs-executor:hash": HASH,
        "ecs-executor:base": f"{FAMILY}:1",
        "ecs-executor:last-used": str(int(time.time() - used_seconds_ago)),
    }


def status(url: str, arn: str) -> str | None:
    try:
        return str(boto_client(url).describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"])
    except boto_client(url).exceptions.ClientException:
        return None  # deleted and unused: gone


@contextlib.contextmanager
def engine_on(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv(CONN_ENV, connection_json(url))
    options = {"launch_type": "EC2", "derived_definition_retention": "60", "derived_definition_keep": "1"}
    settings = settings_from_mapping(executor_options(CLUSTER, task_definition=FAMILY, **options))
    engine = Engine(settings, m.Channel(), builder=RunTaskBuilder(settings))
    engine.definition_cleaner.spacing = 0.0  # the test's few deregistrations need no spacing
    with started(engine):
        yield engine


def test_two_schedulers_clean_up_only_what_is_unused_and_ours(
    local_ecs: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = local_ecs.url
    newest = register(url, "1111111111111111", ours(used_seconds_ago=3600))
    stale = register(url, "2222222222222222", ours(used_seconds_ago=7200))
    running = register(url, "3333333333333333", ours(used_seconds_ago=10800))
    users = register(url, "4444444444444444", {"team": "data"})  # a user's, named like ours
    fresh = register(url, "5555555555555555", {**ours(0), "ecs-executor:base": "other-base:1"})
    ecs = boto_client(url)
    task = ecs.run_task(cluster=CLUSTER, taskDefinition=running, launchType="EC2")["tasks"][0]["taskArn"]
    base = ecs.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]["taskDefinitionArn"]
    with engine_on(url, monkeypatch) as one, engine_on(url, monkeypatch) as two:
        with ThreadPoolExecutor(2) as pool:
            sweeps: list[Sweep] = list(
                pool.map(lambda e: e.run_coroutine(e.definition_cleaner.sweep_once, timeout=60), [one, two])
            )
        counters = [dict(e.counters) for e in (one, two)]
    assert [s.problem for s in sweeps] == [None, None]
    # Both schedulers may have deregistered and deleted it: harmless, and no warning.
    assert {arn for s in sweeps for arn in s.deregistered} == {stale}
    assert {arn for s in sweeps for arn in s.deleted} == {stale}
    assert status(url, stale) is None  # deleted, and no task used it: gone
    assert status(url, newest) == "ACTIVE"  # unused for an hour, but the newest of its base family
    assert status(url, running) == "ACTIVE"  # a RUNNING task uses it
    assert status(url, fresh) == "ACTIVE"  # another base family's, used just now
    assert status(url, users) == "ACTIVE" and status(url, base) == "ACTIVE"  # not ours
    assert sum(c["definitions_deleted"] for c in counters) >= 1
    assert sum(c["definitions_deregistered"] for c in counters) >= 1
    assert ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]["lastStatus"] == "RUNNING"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "clean-up" in r.getMessage()]
