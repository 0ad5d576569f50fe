"""Airflow's LocalExecutor with its ends reaching the scheduler a few seconds late, as a remote executor's
do: reproduces the race of docs/known-airflow-issues.md without ECS (``benchmarks.race --kinds
local-late``)."""

from __future__ import annotations

import time
from typing import Any

from airflow.executors.local_executor import LocalExecutor
from airflow.utils.state import TaskInstanceState

DELAY_SECONDS = 3.0
_ENDS = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)


class LateLocalExecutor(LocalExecutor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._late: list[tuple[float, Any, Any, Any, bool]] = []
        self._releasing = False

    def change_state(self, key: Any, state: Any, info: Any = None, remove_running: bool = True) -> None:
        if state in _ENDS and not self._releasing:
            self._late.append((time.monotonic() + DELAY_SECONDS, key, state, info, remove_running))
            return
        super().change_state(key, state, info, remove_running)

    def sync(self) -> None:
        super().sync()
        now = time.monotonic()
        due = [late for late in self._late if late[0] <= now]
        self._late = [late for late in self._late if late[0] > now]
        self._releasing = True
        try:
            for _, key, state, info, remove_running in due:
                super().change_state(key, state, info, remove_running)
        finally:
            self._releasing = False
