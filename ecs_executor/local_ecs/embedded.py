"""``LocalEcs``: the endpoint on a background thread, for tests and scripts that are not async.

The server gets its own event loop so a slow or blocking caller (a synchronous boto3 client, a test's
``time.sleep``) can never stall the tasks' timers and processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ecs_executor.local_ecs.server import EcsServer

T = TypeVar("T")


class LocalEcs:
    """A local ECS endpoint: ``with LocalEcs(pretend_seconds=1) as ecs:`` then ``endpoint_url=ecs.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self.host = host
        self.port = port
        self.server = EcsServer(**knobs)  # bad knobs fail here, in the caller's thread
        self.url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Serve on a daemon thread; return the URL once the socket is listening."""
        if self.url is not None:
            return self.url
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                ready.set_result(loop.run_until_complete(self.server.start(self.host, self.port)))
            except BaseException as exc:
                ready.set_exception(exc)
                loop.close()
                return
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.server.close())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=serve, name="local-ecs", daemon=True)
        self._thread.start()
        self.url = ready.result(timeout=30)
        return self.url

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving and kill every task process."""
        if self._loop is None or self._thread is None:
            return
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = self._thread = None
        self.url = None

    def _call(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the server's loop: the registry is not thread-safe."""
        loop = self._loop
        if loop is None or self._thread is None:
            return function()
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(function())
            except BaseException as exc:
                result.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return result.result(timeout=30)

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs while serving; returns all current values."""
        return self._call(lambda: self.server.configure(**knobs))

    def stats(self) -> dict[str, Any]:
        return self._call(self.server.stats)

    def launch_records(self) -> list[dict[str, Any]]:
        """Per launched task: image(s), runtimePlatform, cpu/memory, ephemeral storage, GPU it ran with."""
        return self._call(self.server.launch_records)

    def finish_task(self, task: str, exit_code: int = 0) -> bool:
        """Make a task's containers exit now with ``exit_code`` (ARN or id)."""
        return self._call(lambda: self.server.finish_task(task, exit_code))

    def wait_for_events(self, timeout: float = 10.0) -> bool:
        """Wait until every task state change event so far reached SQS (or was dropped by a fault)."""
        return self.server.events.wait_idle(timeout)

    def log_path(self, task: str) -> Path:
        """The file holding a task's stdout and stderr (ARN or id)."""
        return self._call(lambda: self.server.log_path(task))

    def bootstrap(
        self,
        clusters: Sequence[str] = (),
        task_definitions: Sequence[dict[str, Any]] = (),
        region: str | None = None,
    ) -> None:
        self._call(lambda: self.server.bootstrap(list(clusters), list(task_definitions), region))

    def __enter__(self) -> LocalEcs:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
