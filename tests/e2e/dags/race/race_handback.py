"""Tries Airflow queues again for the same try number, in quick succession: reschedule-mode sensors that
poke every 2 s and 5 s (three pokes each) and a task that defers for one second and resumes, each with a
task downstream. With no retries, a try lost to the "finished while scheduled" race shows as a failed
sensor and an upstream_failed downstream task. Used by tests/e2e/test_race_handback.py and benchmarks/race.py;
``RACE_COPIES`` (environment) sets how many of each the DAG holds."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import DAG, BaseOperator

COPIES = int(os.environ.get("RACE_COPIES", "1"))
POKES = 3


def third_poke(**context: Any) -> bool:
    return int(context["task_reschedule_count"]) >= POKES - 1


class QuickDeferral(BaseOperator):
    """Defers for one second on the triggerer, then resumes: the same try queued a second time."""

    def execute(self, context: Any) -> None:
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=1)), method_name="resume")

    def resume(self, context: Any, event: Any = None) -> str:
        return "resumed"


with DAG("race_handback", schedule=None, catchup=False, default_args={"retries": 0}, tags=["race"]) as dag:
    for i in range(COPIES):
        for interval in (2, 5):
            sensor = PythonSensor(
                task_id=f"poke_every_{interval}s_{i}",
                python_callable=third_poke,
                mode="reschedule",
                poke_interval=interval,
                timeout=600,
            )
            sensor >> PythonOperator(
                task_id=f"after_poke_every_{interval}s_{i}", python_callable=lambda: None
            )
        deferral = QuickDeferral(task_id=f"quick_deferral_{i}")
        deferral >> PythonOperator(task_id=f"after_quick_deferral_{i}", python_callable=lambda: None)
