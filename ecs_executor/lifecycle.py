"""One Airflow try as the engine tracks it: an explicit state and the only transitions allowed. Pure.

::

    QUEUED ─► LAUNCHING ─► PENDING ─► RUNNING ─► DONE
                 ▲   │        │          │
                 │   ▼        ▼          ▼ (Spot, opted in)
                 └ RELAUNCHING ◄─────────┘
    ADOPTED ─► PENDING / RUNNING / DONE        any live state ─► STOPPING ─► DONE

``DONE`` means the executor has been told the final word (or the try was revoked); nothing follows it.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from ecs_executor.run_task import TaskIdentity
from ecs_executor.states import Phase


class TaskState(str, enum.Enum):
    QUEUED = "queued"  # received from the executor, not sent to ECS yet
    LAUNCHING = "launching"  # RunTask in progress (including retries of the same call)
    RELAUNCHING = "relaunching"  # the last attempt produced no task; waiting for the next one
    PENDING = "pending"  # ECS accepted the task; its container has not started
    RUNNING = "running"  # the Airflow try is running (it will never be relaunched by us)
    ADOPTED = "adopted"  # launched by an earlier scheduler; state unknown until described
    STOPPING = "stopping"  # revoked or shut down: settle and stop, report nothing
    DONE = "done"  # final state reported (or nothing to report any more)


_LIVE = {
    TaskState.QUEUED,
    TaskState.LAUNCHING,
    TaskState.RELAUNCHING,
    TaskState.PENDING,
    TaskState.RUNNING,
    TaskState.ADOPTED,
}
ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: frozenset({TaskState.LAUNCHING}),
    TaskState.LAUNCHING: frozenset({TaskState.PENDING, TaskState.RUNNING, TaskState.RELAUNCHING}),
    TaskState.RELAUNCHING: frozenset({TaskState.LAUNCHING}),
    TaskState.PENDING: frozenset({TaskState.RUNNING, TaskState.RELAUNCHING}),
    TaskState.RUNNING: frozenset({TaskState.RELAUNCHING}),
    TaskState.ADOPTED: frozenset({TaskState.PENDING, TaskState.RUNNING}),
    TaskState.STOPPING: frozenset(),
    TaskState.DONE: frozenset(),
}
# Every live state may end (reported) or be revoked.
for _state in _LIVE:
    ALLOWED[_state] = ALLOWED[_state] | {TaskState.DONE, TaskState.STOPPING}
ALLOWED[TaskState.STOPPING] = frozenset({TaskState.DONE})


class IllegalTransition(RuntimeError):
    """A bug: the engine tried a transition the lifecycle does not allow."""


@dataclass(eq=False, slots=True)
class Tracked:
    """Kept small: thousands live at once."""

    key: Hashable
    identity: TaskIdentity
    cluster: str  # every call about this task goes to its own cluster
    state: TaskState = TaskState.QUEUED
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
    launch_task: Any = field(default=None, repr=False)  # the asyncio task launching it
    # Until the task runs: what a relaunch rebuilds its arguments from (a task that ran is never relaunched,
    # except a Spot interruption when opted in).
    source: Any = field(default=None, repr=False)

    def move(self, to: TaskState) -> None:
        if to is self.state:
            return
        if to not in ALLOWED[self.state]:
            raise IllegalTransition(f"{self.identity}: {self.state.value} -> {to.value} is not allowed")
        self.state = to

    @property
    def live(self) -> bool:
        return self.state in _LIVE

    @property
    def stopping(self) -> bool:
        return self.state is TaskState.STOPPING
