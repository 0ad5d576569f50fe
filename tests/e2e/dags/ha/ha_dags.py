"""DAGs for the several-scheduler tests: each mapped over ``dag_run.conf["n"]`` task instances.

* ``ha_fanout_a``/``ha_fanout_b``: plain Python tasks (the bulk of the task instances).
* ``ha_deferrable``: each try defers to the triggerer for 2 s and is queued again for the same try.
* ``ha_reschedule``: a ``mode="reschedule"`` sensor done at its second poke (the same try queued twice).
  It pokes every 60 s, the minimum Airflow advises for reschedule mode: the scheduler reschedules the
  try after the interval, and if the executor has not yet reported the first poke's ECS task as ended
  (a DescribeTasks sweep and a heartbeat, seconds on a loaded machine), Airflow fails the try as
  "state changed externally" (it excuses the race for deferred tries, not for rescheduled ones). Seen
  with 1 s and, under heavy load, 15 s.
* ``ha_sleepers``: tasks that run ``conf["seconds"]`` long, so a scheduler can die while they run.

At most ``MAX_ACTIVE`` task instances of each of the first four run at once: every one is a Python
process of seconds of CPU, and more at once on two cores only slows the API server they all talk to.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Any

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator, dag, get_current_context, task

START = datetime.datetime(2026, 1, 1)
MAX_ACTIVE = 4


@task
def plan() -> list[int]:
    return list(range(int(get_current_context()["dag_run"].conf.get("n", 10))))


def fanout(dag_id: str) -> Any:
    @dag(dag_id=dag_id, schedule=None, start_date=START, catchup=False, max_active_tasks=MAX_ACTIVE)
    def build() -> None:
        @task
        def work(i: int) -> int:
            return i * i

        work.expand(i=plan())

    return build()


ha_fanout_a = fanout("ha_fanout_a")
ha_fanout_b = fanout("ha_fanout_b")


class DeferOnce(BaseOperator):
    """Defers to the triggerer once, then finishes in ``resume`` (a second queueing of the same try)."""

    def __init__(self, *, i: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.i = i

    def execute(self, context: Any) -> None:
        self.defer(trigger=TimeDeltaTrigger(datetime.timedelta(seconds=2)), method_name="resume")

    def resume(self, context: Any, event: Any = None) -> int:
        return self.i


@dag(schedule=None, start_date=START, catchup=False, max_active_tasks=MAX_ACTIVE)
def ha_deferrable() -> None:
    DeferOnce.partial(task_id="defer").expand(i=plan())


@dag(schedule=None, start_date=START, catchup=False, max_active_tasks=MAX_ACTIVE)
def ha_reschedule() -> None:
    @task.sensor(poke_interval=60, mode="reschedule", timeout=3600)
    def second_poke(i: int) -> bool:
        """False at the first poke (leaving a marker), True at the next."""
        ctx = get_current_context()
        marker = Path(os.environ["AIRFLOW_HOME"]) / "pokes" / f"{ctx['run_id']}-{i}"
        if marker.exists():
            return True
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return False

    second_poke.expand(i=plan())


@dag(schedule=None, start_date=START, catchup=False, max_active_tasks=200)
def ha_sleepers() -> None:
    @task
    def sleep(i: int) -> int:
        time.sleep(float(get_current_context()["dag_run"].conf.get("seconds", 60)))
        return i

    sleep.expand(i=plan())


ha_deferrable()
ha_reschedule()
ha_sleepers()
