"""Events mode end to end: a real Airflow (SQLite, api-server, scheduler, dag-processor), our executor
tracking by ECS task state change events that the local ECS endpoint publishes to moto's SQS, with a
share of them lost, duplicated and reordered, and a scheduler restart while tasks run."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from ecs_executor.demo.deployment import LocalDeployment

DAGS = Path(__file__).parent / "dags" / "parallel"
EXPECTED = {"ok_a": "success", "ok_b": "success", "fails": "failed", "crashes": "failed", "sleeps": "success"}
FINAL_EVENT = re.compile(
    r"Received executor event with state (success|failed) for task instance "
    r"TaskInstanceKey\(dag_id='e2e_parallel', task_id='(\w+)', run_id='([^']+)'"
)


@pytest.fixture
def stack(tmp_path: Path):
    s = LocalDeployment(
        tmp_path / "stack",
        dags_folder=DAGS,
        tracking="events",
        timing="fargate",
        # Short, so a lost final event shows within the test; the default is 60 s.
        executor_options={"reconcile_interval": "5"},
    )
    try:
        yield s
    finally:
        s.stop()


def endpoint_stats(stack: LocalDeployment) -> dict:
    with urllib.request.urlopen(f"{stack.ecs_url}/_local_ecs/stats", timeout=10) as answer:
        return json.loads(answer.read())


def final_events(stack: LocalDeployment, run_id: str) -> Counter[str]:
    text = (stack.logs / "scheduler.log").read_text()
    return Counter(task for _, task, run in FINAL_EVENT.findall(text) if run == run_id)


def states(stack: LocalDeployment, run_id: str) -> dict[str, str]:
    return {r["task_id"]: r["state"] for r in stack.task_rows("e2e_parallel", run_id)}


def test_lost_duplicated_and_reordered_events_and_a_scheduler_restart(stack: LocalDeployment) -> None:
    stack.start_local_ecs(
        "--events-drop-rate", "0.25", "--events-duplicate-rate", "0.3", "--events-max-delay-seconds", "1.5",
        "--seed", "14",
    )  # fmt: skip
    stack.start()
    stack.wait_for_dag("e2e_parallel")
    scheduler_log = stack.logs / "scheduler.log"

    # 1. Faulty delivery: every task ends in its right state, each reported to Airflow exactly once.
    first = stack.trigger("e2e_parallel")
    assert stack.wait_for_run("e2e_parallel", first, timeout=240) == "failed"
    assert states(stack, first) == EXPECTED
    # The tasks set their own states through the Execution API; the scheduler reads our events on its
    # next loops: wait for all, then a little longer for any duplicate.
    deadline = time.monotonic() + 60
    while set(final_events(stack, first)) != set(EXPECTED) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)
    assert final_events(stack, first) == Counter(list(EXPECTED))  # each exactly once
    assert "tracking=events from http" in scheduler_log.read_text()
    published = endpoint_stats(stack)["events"]
    assert published["dropped"] > 0 and published["duplicated"] > 0, published

    # 2. The scheduler stops while "sleeps" runs; its end is published to nobody; a new scheduler adopts
    # it and learns its end from the queued events (or, if they were lost, from reconciling).
    second = stack.trigger("e2e_parallel")
    deadline = time.monotonic() + 180
    while states(stack, second).get("sleeps") != "running":
        assert time.monotonic() < deadline, states(stack, second)
        time.sleep(0.5)
    old = stack.processes["scheduler"]
    os.killpg(old.pid, signal.SIGTERM)
    old.wait(timeout=60)
    time.sleep(10)  # "sleeps" (8 s) ends while no scheduler listens
    stack._spawn("scheduler", [str(Path(sys.executable).with_name("airflow")), "scheduler"], stack.env())
    assert stack.wait_for_run("e2e_parallel", second, timeout=240) == "failed"
    assert states(stack, second) == EXPECTED
    # Nothing was launched twice: one ECS task per task instance and try.
    arns = [r["external_executor_id"] for r in stack.task_rows("e2e_parallel", second)]
    assert len(set(arns)) == len(EXPECTED)
    assert "Traceback" not in scheduler_log.read_text()
