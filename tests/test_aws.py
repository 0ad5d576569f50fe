"""The engine's ECS client against moto server: plain-JSON parsing gives what botocore's shape walk gives."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_executor.config import settings_from_mapping
from ecs_executor.aws import EcsResponseParserFactory, PlainJsonParser, ecs_client
from tests.conftest import CONTAINER, REGION

pytestmark = pytest.mark.usefixtures("moto_manual_lifecycle")


def contained(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (extra dict keys in ``actual`` are allowed)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {type(actual).__name__} instead of a dict"]
        return [d for k, v in expected.items() for d in contained(v, actual.get(k, KeyError), f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: list differs"]
        pairs = enumerate(zip(expected, actual, strict=True))
        return [d for i, (e, a) in pairs for d in contained(e, a, f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: {actual!r} != {expected!r}"]


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


async def both_clients(
    moto_url: str, configure: Any, cluster: str
) -> tuple[Any, Any, contextlib.AsyncExitStack]:
    from aiobotocore.session import get_session

    configure(cluster)
    settings = settings_from_mapping(
        {
            "cluster": cluster,
            "container_name": CONTAINER,
            "region_name": REGION,
            "task_definition": cluster,
            "conn_id": "aws_test",
        }
    )
    ours, stack = await ecs_client(settings)
    reference_session = get_session()
    # botocore's own parsing, with timestamps kept as sent (what the engine asked for before).
    factory = reference_session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=lambda v: v)
    reference = await stack.enter_async_context(
        reference_session.create_client(
            "ecs",
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    )
    return ours, reference, stack


async def test_engine_client_parses_like_botocore(moto_url: str, configure: Any, ecs_cluster: str) -> None:
    ours, reference, stack = await both_clients(moto_url, configure, ecs_cluster)
    async with stack:
        assert isinstance(ours._endpoint._response_parser_factory, EcsResponseParserFactory)
        started = await ours.run_task(
            cluster=ecs_cluster,
            taskDefinition=ecs_cluster,
            count=2,
            launchType="FARGATE",
            startedBy="airflow-ecs-executor",
            overrides={"containerOverrides": [{"name": CONTAINER, "command": ["airflow", "version"]}]},
            tags=[{"key": "dag_id", "value": "d"}],
        )
        assert len(started["tasks"]) == 2
        arns = [t["taskArn"] for t in started["tasks"]]
        missing = arns[0].rsplit("/", 1)[0] + "/00000000000000000000000000000000"
        calls: list[tuple[str, dict[str, Any]]] = [
            ("describe_tasks", {"cluster": ecs_cluster, "tasks": [*arns, missing], "include": ["TAGS"]}),
            ("describe_clusters", {"clusters": [ecs_cluster]}),
            ("describe_task_definition", {"taskDefinition": ecs_cluster}),
            ("list_tasks", {"cluster": ecs_cluster}),
        ]
        for method, kwargs in calls:
            mine = without_metadata(await getattr(ours, method)(**kwargs))
            theirs = without_metadata(await getattr(reference, method)(**kwargs))
            assert theirs, method
            assert contained(theirs, mine) == [], method
        described = await ours.describe_tasks(cluster=ecs_cluster, tasks=[*arns, missing])
        assert {t["taskArn"] for t in described["tasks"]} == set(arns)
        assert described["ResponseMetadata"]["HTTPStatusCode"] == 200


async def test_errors_are_still_parsed_by_botocore(moto_url: str, configure: Any, ecs_cluster: str) -> None:
    ours, _, stack = await both_clients(moto_url, configure, ecs_cluster)
    async with stack:
        with pytest.raises(ClientError) as caught:
            await ours.run_task(cluster=ecs_cluster, taskDefinition="no-such-family", launchType="FARGATE")
        error = caught.value.response
        assert error["Error"]["Code"] and error["ResponseMetadata"]["HTTPStatusCode"] >= 400


def test_only_the_json_protocol_is_replaced() -> None:
    factory = EcsResponseParserFactory()
    assert type(factory.create_parser("json")) is PlainJsonParser
    assert not isinstance(factory.create_parser("query"), PlainJsonParser)
