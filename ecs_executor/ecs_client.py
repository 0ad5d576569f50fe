"""Builds the engine's one aiobotocore ECS client from the Airflow AWS connection.

Everything about the client that is a choice (retry mode, validation, how responses are parsed) is
here, with the measurement behind it; the engine only calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory

from ecs_executor.config import EcsExecutorSettings


class PlainJsonParser(AioJSONParser):
    """ECS speaks awsJson1.1, where the wire document already *is* botocore's parsed result.

    Member names on the wire are the shape's member names, timestamps stay the numbers ECS sent (the
    engine never reads them), and the ECS model has no blobs or renamed members. Walking the shape only
    rebuilds the same dicts: 0.089 → 0.054 ms CPU per described task, 0.86 → 0.70 ms per RunTask
    (``python -m benchmarks.client_cost``). Members the model does not know, and nulls, are kept.
    Error codes, metadata and retries stay botocore's; a modeled error's body is read this way too
    (adding its raw ``__type`` to ``exc.response``, which nothing reads).
    """

    def _handle_json_body(self, raw_body: bytes, shape: Any) -> Any:
        return self._parse_body_as_json(raw_body)


class EcsResponseParserFactory(AioResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return PlainJsonParser(**self._defaults)
        return super().create_parser(protocol_name)


async def default_client(settings: EcsExecutorSettings) -> tuple[Any, contextlib.AsyncExitStack]:
    """Client from the Airflow AWS connection (falls back to the default credential chain)."""
    session, endpoint_url, verify = await asyncio.to_thread(_session_from_connection, settings)
    config = AioConfig(
        max_pool_connections=max(10, settings.max_concurrent_calls),
        # "standard", not "adaptive": adaptive's client-side rate limiter is shared by every call of our
        # one client and collapses under throttling (measured: 162 of 300 RunTasks in 40 s at 14%
        # throttles vs all 300 in 5 s). We pace with our own token buckets, which slow down on throttles
        # (Engine._watch_throttles).
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=60,
        # Requests are validated where they are built (config at start-up, executor_config per task).
        parameter_validation=False,
    )
    # Our own session (the hook makes a new one), so these choices touch no other client.
    session.register_component("response_parser_factory", EcsResponseParserFactory())
    stack = contextlib.AsyncExitStack()
    client = await stack.enter_async_context(
        session.create_client(
            "ecs",
            region_name=settings.region_name,
            endpoint_url=endpoint_url,
            config=config,
            verify=verify,
        )
    )
    return client, stack


def _session_from_connection(settings: EcsExecutorSettings) -> tuple[Any, str | None, Any]:
    # Imported here: the provider import is slow and only the engine thread needs it.
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(
        aws_conn_id=settings.conn_id or None, client_type="ecs", region_name=settings.region_name
    )
    session = hook.get_session(region_name=settings.region_name, deferrable=True)
    endpoint_url = hook.conn_config.get_service_endpoint_url(service_name="ecs")
    return session, endpoint_url, hook.verify
