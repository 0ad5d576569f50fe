"""AWS plumbing in one place: the Airflow AWS connection, client configuration, clients, and errors.

* ``AwsConnection`` reads the Airflow AWS connection once (credentials, ``role_arn``, endpoint URLs,
  ``verify``, and its ``config_kwargs``) and makes botocore or aiobotocore sessions from it.
* ``client_config`` merges our client options with the connection's ``config_kwargs``, key by key
  (docs/configuration.md, "AWS connection and client options").
* ``ecs_client`` builds the engine's one long-lived aiobotocore ECS client (``sqs_client`` its SQS
  client in events mode, ``kms_client`` its KMS client when workloads are sealed); ``AwsClients`` the cached,
  synchronous boto3 clients of the check command and the CloudWatch log reader.
* ``classify_exception`` and friends read botocore's exceptions into our own terms (``core.triage``), so no
  other module needs to know botocore's exception classes.

Airflow and its Amazon provider are imported only when a connection is first used: the import is slow,
and pure modules, tests and ``python -m ecs_executor.local_ecs`` never need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)

from ecs_executor.core.triage import (
    THROTTLING_CODES,
    Decision,
    Verdict,
    classify_api_error,
    classify_connection_error,
)

if TYPE_CHECKING:
    from ecs_executor.config.settings import EcsExecutorSettings

# ---- client options --------------------------------------------------------------------------------

# The engine's ECS client. "standard", not "adaptive": adaptive's client-side rate limiter is shared by
# every call of our one client and collapses under throttling (docs/benchmarks.md, "Found by this
# harness"). We pace with our own token buckets, which slow down on throttles (the engine's needs-retry
# hook). Requests are validated where they are built (config at start-up,
# executor_config per task), so botocore's validation would only repeat that work.
ENGINE_CLIENT_OPTIONS: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 3},
    "connect_timeout": 10,
    "read_timeout": 60,
    "parameter_validation": False,
}
# What the engine depends on: the connection's config_kwargs cannot change these.
ENGINE_OWNED_OPTIONS = ("retries", "parameter_validation")
# Botocore's default pool; the engine raises it to its call concurrency (see engine_client_config).
MIN_POOL_CONNECTIONS = 10

# Synchronous clients (check command, live logs in the API server): short timeouts and few attempts,
# so a slow AWS answer never hangs a UI request or a one-shot CLI.
SYNC_CLIENT_OPTIONS: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 2},
    "connect_timeout": 5,
    "read_timeout": 15,
}
SYNC_OWNED_OPTIONS = ("retries",)
# Per service: CloudWatch Logs calls are paced by our own limiter (aws/container_logs.py), so botocore must
# not retry them behind its back: every request sent passes the limiter.
SERVICE_RETRIES: dict[str, dict[str, Any]] = {"logs": {"mode": "standard", "total_max_attempts": 1}}


def client_config(
    ours: Mapping[str, Any],
    theirs: Config | None,
    *,
    owned: Iterable[str] = (),
    aio: bool = False,
) -> Config:
    """Our options, overlaid by the connection's ``config_kwargs``, overlaid by the options we own.

    ``ours`` are defaults the connection may change (timeouts, and everything we do not set: proxies,
    user agent, TLS client certificate, FIPS/dual-stack endpoints, ...). ``owned`` names options whose
    value the executor depends on; theirs are ignored for those. ``max_pool_connections`` is the larger
    of ours and theirs: fewer connections than our concurrency would queue calls inside the client.
    """
    config_class = AioConfig if aio else Config
    merged: Config = config_class(**ours)
    if theirs is not None:
        merged = merged.merge(theirs)
    forced = {key: ours[key] for key in owned if key in ours}
    if "max_pool_connections" in ours:
        forced["max_pool_connections"] = max(int(ours["max_pool_connections"]), merged.max_pool_connections)
    return merged.merge(config_class(**forced)) if forced else merged


# ---- the Airflow AWS connection ---------------------------------------------------------------------


class AwsConnection:
    """The executor's Airflow AWS connection, read through the provider's ``AwsBaseHook``.

    So credentials, ``role_arn`` assumption (refreshable), ``config_kwargs``, ``verify`` and
    ``endpoint_url`` (global or per service in the connection extra) behave as for every other AWS hook;
    with no endpoint in the connection, botocore honours ``AWS_ENDPOINT_URL_<SERVICE>`` and
    ``AWS_ENDPOINT_URL``. A missing connection falls back to the default credential chain. Nothing is
    read before the first use (Airflow builds executors in the API server just to read logs).
    """

    def __init__(self, conn_id: str | None, region_name: str):
        self.conn_id = conn_id or None
        self.region_name = region_name
        self._hook: Any = None
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: EcsExecutorSettings) -> AwsConnection:
        return cls(settings.conn_id, settings.region_name)

    @property
    def hook(self) -> Any:
        with self._lock:
            if self._hook is None:
                from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

                self._hook = AwsBaseHook(
                    aws_conn_id=self.conn_id, client_type="ecs", region_name=self.region_name
                )
            return self._hook

    def session(self, region_name: str | None = None, *, aio: bool = False) -> Any:
        """A new boto3 (or, with ``aio``, aiobotocore) session with the connection's credentials."""
        return self.hook.get_session(region_name=region_name or self.region_name, deferrable=aio)

    def endpoint_url(self, service: str) -> str | None:
        return self.hook.conn_config.get_service_endpoint_url(service_name=service)  # type: ignore[no-any-return]

    @property
    def verify(self) -> Any:
        return self.hook.verify

    @property
    def user_config(self) -> Config | None:
        """The connection's ``config_kwargs`` as a botocore Config; None when it sets none."""
        config = self.hook.conn_config.botocore_config
        return config if isinstance(config, Config) else None

    def describe(self) -> str:
        """Which connection (or the default chain) and endpoint are used: never credentials."""
        try:
            conn_config = self.hook.conn_config
        except Exception as exc:
            return f"connection {self.conn_id!r} could not be loaded ({describe_error(exc)})"
        if not isinstance(conn_config.conn_id, str):
            where = (
                f"connection {self.conn_id!r} not found, using the default AWS credential chain"
                if self.conn_id
                else "default AWS credential chain"
            )
        else:
            where = f"connection {self.conn_id!r}"
            if conn_config.role_arn:
                where += f" assuming {conn_config.role_arn}"
        if conn_config.endpoint_url:
            where += f", endpoint {conn_config.endpoint_url}"
        return where


# ---- the engine's aiobotocore ECS client -------------------------------------------------------------


class PlainJsonParser(AioJSONParser):
    """ECS speaks awsJson1.1, where the wire document already *is* botocore's parsed result.

    Member names on the wire are the shape's member names, timestamps stay the numbers ECS sent (the
    engine never reads them), and the ECS model has no blobs or renamed members. Walking the shape only
    rebuilds the same dicts, for CPU per call (``python -m benchmarks.client_cost``; docs/benchmarks.md).
    Members the model does not know, and nulls, are kept.
    Error codes, metadata and retries stay botocore's; a modeled error's body is read this way too
    (adding its raw ``__type`` to ``exc.response``, which nothing reads).
    """

    def _handle_json_body(self, raw_body: bytes, shape: Any) -> Any:
        return self._parse_body_as_json(raw_body)


class EcsResponseParserFactory(AioResponseParserFactory):
    """Hands out ``PlainJsonParser`` for ECS's JSON protocol; every other protocol stays botocore's."""

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return PlainJsonParser(**self._defaults)
        return super().create_parser(protocol_name)


def engine_client_config(settings: EcsExecutorSettings, theirs: Config | None) -> Config:
    """The ECS client's options: ``ENGINE_CLIENT_OPTIONS`` plus a pool as large as our concurrency."""
    ours = {
        **ENGINE_CLIENT_OPTIONS,
        "max_pool_connections": max(
            MIN_POOL_CONNECTIONS, settings.max_concurrent_calls, settings.events_receivers + 2
        ),
    }
    return client_config(ours, theirs, owned=ENGINE_OWNED_OPTIONS, aio=True)


async def ecs_client(
    settings: EcsExecutorSettings, connection: AwsConnection | None = None
) -> tuple[Any, contextlib.AsyncExitStack]:
    """The engine's ECS client from the Airflow AWS connection; close it with the returned stack."""
    return await _engine_client("ecs", settings, connection, EcsResponseParserFactory())


async def sqs_client(
    settings: EcsExecutorSettings, connection: AwsConnection | None = None
) -> tuple[Any, contextlib.AsyncExitStack]:
    """The engine's SQS client (events mode), same connection and options as the ECS client."""
    return await _engine_client("sqs", settings, connection, None)


async def kms_client(
    settings: EcsExecutorSettings, connection: AwsConnection | None = None
) -> tuple[Any, contextlib.AsyncExitStack]:
    """The engine's KMS client (``workload_kms_key`` set), same connection and options as the ECS client;
    its endpoint: the connection's for ``kms``, else ``AWS_ENDPOINT_URL_KMS`` or ``AWS_ENDPOINT_URL``."""
    return await _engine_client("kms", settings, connection, None)


async def _engine_client(
    service: str, settings: EcsExecutorSettings, connection: AwsConnection | None, parsers: Any
) -> tuple[Any, contextlib.AsyncExitStack]:
    connection = connection or AwsConnection.for_settings(settings)

    def prepare() -> tuple[Any, str | None, Any, Config | None]:
        # The provider import and connection lookup block: off the event loop.
        session = connection.session(settings.region_name, aio=True)
        return session, connection.endpoint_url(service), connection.verify, connection.user_config

    session, endpoint_url, verify, theirs = await asyncio.to_thread(prepare)
    if parsers is not None:
        # A session of our own (the hook makes a new one each time), so this touches no other client.
        session.register_component("response_parser_factory", parsers)
    stack = contextlib.AsyncExitStack()
    client = await stack.enter_async_context(
        session.create_client(
            service,
            region_name=settings.region_name,
            endpoint_url=endpoint_url,
            config=engine_client_config(settings, theirs),
            verify=verify,
        )
    )
    return client, stack


# ---- synchronous boto3 clients -----------------------------------------------------------------------


class AwsClients:
    """boto3 clients from the Airflow AWS connection, created on first use and cached (thread-safe)."""

    def __init__(
        self,
        conn_id: str | None,
        region_name: str,
        *,
        connection: AwsConnection | None = None,
        options: Mapping[str, Any] | None = None,
    ):
        self.connection = connection or AwsConnection(conn_id, region_name)
        self.conn_id = self.connection.conn_id
        self.region_name = region_name
        self._options = dict(SYNC_CLIENT_OPTIONS if options is None else options)
        self._lock = threading.Lock()
        self._sessions: dict[str, Any] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    @classmethod
    def for_settings(cls, settings: EcsExecutorSettings) -> AwsClients:
        return cls(settings.conn_id, settings.region_name)

    def config_for(self, service: str) -> Config:
        """Our options for ``service`` merged with the connection's ``config_kwargs``."""
        ours = dict(self._options)
        if service in SERVICE_RETRIES:
            ours["retries"] = SERVICE_RETRIES[service]
        return client_config(ours, self.connection.user_config, owned=SYNC_OWNED_OPTIONS)

    def client(self, service: str, region_name: str | None = None) -> Any:
        region = region_name or self.region_name
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                session = self._sessions.get(region)
                if session is None:
                    session = self._sessions[region] = self.connection.session(region)
                self._clients[key] = session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.connection.endpoint_url(service),
                    config=self.config_for(service),
                    verify=self.connection.verify,
                )
            return self._clients[key]

    def describe_connection(self) -> str:
        return self.connection.describe()


# ---- botocore errors in our terms -----------------------------------------------------------------


def error_code(exc: BaseException) -> tuple[str, str, int | None]:
    """``(code, message, HTTP status)`` of a service error; ``("", str(exc), None)`` for anything else."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(err.get("Code", "Unknown")), str(err.get("Message", "")), status
    return "", str(exc), None


def classify_exception(exc: BaseException) -> Decision:
    """Map anything an ECS call can raise to a triage verdict."""
    if isinstance(exc, ClientError):
        return classify_api_error(*error_code(exc))
    if isinstance(exc, NoCredentialsError):
        return classify_api_error("NoCredentials", str(exc))
    if isinstance(exc, (ParamValidationError, NoRegionError)):
        return Decision(Verdict.FAIL, f"invalid RunTask request: {exc}")
    if isinstance(exc, (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        return classify_connection_error(f"{type(exc).__name__}: {exc}")
    return Decision(Verdict.FAIL, f"unexpected error {type(exc).__name__}: {exc}")


def is_throttle(exc: BaseException) -> bool:
    """The service refused the call for its rate."""
    return isinstance(exc, ClientError) and error_code(exc)[0] in THROTTLING_CODES


def may_have_been_applied(exc: BaseException) -> bool:
    """True when ECS may have acted on a request we got no usable answer for (lost reply, 5xx).

    Also when botocore retried before the final answer: an earlier attempt may have been the lost one.
    """
    if isinstance(exc, ClientError):
        metadata = exc.response.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode") or 0
        return int(status) >= 500 or int(metadata.get("RetryAttempts") or 0) > 0
    return not isinstance(exc, (NoCredentialsError, ParamValidationError, NoRegionError))


def _parsed(response: Any) -> dict[str, Any] | None:
    """The parsed half of botocore's ``(http_response, parsed)`` needs-retry argument."""
    if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict):
        return response[1]
    return None


def throttled_response(response: Any) -> bool:
    """Whether a needs-retry hook's ``response`` argument is a throttling answer."""
    parsed = _parsed(response)
    return parsed is not None and parsed.get("Error", {}).get("Code") in THROTTLING_CODES


def describe_error(exc: BaseException) -> str:
    """One short line for any boto error (codes and messages only: no request data or credentials)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code") or "Error"
        message = str(err.get("Message") or "").strip()
        return f"{code}: {message}" if message else str(code)
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
