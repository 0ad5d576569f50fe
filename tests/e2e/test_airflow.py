"""A real Airflow (SQLite, api-server, scheduler, dag-processor) running tasks through this executor on
the local ECS endpoint. Slow (~1 min) but it is the only test that proves the whole contract."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecs_executor.demo.deployment import LocalDeployment

DAGS = Path(__file__).parent / "dags" / "parallel"


@pytest.fixture
def stack(tmp_path: Path):
    s = LocalDeployment(tmp_path / "stack", dags_folder=DAGS, timing="fargate")
    try:
        yield s
    finally:
        s.stop()  # by PID, also when the test failed
    for proc in s.processes.values():
        assert proc.poll() is not None


def test_dag_run_end_to_end(stack: LocalDeployment) -> None:
    stack.start()
    stack.wait_for_dag("e2e_parallel")
    run_id = stack.trigger("e2e_parallel")
    assert stack.wait_for_run("e2e_parallel", run_id, timeout=240) == "failed"
    rows = {r["task_id"]: r for r in stack.task_rows("e2e_parallel", run_id)}
    assert {k: v["state"] for k, v in rows.items()} == {
        "ok_a": "success",
        "ok_b": "success",
        "fails": "failed",
        "crashes": "failed",
        "sleeps": "success",
    }
    arns = [r["external_executor_id"] for r in rows.values()]
    assert all(a and a.startswith("arn:aws:ecs:us-east-1:") and ":task/airflow-local/" in a for a in arns)
    assert len(set(arns)) == 5  # one ECS task per task instance
    # The crash reason reached the task's log in the UI (the scheduler persisted our task event).
    with contextlib.closing(sqlite3.connect(stack.db_path)) as db:
        events = db.execute(
            "SELECT task_id, event, extra FROM log WHERE dag_id = 'e2e_parallel' AND event LIKE 'ECS%'"
        ).fetchall()
    crash = [extra for task_id, event, extra in events if task_id == "crashes" and event == "ECS task failed"]
    assert crash and "exited with code 1" in crash[0], events
    # ok_a ran without Airflow's signing key (it fails when its environment has one) and its config does
    # not resolve to the scheduler's: the local endpoint passes tasks the workload token only, as ECS does.
    [log] = (stack.home / "logs").glob("dag_id=e2e_parallel/run_id=*/task_id=ok_a/attempt=1.log")
    scheduler_key = hashlib.sha256(stack.env()["AIRFLOW__API_AUTH__JWT_SECRET"].encode()).hexdigest()
    digests = [
        ln.split("jwt_secret sha256:", 1)[1][:64]
        for ln in log.read_text().splitlines()
        if "jwt_secret sha256:" in ln
    ]
    assert digests and scheduler_key not in digests, digests
    scheduler_log = (stack.logs / "scheduler.log").read_text()
    assert "Something went wrong when trying to save task event logs" not in scheduler_log
    assert "Traceback" not in scheduler_log


def test_scheduler_refuses_bad_config_with_one_message(tmp_path: Path) -> None:
    stack = LocalDeployment(tmp_path / "bad", dags_folder=DAGS, executor_options={"subnets": "vpc-123"})
    stack.ecs_url = "http://127.0.0.1:9"  # never contacted: validation fails first
    stack.home.mkdir(parents=True)
    stack.airflow("db", "migrate")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "scheduler"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS" in output and "must start with 'subnet-'" in output
    # Airflow's scheduler logs its own stack trace for any start-up exception; the process still ends
    # on our message rather than on a Python traceback.
    last_lines = result.stderr.strip().splitlines()[-3:]
    assert any(
        "The scheduler cannot start: Invalid [aws_ecs_executor] configuration" in ln for ln in last_lines
    )
    assert "must start with 'subnet-'" in result.stderr.strip().splitlines()[-1]


def test_a_try_airflow_fails_for_missing_heartbeats_has_its_ecs_task_stopped(tmp_path: Path) -> None:
    """Airflow's scheduler fails a try whose worker stopped heartbeating and calls
    ``executor.change_state(key, FAILED)``; the hung container must not run (and bill) on."""
    import boto3

    stack = LocalDeployment(
        tmp_path / "hung",
        dags_folder=Path(__file__).parent / "dags" / "hung",
        timing="fargate",
        airflow_config={
            ("scheduler", "task_instance_heartbeat_timeout"): "15",
            ("scheduler", "task_instance_heartbeat_timeout_detection_interval"): "2",
        },
    )
    try:
        stack.start()
        stack.wait_for_dag("e2e_hung")
        run_id = stack.trigger("e2e_hung")
        assert stack.wait_for_run("e2e_hung", run_id, timeout=240) == "failed"
        (row,) = stack.task_rows("e2e_hung", run_id)
        arn = row["external_executor_id"]
        ecs = boto3.client("ecs", endpoint_url=stack.ecs_url, region_name="us-east-1")
        deadline = time.monotonic() + 60
        while True:
            (task,) = ecs.describe_tasks(cluster="airflow-local", tasks=[arn])["tasks"]
            if task["lastStatus"] == "STOPPED" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert task["lastStatus"] == "STOPPED", task
        assert task["stopCode"] == "UserInitiated"
        assert "no heartbeat from its worker" in task["stoppedReason"]
        with contextlib.closing(sqlite3.connect(stack.db_path)) as db:
            events = db.execute(
                "SELECT event, extra FROM log WHERE dag_id = 'e2e_hung' AND event = 'ECS task stopped'"
            ).fetchall()
        assert events and arn in events[0][1], events
    finally:
        stack.stop()


def test_a_worker_that_exits_0_without_running_its_try_still_fails_it(tmp_path: Path) -> None:
    """The other side of not reporting handed-back tries: a container that exits 0 but never ran the try
    (here every task exits 0 at once, running nothing) leaves it QUEUED; its end is still reported, and
    Airflow fails the try as a state changed externally."""
    stack = LocalDeployment(tmp_path / "noop", dags_folder=DAGS, timing="fargate")
    try:
        stack.start_local_ecs("--pretend-seconds", "1")
        stack.start()
        stack.wait_for_dag("e2e_parallel")
        run_id = stack.trigger("e2e_parallel")
        assert stack.wait_for_run("e2e_parallel", run_id, timeout=240) == "failed"
        states = {r["task_id"]: r["state"] for r in stack.task_rows("e2e_parallel", run_id)}
        assert states and set(states.values()) == {"failed"}, states
        with contextlib.closing(sqlite3.connect(stack.db_path)) as db:
            (mismatches,) = db.execute(
                "SELECT COUNT(*) FROM log WHERE dag_id = 'e2e_parallel' AND event = 'state mismatch'"
            ).fetchone()
        assert mismatches == len(states)
        assert "handed itself back" not in (stack.logs / "scheduler.log").read_text()
    finally:
        stack.stop()
