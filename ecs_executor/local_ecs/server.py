"""The HTTP side: the awsJson1_1 wire protocol, latency, throttling and fault injection.

Anything botocore can point ``endpoint_url`` at works: requests are ``POST /`` with
``X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>``; errors are HTTP 400 with
``{"__type": code, "message": ...}``, which botocore turns into ``ClientError`` with that code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import web

from ecs_executor.local_ecs.event_publisher import EventPublisher
from ecs_executor.local_ecs.faults import Faults
from ecs_executor.local_ecs.knobs import KnobError, Knobs
from ecs_executor.local_ecs.model import EcsError, task_id_of
from ecs_executor.local_ecs.operations import EcsApi
from ecs_executor.local_ecs.registry import Registry
from ecs_executor.local_ecs.runner import Runner

log = logging.getLogger(__name__)

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
CONTENT_TYPE = "application/x-amz-json-1.1"
CONTROL = "/_local_ecs"

_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def _error(error: EcsError) -> web.Response:
    return _answer(error.status, error.body())


def _drop(request: web.Request) -> NoReturn:
    """Close the connection without an answer, like a reset or a reply lost on the way back."""
    if request.transport is not None:
        request.transport.abort()
    raise web.HTTPServiceUnavailable()  # never reaches the client: the socket is gone


class EcsServer:
    """A local ECS endpoint bound to the running event loop (see ``LocalEcs`` for a threaded one)."""

    def __init__(self, **knobs: Any) -> None:
        self.knobs = Knobs()
        self.knobs.update(knobs)
        self.registry = Registry()
        self.events = EventPublisher(self.knobs, self.registry.clock)
        self.registry.on_change = self.events.on_change
        self.faults = Faults(self.knobs)
        self.runner = Runner(self.registry, self.knobs)
        self.api = EcsApi(self.registry, self.runner, self.faults)
        self.calls: Counter[str] = Counter()
        self.url: str | None = None
        self._app_runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=16 * 1024 * 1024)
        self.app.router.add_post("/", self._handle_ecs)
        self.app.router.add_get("/", self._health)
        self.app.router.add_get(f"{CONTROL}/health", self._health)
        self.app.router.add_get(f"{CONTROL}/stats", self._stats)
        self.app.router.add_get(f"{CONTROL}/launches", self._launches)
        self.app.router.add_get(f"{CONTROL}/config", self._config)
        self.app.router.add_post(f"{CONTROL}/config", self._config)
        self.app.router.add_post(f"{CONTROL}/finish", self._finish)

    # Lifecycle -------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and return the endpoint URL (``port=0`` picks a free port)."""
        sock = socket.create_server((host, port), backlog=2048)
        self._app_runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._app_runner.setup()
        await web.SockSite(self._app_runner, sock).start()
        bound_host, bound_port = sock.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        return self.url

    async def close(self) -> None:
        await self.runner.shutdown()
        await asyncio.to_thread(self.events.close)
        if self._app_runner is not None:
            await self._app_runner.cleanup()
            self._app_runner = None

    # Python API (call on the loop's thread) ---------------------------------------------------------

    def configure(self, **knobs: Any) -> dict[str, Any]:
        changed = self.knobs.update(knobs)
        # Setting a shortage again, even to the same length, opens a new window from now.
        self.faults.reconfigure([*changed, *({"capacity_shortage_seconds"} & set(knobs))])
        self.events.reconfigure(changed)
        if "seed" in changed:
            self.runner.timing.reseed()
        return self.knobs.as_dict()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "faults": dict(self.faults.injected),
            "tasks_started": self.registry.tasks_started,
            "run_task_deduplicated": self.registry.deduplicated,
            "tasks_by_status": {status: n for status, n in self.registry.status_counts.items() if n},
            "processes": self.runner.process_count,
            "events": self.events.stats(),
        }

    def launch_records(self) -> list[dict[str, Any]]:
        """Per launched task, in launch order: the image(s), platform, sizes and GPU it ran with."""
        tasks = [task for cluster in self.registry.clusters.values() for task in cluster.tasks.values()]
        return [task.ran_with() for task in sorted(tasks, key=lambda task: task.seq)]

    def finish_task(self, task: str, exit_code: int = 0) -> bool:
        """Make a task's containers exit now; False for unknown or already stopping tasks."""
        found = self.registry.find_task(task)
        return found is not None and self.runner.finish(found, exit_code)

    def log_path(self, task: str) -> Path:
        return self.runner.log_path(task_id_of(task))

    def bootstrap(
        self, clusters: list[str], task_definitions: list[dict[str, Any]], region: str | None = None
    ) -> None:
        """Pre-create clusters and task definitions so a demo needs no setup calls."""
        region = region or self.knobs.default_region
        for name in clusters:
            self.api.call("CreateCluster", region, {"clusterName": name})
        for definition in task_definitions:
            self.api.call("RegisterTaskDefinition", region, definition)

    # HTTP ------------------------------------------------------------------------------------------

    def _region(self, request: web.Request) -> str:
        match = _REGION.search(request.headers.get("Authorization", ""))
        return match.group(1) if match else self.knobs.default_region

    async def _handle_ecs(self, request: web.Request) -> web.Response:
        service, _, operation = request.headers.get("X-Amz-Target", "").partition(".")
        if service != TARGET_PREFIX or operation not in self.api.operations:
            return _error(
                EcsError("UnknownOperationException", f"Unknown operation {operation or service!r}.")
            )
        try:
            params = json.loads(await request.read() or b"{}")
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return _error(EcsError("SerializationException", "Request body is not a JSON object."))
        region = self._region(request)
        self.calls[operation] += 1

        delay = self.faults.latency()
        if delay > 0:
            await asyncio.sleep(delay)
        fargate_launches = self.api.fargate_launches(region, params) if operation == "RunTask" else 0
        if self.faults.bucket_throttled(operation, fargate_launches):
            return _error(EcsError("ThrottlingException", "Rate exceeded"))
        fault = self.faults.before_call(operation)
        if fault == "throttle":
            return _error(EcsError("ThrottlingException", "Rate exceeded"))
        if fault == "server_error":
            status = self.faults.server_error_status()
            return _error(EcsError("ServerException", "Service unavailable (injected fault)", status=status))
        if fault == "reset":
            _drop(request)

        try:
            result = self.api.call(operation, region, params)
        except EcsError as exc:
            return _error(exc)
        except Exception:  # a bug or a malformed request the model did not expect
            log.exception("%s failed", operation)
            return _error(
                EcsError("ServerException", "Internal error in the local ECS endpoint.", status=500)
            )
        if self.faults.lose_reply(operation):
            _drop(request)
        return _answer(200, result)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _launches(self, request: web.Request) -> web.Response:
        """``launch_records()`` for tests that run the endpoint as its own process."""
        return web.json_response(self.launch_records())

    async def _config(self, request: web.Request) -> web.Response:
        values: Any = await request.json() if request.method == "POST" and request.can_read_body else {}
        if not isinstance(values, dict):
            return web.json_response({"error": "expected a JSON object of knobs"}, status=400)
        try:
            return web.json_response(self.configure(**values))
        except KnobError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def _finish(self, request: web.Request) -> web.Response:
        body = await request.json()
        task = self.registry.find_task(str(body.get("task", "")))
        if task is None:
            return web.json_response({"error": "unknown task"}, status=404)
        return web.json_response({"finished": self.runner.finish(task, int(body.get("exitCode", 0)))})
