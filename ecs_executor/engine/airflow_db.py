"""The one thing the engine reads from Airflow's metadata DB: the state of tries whose container exited
(``handback``). Read in a worker thread, one query per batch of ends, never on the scheduler's heartbeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Sequence

log = logging.getLogger(__name__)

# After a failed read (no DB: tests and benchmarks without Airflow's DB), ends are reported unread for this
# long instead of paying a failing query per batch.
READ_FAILURE_PAUSE_SECONDS = 60.0

TryStates = dict[tuple[str, str, str, int], tuple[str | None, int]]


class TryStateReader:
    def __init__(self) -> None:
        self._paused_until = 0.0

    def wanted(self, keys: Sequence[Hashable]) -> bool:
        """Whether a read is worth a thread: task instance keys, and the DB did not just fail."""
        return time.monotonic() >= self._paused_until and any(_is_ti_key(key) for key in keys)

    def read(self, keys: Sequence[Hashable]) -> TryStates:
        """State and try number by (dag_id, task_id, run_id, map_index); {} when the DB cannot be read."""
        tis = [key for key in keys if _is_ti_key(key)]
        if not tis:
            return {}
        try:
            return _query(tis)
        except Exception as exc:
            self._paused_until = time.monotonic() + READ_FAILURE_PAUSE_SECONDS
            log.warning(
                "Could not read task instance states from Airflow's DB (%s: %s); tries whose container "
                "exited are reported without it for %.0fs",
                type(exc).__name__,
                exc,
                READ_FAILURE_PAUSE_SECONDS,
            )
            return {}


def _query(tis: Sequence[Hashable]) -> TryStates:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    condition = TaskInstance.filter_for_tis(tis)  # type: ignore[arg-type]
    if condition is None:
        return {}
    query = select(
        TaskInstance.dag_id,
        TaskInstance.task_id,
        TaskInstance.run_id,
        TaskInstance.map_index,
        TaskInstance.state,
        TaskInstance.try_number,
    ).where(condition)
    with create_session() as session:
        rows = session.execute(query).all()
    return {(r[0], r[1], r[2], r[3]): (None if r[4] is None else str(r[4]), int(r[5])) for r in rows}


def _is_ti_key(key: Hashable) -> bool:
    return hasattr(key, "primary") and hasattr(key, "try_number")
