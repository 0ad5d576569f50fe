"""Tries Airflow queues again for the same try number, under a real Airflow (SQLite, scheduler, triggerer)
and the local ECS endpoint: reschedule-mode sensors poking every 2 s and 5 s and a one-second deferral,
with too few executor slots for all of them (so rescheduled tries wait in SCHEDULED). Without the engine's
read of the try's DB state (``handback``), Airflow fails most 2 s sensors here ("finished with state
success, but the task instance's state attribute is scheduled"; ``benchmarks/race.py`` measures it).
Slow tier: a minute or two per tracking mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.race import run_config

TIMING = "fargate"  # seconds between ECS states, the exit code before STOPPED


@pytest.mark.timeout(900)
@pytest.mark.parametrize("tracking", ["polling", "events"])
def test_no_try_is_lost_to_the_scheduled_race(tracking: str, tmp_path: Path) -> None:
    result = run_config("ecs", tracking, TIMING, runs=1, copies=2, parallelism=4, workdir=tmp_path)
    print(result)
    assert result["tis"] == 12
    assert result["not_success"] == [] and result["failed_runs"] == 0
    assert result["state_mismatch_rows"] == 0
    # Each sensor pokes three times: the first two pokes' ends were withheld, not merely lucky.
    assert result["handed_back"] >= 4
