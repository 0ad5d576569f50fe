"""aws/clients.py against moto server: the engine client's parsing, the connection's config_kwargs (with a
real proxy), and botocore errors read into our terms."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.validate import ParamValidationDecorator

from ecs_executor.aws.clients import (
    AwsClients,
    EcsResponseParserFactory,
    PlainJsonParser,
    classify_exception,
    client_config,
    describe_error,
    ecs_client,
    error_code,
    is_throttle,
    may_have_been_applied,
    throttled_response,
)
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.core.triage import Verdict
from tests.conftest import CONTAINER, REGION
from tests.support.http_proxy import ForwardingProxy

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


# ---- the connection's config_kwargs ----------------------------------------------------------------


class CountingProxy(ForwardingProxy):
    """An HTTP proxy that forwards everything to moto and counts what it carried."""

    def __init__(self, upstream: str):
        super().__init__(upstream, name="counting-proxy")
        self.requests = 0

    async def intercept(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        return None


# Nothing listens on port 9 (discard): a call reaches moto only through the proxy.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def proxy(moto_url: str) -> Iterator[CountingProxy]:
    running = CountingProxy(moto_url).start()
    yield running
    running.stop()


@pytest.fixture
def proxied_connection(monkeypatch: pytest.MonkeyPatch, proxy: CountingProxy) -> str:
    """An Airflow connection whose config_kwargs set timeouts, a proxy, and options we own."""
    config_kwargs = {
        "read_timeout": 7,
        "connect_timeout": 3,
        "proxies": {"http": proxy.url},
        "user_agent_extra": "team-x",
        "retries": {"mode": "adaptive", "max_attempts": 9},
        "parameter_validation": True,
        "max_pool_connections": 500,
    }
    extra = {"endpoint_url": UNREACHABLE, "region_name": REGION, "config_kwargs": config_kwargs}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_PROXIED", json.dumps({"conn_type": "aws", "extra": extra}))
    return "aws_proxied"


def test_client_config_merges_key_by_key() -> None:
    ours = {"retries": {"mode": "standard"}, "read_timeout": 60, "max_pool_connections": 32}
    theirs = Config(
        read_timeout=5, retries={"mode": "legacy"}, max_pool_connections=4, proxies={"https": "p"}
    )
    merged = client_config(ours, theirs, owned=("retries",), aio=True)
    assert isinstance(merged, AioConfig)
    assert merged.read_timeout == 5 and merged.proxies == {"https": "p"}  # theirs
    assert merged.retries == {"mode": "standard"}  # owned: ours
    assert merged.max_pool_connections == 32  # never fewer than our concurrency
    assert client_config(ours, Config(max_pool_connections=100)).max_pool_connections == 100
    assert client_config(ours, None).read_timeout == 60


async def test_connection_config_reaches_the_engine_client(
    proxied_connection: str, proxy: CountingProxy, ecs_cluster: str
) -> None:
    settings = settings_from_mapping(
        {
            "cluster": ecs_cluster,
            "container_name": CONTAINER,
            "region_name": REGION,
            "task_definition": ecs_cluster,
            "conn_id": proxied_connection,
        }
    )
    client, stack = await ecs_client(settings)
    async with stack:
        config = client.meta.config
        assert (config.read_timeout, config.connect_timeout) == (7, 3)
        assert config.proxies == {"http": proxy.url}
        assert "team-x" in (config.user_agent_extra or "")
        assert config.retries["mode"] == "standard"  # ours: the engine's pacing depends on it
        # Not kept on meta.config: botocore wraps the serializer when validation is on.
        assert not isinstance(client._serializer, ParamValidationDecorator)
        assert config.max_pool_connections == 500
        answer = await client.describe_clusters(clusters=[ecs_cluster])
        assert answer["clusters"][0]["clusterName"] == ecs_cluster
    assert proxy.requests >= 1


def test_connection_config_reaches_the_boto3_clients(
    proxied_connection: str, proxy: CountingProxy, ecs_cluster: str
) -> None:
    clients = AwsClients(proxied_connection, REGION)
    ecs = clients.client("ecs")
    assert (ecs.meta.config.read_timeout, ecs.meta.config.connect_timeout) == (7, 3)
    assert ecs.meta.config.proxies == {"http": proxy.url}
    # Ours: a UI request stays bounded (botocore's max_attempts counts retries: 2 -> 3 in total) ...
    assert ecs.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    # ... and GetLogEvents is never retried behind our limiter's back.
    assert clients.client("logs").meta.config.retries["total_max_attempts"] == 1
    before = proxy.requests
    assert ecs.describe_clusters(clusters=[ecs_cluster])["clusters"][0]["clusterName"] == ecs_cluster
    assert proxy.requests == before + 1


# ---- botocore errors in our terms --------------------------------------------------------------------


def _client_error(code: str, status: int = 400, retries: int = 0) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries},
        },
        "RunTask",
    )


def test_errors_in_our_terms() -> None:
    throttle = _client_error("ThrottlingException")
    assert error_code(throttle) == ("ThrottlingException", "m", 400)
    assert is_throttle(throttle) and not is_throttle(OSError("x"))
    assert classify_exception(throttle).verdict == Verdict.RETRY
    assert classify_exception(NoCredentialsError()).verdict == Verdict.REFRESH_CREDENTIALS
    assert classify_exception(_client_error("ClientException")).verdict == Verdict.FAIL
    assert classify_exception(OSError("reset")).verdict == Verdict.RETRY
    assert may_have_been_applied(_client_error("ServerException", 500))
    assert may_have_been_applied(_client_error("ClientException", retries=1))
    assert not may_have_been_applied(_client_error("ClientException"))
    assert not may_have_been_applied(NoCredentialsError())
    assert throttled_response((None, {"Error": {"Code": "ThrottlingException"}}))
    assert not throttled_response((None, {"tasks": []})) and not throttled_response(None)
    assert describe_error(throttle) == "ThrottlingException: m"
    assert describe_error(NoCredentialsError()) == "no AWS credentials found"
    assert error_code(OSError("x")) == ("", "x", None)
