"""Sealed workloads end to end (issue 25): a real Airflow in events mode with ``workload_kms_key`` set, moto's
KMS, and the worker entry point decrypting in each task process. No workload token may appear in any
DescribeTasks answer, any event body the events queue accepted, or any log; with the option unset (the
same deployment, its scheduler restarted without it) the same search finds every token, so it can fail.

The tokens are the real ones, read back from the ECS tasks' commands (``demo/token_audit.py``).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from ecs_executor.demo.deployment import LocalDeployment
from ecs_executor.demo.token_audit import audit_deployment

DAGS = Path(__file__).parent / "dags" / "sealed"
DAG_ID = "e2e_sealed"


@pytest.fixture
def stack(tmp_path: Path):
    s = LocalDeployment(tmp_path / "stack", dags_folder=DAGS, tracking="events", encrypt=True)
    try:
        yield s
    finally:
        s.stop()


def run_dag(stack: LocalDeployment) -> set[str]:
    """One DAG run that must succeed; the ECS task ARNs of its task instances."""
    run_id = stack.trigger(DAG_ID)
    assert stack.wait_for_run(DAG_ID, run_id, timeout=120) == "success"
    rows = stack.task_rows(DAG_ID, run_id)
    arns = {r["external_executor_id"] for r in rows}
    assert len(rows) == 3 and len(arns) == 3 and all(a and ":task/" in a for a in arns), rows
    return arns


def test_no_workload_token_outside_scheduler_and_task_unless_unsealed(stack: LocalDeployment) -> None:
    stack.start()
    stack.wait_for_dag(DAG_ID)

    sealed_arns = run_dag(stack)
    found = audit_deployment(stack)
    assert set(found.tokens) == sealed_arns == found.sealed, found.summary()
    assert len(set(found.tokens.values())) == 3  # one token per try
    assert found.searched["DescribeTasks answers"] == 3
    assert found.searched["event bodies"] > 0 and found.searched["log files"] > 0, found.summary()
    assert found.leaks == [], found.summary()
    assert "Traceback" not in (stack.logs / "scheduler.log").read_text()

    # The same deployment without the option: the scheduler restarted, the workloads travel in clear.
    old = stack.processes["scheduler"]
    os.killpg(old.pid, signal.SIGTERM)
    old.wait(timeout=60)
    stack.encrypt = False
    stack._spawn("scheduler", [str(Path(sys.executable).with_name("airflow")), "scheduler"], stack.env())
    plain_arns = run_dag(stack)
    found = audit_deployment(stack)
    assert set(found.tokens) == sealed_arns | plain_arns and found.sealed == sealed_arns, found.summary()
    places = {arn: {where.split(" ")[0] for where, a in found.leaks if a == arn} for arn in found.tokens}
    for arn in plain_arns:
        assert {"DescribeTasks", "event"} <= places[arn], (arn, places[arn])
    assert all(not places[arn] for arn in sealed_arns), places
