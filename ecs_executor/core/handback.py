"""A try that handed itself back to Airflow before its container exited. Pure.

A reschedule-mode sensor's poke ends with the try UP_FOR_RESCHEDULE and a deferring task with it DEFERRED;
Airflow later moves it to SCHEDULED and queues the same try (same try number) again. Airflow's scheduler
(``_process_executor_events``) fails a try whose executor reports it finished while the task instance is
SCHEDULED, QUEUED or RUNNING with that try number, unless the executor holds the key or it is a resumed
deferral. So the end of a container whose try had already handed itself back is not reported: a report
arriving after Airflow moved the try to SCHEDULED would fail a try that ran fine. Only the try's own worker
(or the triggerer, for a deferral it fired) puts a try into these states; a worker that exits without
running the try leaves it QUEUED, and that end is still reported, so Airflow still fails it.
"""

from __future__ import annotations

from collections.abc import Hashable

# TaskInstanceState values (strings, as stored in Airflow's DB).
HANDED_BACK_STATES = frozenset({"up_for_reschedule", "deferred", "scheduled"})


def handed_back(key: Hashable, db_state: str | None, db_try_number: int | None) -> str | None:
    """The DB state if the try behind ``key`` handed itself back (a report must not follow), else None."""
    key_try = getattr(key, "try_number", None)
    if key_try is None or db_try_number != key_try or db_state not in HANDED_BACK_STATES:
        return None
    return db_state
