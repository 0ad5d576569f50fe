"""Task event logs kept alive until the scheduler has saved them: a workaround for Airflow 3.3.2."""

from __future__ import annotations

from collections import deque
from typing import Any


class RetainingDeque(deque):  # type: ignore[type-arg]
    """Works around Airflow 3.3.2 losing every task event log line.

    The scheduler drains ``_task_event_logs`` with ``popleft()`` inside a generator handed to
    ``session.bulk_save_objects``; SQLAlchemy keeps only weak references to the objects, so each ``Log``
    is garbage-collected before the INSERT and the batch fails ("NOT NULL constraint failed: log.event").
    Holding the drained objects until the next append (the next heartbeat, after the save) fixes it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._drained: list[Any] = []

    def popleft(self) -> Any:
        item = super().popleft()
        self._drained.append(item)
        return item

    def append(self, item: Any) -> None:
        if self._drained and not self:
            self._drained = []
        super().append(item)
