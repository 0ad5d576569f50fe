"""facade/task_event_logs.py: the task event log workaround for Airflow 3.3.2."""

from __future__ import annotations

from ecs_executor.facade.task_event_logs import RetainingDeque


def test_drained_items_stay_alive_until_the_next_append() -> None:
    """Airflow 3.3.2 drains task event logs in a generator SQLAlchemy holds weakly (see the docstring)."""
    q = RetainingDeque()
    first = object()
    q.append(first)
    assert q.popleft() is first and q._drained == [first]
    q.append(object())  # the next heartbeat: the previous batch has been saved
    assert q._drained == []
