"""What-if runs: the engine fixes proposed in docs/benchmarks.md, applied as run-time patches.

They exist only so the report can show measured figures for each proposal next to the unchanged
executor (column "ecs_executor + fixes"); the executor's code is not modified. Each patch is the
smallest change that has the proposed effect:

* ``standard_retries``: the engine's aiobotocore client uses botocore's "standard" retry mode instead of
  "adaptive". Adaptive mode answers one ThrottlingException with a client-wide send-rate cut (CUBIC),
  which stalls every call, DescribeTasks included, for seconds; the engine already paces RunTask itself.
* ``no_param_validation``: ``parameter_validation=False``; RunTaskBuilder already validated every request
  against the same botocore shape.
* ``raw_timestamps``: botocore keeps timestamps as the numbers ECS sent instead of building tz-aware
  datetimes (the engine never reads them); a third of DescribeTasks parsing time.
* ``heartbeat_slice``: the scheduler thread hands over only as many workloads per heartbeat as the
  engine's RunTask bucket can start within the next second (the rest stay in ``queued_tasks`` for the
  next heartbeat).
* ``poll_commands``: the scheduler thread never wakes the engine (``call_soon_threadsafe`` writes to the
  loop's self-pipe: a syscall that releases the GIL, and getting it back from a busy engine thread takes
  up to ``sys.getswitchinterval()``, 5 ms, per message); the engine drains its command queue every 20 ms.
* ``drop_launch_task``: a launched task no longer keeps its finished asyncio.Task (and coroutine) alive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ALL = (
    "standard_retries",
    "no_param_validation",
    "raw_timestamps",
    "heartbeat_slice",
    "poll_commands",
    "drop_launch_task",
)
COMMAND_POLL_SECONDS = 0.02


def _client_config(**changes: Any) -> None:
    from ecs_executor import engine

    real = engine.AioConfig

    def config(**kwargs: Any) -> Any:
        return real(**{**kwargs, **changes})

    engine.AioConfig = config  # type: ignore[misc, assignment]


def standard_retries() -> None:
    from ecs_executor import engine

    real = engine.AioConfig

    def config(**kwargs: Any) -> Any:
        return real(**{**kwargs, "retries": {**(kwargs.get("retries") or {}), "mode": "standard"}})

    engine.AioConfig = config  # type: ignore[misc, assignment]


def no_param_validation() -> None:
    _client_config(parameter_validation=False)


def raw_timestamps() -> None:
    import botocore.parsers

    botocore.parsers.DEFAULT_TIMESTAMP_PARSER = lambda value: value


def heartbeat_slice() -> None:
    from ecs_executor.executor import EcsExecutor

    original = EcsExecutor._process_workloads

    def process(self: Any, workloads: Any) -> None:
        # Admit what the engine's RunTask bucket can start within a second: its tokens (negative when
        # launches are already waiting for one) plus one second of refill.
        bucket = self._engine._run_bucket
        now = time.monotonic()
        tokens = min(bucket.burst, bucket._tokens + (now - bucket._stamp) * bucket.rate)
        take = max(0, min(len(workloads), int(tokens + bucket.rate)))
        original(self, list(workloads)[:take])

    EcsExecutor._process_workloads = process  # type: ignore[method-assign]


def poll_commands() -> None:
    import asyncio

    from ecs_executor.messages import Channel

    original = Channel.bind_wakeup

    def bind_wakeup(self: Any, wake: Any) -> None:
        original(self, None)  # sends from the scheduler thread no longer wake the loop
        if wake is None:
            return
        loop = asyncio.get_running_loop()  # bound from the engine's loop, on its thread

        def tick() -> None:
            if self._what_if_ticking:
                wake()
                loop.call_later(COMMAND_POLL_SECONDS, tick)

        self._what_if_ticking = True
        loop.call_later(COMMAND_POLL_SECONDS, tick)

    def unbind(self: Any) -> None:
        self._what_if_ticking = False

    def bind(self: Any, wake: Any) -> None:
        if wake is None:
            unbind(self)
            original(self, None)
        else:
            bind_wakeup(self, wake)

    Channel.bind_wakeup = bind  # type: ignore[method-assign]


def drop_launch_task() -> None:
    from ecs_executor.engine import Engine

    original = Engine._launched

    def launched(self: Any, t: Any, task: Any) -> None:
        original(self, t, task)
        t.launch_task = None

    Engine._launched = launched  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {name: globals()[name] for name in ALL}


def apply(names: list[str]) -> None:
    for name in names:
        PATCHES[name]()
