"""One Airflow try as the engine tracks it: an explicit state and the only transitions allowed. Pure.

::

    QUEUED ─► LAUNCHING ─► PENDING ─► RUNNING ─► (EXITED ─►) DONE
                 ▲   │        │
                 │   ▼        ▼
                 └ RELAUNCHING ◄
    ADOPTED ─► PENDING / RUNNING / EXITED / DONE        any live state ─► STOPPING ─► DONE
    PENDING / RUNNING / ADOPTED ─► SUPERSEDED ─► STOPPING / DONE

``DONE`` means nothing more is reported or watched. ``EXITED`` and ``SUPERSEDED`` are watched only: the
executor has its final word (or no longer wants one) while ECS still stops the task.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from ecs_executor.core.task_status import Phase
from ecs_executor.request.run_task import TryIdentity


class TryState(str, enum.Enum):
    """Where the engine is with one try; its ECS task's own phase is ``core.task_status.Phase``."""

    QUEUED = "queued"  # received from the executor, not sent to ECS yet
    LAUNCHING = "launching"  # RunTask in progress (including retries of the same call)
    RELAUNCHING = "relaunching"  # the last attempt produced no task; waiting for the next one
    PENDING = "pending"  # ECS accepted the task; its container has not started
    RUNNING = "running"  # the Airflow try is running (it will never be relaunched by us)
    ADOPTED = "adopted"  # launched by an earlier scheduler; state unknown until described
    STOPPING = "stopping"  # revoked or shut down: settle and stop, report nothing
    # Watched until ECS says STOPPED, reporting nothing: the container exited and its verdict was reported
    # (EXITED), or Airflow queued the try again and a new ECS task answers for it (SUPERSEDED).
    EXITED = "exited"
    SUPERSEDED = "superseded"
    DONE = "done"  # nothing more to report or watch


_LIVE = {
    TryState.QUEUED,
    TryState.LAUNCHING,
    TryState.RELAUNCHING,
    TryState.PENDING,
    TryState.RUNNING,
    TryState.ADOPTED,
}
ALLOWED: dict[TryState, frozenset[TryState]] = {
    TryState.QUEUED: frozenset({TryState.LAUNCHING}),
    TryState.LAUNCHING: frozenset({TryState.PENDING, TryState.RUNNING, TryState.RELAUNCHING}),
    TryState.RELAUNCHING: frozenset({TryState.LAUNCHING}),
    TryState.PENDING: frozenset({TryState.RUNNING, TryState.RELAUNCHING, TryState.EXITED}),
    TryState.RUNNING: frozenset({TryState.EXITED}),
    TryState.ADOPTED: frozenset({TryState.PENDING, TryState.RUNNING, TryState.EXITED}),
    TryState.STOPPING: frozenset(),
    TryState.EXITED: frozenset({TryState.DONE}),
    TryState.SUPERSEDED: frozenset({TryState.STOPPING, TryState.DONE}),
    TryState.DONE: frozenset(),
}
# Every live state may end (reported) or be revoked.
for _state in _LIVE:
    ALLOWED[_state] = ALLOWED[_state] | {TryState.DONE, TryState.STOPPING}
ALLOWED[TryState.STOPPING] = frozenset({TryState.DONE})
for _state in (TryState.PENDING, TryState.RUNNING, TryState.ADOPTED):
    ALLOWED[_state] = ALLOWED[_state] | {TryState.SUPERSEDED}
WATCHED = frozenset({TryState.EXITED, TryState.SUPERSEDED})


class IllegalTransition(RuntimeError):
    """A bug: the engine tried a transition the lifecycle does not allow."""


@dataclass(eq=False, slots=True)
class Tracked:
    """Kept small: thousands live at once."""

    key: Hashable
    identity: TryIdentity
    cluster: str  # every call about its ECS task goes to that task's cluster
    state: TryState = TryState.QUEUED
    kwargs: dict[str, Any] | None = None  # RunTask arguments, only while RunTask attempts are in progress
    deadline: float | None = None  # monotonic time the workload token expires
    attempt: int = 1
    arn: str | None = None
    phase: Phase | None = None  # the last phase ECS reported
    missing_polls: int = 0
    version: int = 0  # the newest ECS task version heard (RunTask, DescribeTasks or an event)
    heard_at: float = 0.0  # monotonic time of the last answer or event about it (events mode reconciles)
    capacity_since: float | None = None  # first capacity failure of this try
    capacity_relaunches: int = 0  # launch attempts spent waiting for capacity (not on max_run_task_attempts)
    fallback: Any = field(default=None, repr=False)  # its core.fallback.Fallback, when it has one
    fallback_reason: str | None = None  # set once the try has moved to its fallback target, for good
    launch_future: Any = field(default=None, repr=False)  # the asyncio.Task running its launch or relaunch
    # Until the try runs: what a relaunch rebuilds its arguments from (a try seen RUNNING is never
    # relaunched).
    source: Any = field(default=None, repr=False)

    def move(self, to: TryState) -> None:
        if to is self.state:
            return
        if to not in ALLOWED[self.state]:
            raise IllegalTransition(f"{self.identity}: {self.state.value} -> {to.value} is not allowed")
        self.state = to

    @property
    def live(self) -> bool:
        return self.state in _LIVE

    @property
    def watched(self) -> bool:
        """Described until STOPPED, but nothing about it is reported."""
        return self.state in WATCHED

    @property
    def stopping(self) -> bool:
        return self.state is TryState.STOPPING
