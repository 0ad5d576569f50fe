"""The one place tests learn what an ``EcsExecutor`` keeps beyond what Airflow's ``BaseExecutor`` shows
(``running``, ``queued_tasks``, ``event_buffer``).

Tests read a frozen snapshot (``view``) and act through the few helpers below (play the engine's end of
the channel, stand a stub in for the engine, kill the engine thread). When the facade's bookkeeping
changes, this module changes, not the tests. Nothing here imports Airflow at module level.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ecs_executor import messages as m

if TYPE_CHECKING:
    from ecs_executor.engine import Engine
    from ecs_executor.executor import EcsExecutor


@dataclass(frozen=True)
class TaskEvent:
    """One task event log line the executor wrote (what Airflow shows in the task's audit log)."""

    task_id: str
    event: str
    extra: str


@dataclass(frozen=True)
class ExecutorView:
    """What the facade knows at one moment; copies, so a snapshot never changes under a test."""

    arns: Mapping[Hashable, str]  # the ECS task each try runs in, as far as the facade has heard
    pending: frozenset[Hashable]  # tries whose Launch a restarted engine would get again (not RUNNING yet)
    pending_attempts: Mapping[Hashable, int]  # ... and the launch attempt it would resume at
    superseded: Mapping[Hashable, str]  # try queued again -> its previous queueing's ECS task
    parked: tuple[Hashable, ...]  # keys of finals waiting for the notices sent before them
    queued_order: tuple[Hashable, ...]  # tries in flight, in the order they were last queued
    task_events: tuple[TaskEvent, ...]
    engine_alive: bool
    engine_crash: BaseException | None  # what ended the current engine's thread, if anything did
    engine_restarts: int  # restarts within the facade's restart window
    counters: Mapping[str, int]  # the engine's counters
    tracked: int  # ECS tasks the engine tracks

    def arn(self, key: Hashable) -> str | None:
        return self.arns.get(key)

    def events_for(self, task_id: str) -> list[tuple[str, str]]:
        """(event, extra) of every task event log line for ``task_id``, oldest first."""
        return [(e.event, e.extra) for e in self.task_events if e.task_id == task_id]


def view(executor: EcsExecutor) -> ExecutorView:
    """A read-only snapshot of ``executor``'s facade and engine."""
    ex: Any = executor
    engine = ex._engine
    return ExecutorView(
        arns=MappingProxyType(dict(ex._arns)),
        pending=frozenset(ex._pending),
        pending_attempts=MappingProxyType({k: launch.attempt for k, launch in ex._pending.items()}),
        superseded=MappingProxyType(dict(ex._superseded)),
        parked=tuple(getattr(result, "key", None) for _, result in ex._intake.parked),
        queued_order=tuple(ex._queued_seq),
        task_events=tuple(TaskEvent(log.task_id, log.event, str(log.extra)) for log in ex._task_event_logs),
        engine_alive=engine is not None and engine.is_alive(),
        engine_crash=engine.crash if engine is not None else None,
        engine_restarts=len(ex._restarts),
        counters=MappingProxyType(dict(engine.counters)) if engine is not None else MappingProxyType({}),
        tracked=engine.tracked_count() if engine is not None else 0,
    )


def arns(executor: EcsExecutor) -> dict[Hashable, str]:
    """The ECS task ARN per try (the cheap part of ``view``, for polling loops over many tasks)."""
    return dict(executor._arns)  # type: ignore[attr-defined]


def event_logs(executor: EcsExecutor, task_id: str) -> list[tuple[str, str]]:
    """(event, extra) of every task event log line for ``task_id`` (``view``'s ``events_for``, cheaply)."""
    logs = executor._task_event_logs  # type: ignore[attr-defined]
    return [(log.event, str(log.extra)) for log in logs if log.task_id == task_id]


def engine_of(executor: EcsExecutor) -> Engine:
    """The executor's current engine, for tests of the engine's own parts (its buckets, tracker, loop)."""
    engine = executor._engine  # type: ignore[attr-defined]
    assert engine is not None, "the executor was not started"
    return engine  # type: ignore[no-any-return]


def engine_loop(executor: EcsExecutor) -> Any:
    """The engine thread's asyncio loop (None until the thread runs it)."""
    return engine_of(executor)._loop  # type: ignore[attr-defined]


# ---- acting on the facade's channel ---------------------------------------------------------------


class EngineEnd:
    """The engine's end of an executor's channel: send results as the engine would, read the commands the
    facade sent. The channel is looked up on each call (a restarted engine gets a new one)."""

    def __init__(self, executor: EcsExecutor):
        self._executor = executor

    @property
    def _channel(self) -> m.Channel:
        return self._executor._channel  # type: ignore[attr-defined,no-any-return]

    def send(self, *results: m.Result) -> None:
        for result in results:
            self._channel.put_result(result)

    def commands(self) -> list[m.Command]:
        """Every command sent since the last call, in order (taken off the channel)."""
        return self._channel.drain_commands()

    def has_results(self) -> bool:
        return self._channel.has_results()

    def has_notices(self) -> bool:
        return not self._channel.notices.empty()

    def take_notice(self) -> m.Result:
        """The oldest notice not yet applied, taken off the channel (the facade never sees it)."""
        _, result = self._channel.notices.get_nowait()
        return result

    def record_results(self) -> list[m.Result]:
        """From now on, a copy of every result the engine sends (the facade still gets them)."""
        sent: list[m.Result] = []
        self._channel.finals = _RecordingQueue(sent)
        self._channel.notices = _RecordingQueue(sent)
        return sent


class _RecordingQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    def __init__(self, sent: list[m.Result]) -> None:
        super().__init__()
        self.sent = sent

    def put(self, item: m.Sequenced, block: bool = True, timeout: float | None = None) -> None:
        self.sent.append(item[1])
        super().put(item, block, timeout)


def replace_engine(monkeypatch: Any, factory: Callable[..., Any]) -> None:
    """Executors started from now on build their engine with ``factory`` (same arguments as ``Engine``)."""
    monkeypatch.setattr("ecs_executor.executor.Engine", factory)


def kill_engine(executor: EcsExecutor, how: str = "crash", timeout: float = 10.0) -> Engine:
    """Make the executor's engine thread die (as a bug would) and wait until it is gone.

    ``crash``: the engine's command handler raises, so ``Engine._main`` ends with an exception.
    ``stop``: the event loop is stopped under the engine's feet (``asyncio.run`` then raises).
    Returns the dead engine.
    """
    engine: Any = engine_of(executor)
    assert engine.is_alive()
    if how == "crash":

        def boom(command: Any) -> None:
            raise RuntimeError("injected engine crash")

        engine._handle = boom  # instance attribute shadows the method on the engine thread
        executor._channel.send(object())  # type: ignore[attr-defined,arg-type]  # any command wakes the loop
    elif how == "stop":
        loop = engine_loop(executor)
        loop.call_soon_threadsafe(loop.stop)
    else:
        raise ValueError(how)
    assert engine.join(timeout), "engine thread did not die"
    return engine  # type: ignore[no-any-return]
