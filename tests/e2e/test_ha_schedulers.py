"""Airflow's HA mode for real: api-server, two schedulers, dag-processor and triggerer on PostgreSQL, every
task instance in its own task on the local ECS endpoint, each scheduler with its own ``EcsExecutor``.

Three scenarios on one stack, in order (each task instance is a real Airflow task process, seconds of
CPU each, so the stack is started once):

1. Several DAGs (plain, deferrable, reschedule-mode sensor) run to success with both schedulers queueing
   work, and the endpoint shows exactly one ECS task per queueing of each try: one for a plain try, two
   for a try that deferred once (execute, resume), one more per reschedule of a sensor's try.
2. ``kill -9`` of the scheduler that queued most of a batch of running tasks: the other one adopts them
   (``queued_by_job_id`` moves to it; Airflow calls ``try_adopt_task_instances``), none is relaunched, all
   succeed. The time from the kill to the last adoption is printed.
3. SIGTERM of a scheduler (a rolling restart): it exits cleanly, its tasks keep running (not stopped by
   ``end()``) and are adopted by the scheduler left.
4. The orphan sweep (on for every scenario, grace period scaled down to 60 s): an ECS task started
   directly with our startedBy and the tags of a finished task instance is stopped, with the reason, by
   a scheduler; no task another scheduler tracks is ever stopped, though each scheduler's sweep sees
   the other's tasks for longer than the grace period.

Sizes: ``ECS_HA_TIS`` task instances in scenario 1 (default 60), ``ECS_HA_RUNNING`` running tasks in 2
and 3 (default 20) and ``ECS_HA_PARALLELISM`` per scheduler (default 16) keep CI near six minutes;
docs/ha.md has the runs by hand (200 task instances; an attempt at 1,000).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecs_executor.demo.ha import HaDeployment
from ecs_executor.demo.task_definitions import CLUSTER, CONTAINER, REGION, TASK_FAMILY
from ecs_executor.request.run_task import STARTED_BY, TryIdentity, identity_tags

DAGS = Path(__file__).parent / "dags" / "ha"
TIS = int(os.environ.get("ECS_HA_TIS", "60"))
RUNNING = int(os.environ.get("ECS_HA_RUNNING", "20"))
# Tasks each scheduler runs at once: every task is a Python process of ~150 MB here.
PARALLELISM = os.environ.get("ECS_HA_PARALLELISM", "16")
SLEEP_SECONDS = 90  # outlives detection (30 s) + the orphan check (every 5 s) + a busy machine's heartbeats
RUN_TIMEOUT = 60.0 + 6.0 * TIS
# The orphan sweep runs in every scenario; its grace period is scaled down from 600 s to the minimum.
ORPHAN_GRACE = 60
ORPHAN_INTERVAL = 5
ORPHAN_REASON = "Airflow ECS executor: orphaned task"
pytestmark = pytest.mark.timeout(900 + 6 * TIS + 10 * RUNNING)

TryKey = tuple[str, str, str, int, int]  # dag_id, task_id, run_id, map_index, try_number


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaDeployment]:
    s = HaDeployment(
        tmp_path_factory.mktemp("ha") / "stack",
        dags_folder=DAGS,
        airflow_config={("core", "parallelism"): PARALLELISM, ("core", "max_active_tasks_per_dag"): "200"},
        executor_options={
            "orphan_sweep": "True",
            "orphan_grace_seconds": str(ORPHAN_GRACE),
            "orphan_sweep_interval": str(ORPHAN_INTERVAL),
        },
    )
    try:
        s.start()
        for dag_id in ("ha_fanout_a", "ha_fanout_b", "ha_deferrable", "ha_reschedule", "ha_sleepers"):
            s.wait_for_dag(dag_id, timeout=180)
            s.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        yield s
    finally:
        s.stop()
    assert all(proc.poll() is not None for proc in s.stopped.values())


def trigger(stack: HaDeployment, dag_id: str, **conf: Any) -> str:
    run = stack.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
    return str(run["dag_run_id"])


def ecs_client(stack: HaDeployment) -> Any:
    return boto3.client(
        "ecs",
        endpoint_url=stack.ecs_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def ecs_tasks(stack: HaDeployment) -> list[dict[str, Any]]:
    """Every task the endpoint ever started in the cluster (running and stopped), with its tags, once each.

    Two ListTasks filters are two moments: a task whose container exits between them is listed by both."""
    ecs = ecs_client(stack)
    listed: dict[str, None] = {}
    for status in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER, desiredStatus=status):
            listed.update(dict.fromkeys(page["taskArns"]))
    arns = list(listed)
    tasks: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i : i + 100], include=["TAGS"])["tasks"]
    return tasks


def try_key(task: dict[str, Any]) -> TryKey:
    tags = {t["key"]: t["value"] for t in task.get("tags", [])}
    return (
        tags["airflow:dag_id"],
        tags["airflow:task_id"],
        tags["airflow:run_id"],
        int(tags["airflow:map_index"]),
        int(tags["airflow:try_number"]),
    )


def launches_per_try(stack: HaDeployment, dag_ids: set[str]) -> Counter[TryKey]:
    return Counter(key for key in map(try_key, ecs_tasks(stack)) if key[0] in dag_ids)


def reschedules(stack: HaDeployment, run_id: str) -> Counter[TryKey]:
    rows = stack.query(
        "SELECT ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number FROM task_reschedule r "
        "JOIN task_instance ti ON ti.id = r.ti_id WHERE ti.run_id = %s",
        (run_id,),
    )
    return Counter((r["dag_id"], r["task_id"], r["run_id"], r["map_index"], r["try_number"]) for r in rows)


def run_state(stack: HaDeployment, dag_id: str, run_id: str) -> str:
    """From the database: the one API server is busy enough serving every task's Execution API calls."""
    rows = stack.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
    return str(rows[0]["state"])


def wait_all(stack: HaDeployment, runs: dict[str, str], timeout: float) -> dict[str, str]:
    started = time.monotonic()
    states = dict.fromkeys(runs, "queued")
    while time.monotonic() - started < timeout and any(
        s not in ("success", "failed") for s in states.values()
    ):
        stack.check_alive()
        states = {dag_id: run_state(stack, dag_id, run_id) for dag_id, run_id in runs.items()}
        if int(time.monotonic() - started) % 60 < 2:  # progress for runs by hand (pytest -s)
            rows = [r for d, run_id in runs.items() for r in stack.task_rows(d, run_id)]
            print(
                f"[{time.monotonic() - started:4.0f}s] {dict(Counter(r['state'] for r in rows))}", flush=True
            )
        time.sleep(2)
    return states


def test_every_try_is_launched_exactly_once_by_two_schedulers(stack: HaDeployment) -> None:
    plain, deferred = TIS * 35 // 100, TIS * 15 // 100
    started = time.monotonic()
    runs = {
        "ha_fanout_a": trigger(stack, "ha_fanout_a", n=plain),
        "ha_fanout_b": trigger(stack, "ha_fanout_b", n=plain),
        "ha_deferrable": trigger(stack, "ha_deferrable", n=deferred),
        "ha_reschedule": trigger(stack, "ha_reschedule", n=TIS - 2 * plain - deferred),
    }
    states = wait_all(stack, runs, RUN_TIMEOUT)
    elapsed = time.monotonic() - started
    rows = [row | {"dag_id": d} for d, run_id in runs.items() for row in stack.task_rows(d, run_id)]
    assert states == dict.fromkeys(runs, "success"), Counter((r["dag_id"], r["state"]) for r in rows)
    assert all(r["state"] == "success" and r["try_number"] == 1 for r in rows)
    # Both schedulers queued work (Airflow spreads it through row locks); otherwise nothing was shared.
    assert {r["queued_by_job_id"] for r in rows} == set(stack.job_ids.values())

    launched = launches_per_try(stack, set(runs))
    expected: Counter[TryKey] = Counter()
    for r in rows:
        key: TryKey = (r["dag_id"], r["task_id"], runs[r["dag_id"]], r["map_index"], r["try_number"])
        expected[key] = 2 if r["task_id"] == "defer" else 1  # DeferOnce: execute, then resume
    expected.update(reschedules(stack, runs["ha_reschedule"]))  # each reschedule: one more queueing
    assert sum(reschedules(stack, runs["ha_reschedule"]).values()) > 0  # the sensor did reschedule
    assert launched == expected
    print(
        f"\n{len(rows)} task instances, {sum(launched.values())} ECS tasks, 0 duplicates, "
        f"{elapsed:.0f}s; queued by job: {Counter(r['queued_by_job_id'] for r in rows)}"
    )


def running_batch(stack: HaDeployment, timeout: float) -> tuple[str, list[dict[str, Any]]]:
    """Trigger RUNNING sleepers and wait until every one runs in its ECS task."""
    run_id = trigger(stack, "ha_sleepers", n=RUNNING, seconds=SLEEP_SECONDS)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        rows = [r for r in stack.task_rows("ha_sleepers", run_id) if r["task_id"] == "sleep"]
        if len(rows) == RUNNING and all(r["state"] == "running" for r in rows):
            return run_id, rows
        time.sleep(1)
    raise AssertionError(f"the sleepers did not all run within {timeout:.0f}s: {rows}")


def victim(stack: HaDeployment, rows: list[dict[str, Any]]) -> tuple[str, int, int]:
    """The live scheduler that queued most of ``rows``, its job id, and the survivor's job id."""
    live = {name: job for name, job in stack.job_ids.items() if name in stack.processes}
    by_job = Counter(r["queued_by_job_id"] for r in rows)
    name = max(live, key=lambda n: by_job[live[n]])
    (survivor,) = (job for n, job in live.items() if n != name)
    return name, live[name], survivor


def wait_adopted(stack: HaDeployment, run_id: str, arns: dict[int, str], survivor: int) -> float:
    """Seconds until every task in ``arns`` (map_index -> ARN) is queued by the survivor, same ARN."""
    started = time.monotonic()
    while time.monotonic() - started < 180:
        rows = {r["map_index"]: r for r in stack.task_rows("ha_sleepers", run_id) if r["task_id"] == "sleep"}
        if all(rows[i]["queued_by_job_id"] == survivor for i in arns):
            assert {i: rows[i]["external_executor_id"] for i in arns} == arns
            assert all(rows[i]["state"] == "running" for i in arns)  # adopted while the ECS task ran
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError("the surviving scheduler did not adopt the tasks within 180s")


def finish_and_count(stack: HaDeployment, run_id: str) -> Counter[TryKey]:
    assert wait_all(stack, {"ha_sleepers": run_id}, 300) == {"ha_sleepers": "success"}
    rows = stack.task_rows("ha_sleepers", run_id)
    assert all(r["state"] == "success" and r["try_number"] == 1 for r in rows)
    tasks = [t for t in ecs_tasks(stack) if try_key(t)[0] == "ha_sleepers" and try_key(t)[2] == run_id]
    launched = Counter(map(try_key, tasks))
    twice = {  # what a failure needs to be read: which ECS tasks ran the same try, and how they ended
        key: [
            {k: t.get(k) for k in ("taskArn", "lastStatus", "stopCode", "stoppedReason", "createdAt")}
            for t in tasks
            if try_key(t) == key
        ]
        for key, n in launched.items()
        if n > 1
    }
    assert not twice, twice
    return launched


def test_kill_9_of_a_scheduler_its_running_tasks_are_adopted_not_relaunched(stack: HaDeployment) -> None:
    run_id, rows = running_batch(stack, timeout=240)
    name, dead_job, survivor = victim(stack, rows)
    orphans = {r["map_index"]: r["external_executor_id"] for r in rows if r["queued_by_job_id"] == dead_job}
    assert orphans
    stack.kill(name)
    adoption = wait_adopted(stack, run_id, orphans, survivor)
    launched = finish_and_count(stack, run_id)
    assert sorted(launched.values()) == [1] * (RUNNING + 1)  # plan + sleepers: nothing launched twice
    print(f"\nkill -9 {name}: {len(orphans)} running tasks adopted by job {survivor} in {adoption:.1f}s")


def two_schedulers(stack: HaDeployment, name: str) -> None:
    """Back to two live schedulers (a failed scenario before may have left one)."""
    if len([n for n in stack.processes if n.startswith("scheduler")]) < 2:
        stack.start_component(name)


def test_graceful_stop_leaves_tasks_running_for_the_other_scheduler(stack: HaDeployment) -> None:
    two_schedulers(stack, "scheduler-3")
    run_id, rows = running_batch(stack, timeout=240)
    name, stopped_job, survivor = victim(stack, rows)
    orphans = {
        r["map_index"]: r["external_executor_id"] for r in rows if r["queued_by_job_id"] == stopped_job
    }
    assert orphans
    assert stack.stop_component(name) == 0
    # Its executor's end() stopped nothing: every one of its ECS tasks is still running.
    still = {t["taskArn"]: t["lastStatus"] for t in ecs_tasks(stack) if t["taskArn"] in orphans.values()}
    assert set(still.values()) == {"RUNNING"} and len(still) == len(orphans)
    assert [j["state"] for j in stack.scheduler_jobs() if j["id"] == stopped_job] == ["success"]
    adoption = wait_adopted(stack, run_id, orphans, survivor)
    launched = finish_and_count(stack, run_id)
    assert sorted(launched.values()) == [1] * (RUNNING + 1)
    print(f"\nSIGTERM {name}: {len(orphans)} running tasks adopted by job {survivor} in {adoption:.1f}s")


def test_the_orphan_sweep_stops_only_the_task_no_scheduler_tracks(stack: HaDeployment) -> None:
    # Sleepers outlive the grace period plus a sweep: each scheduler's sweep finds the other's tasks
    # untracked by itself for that long, and only the DB says they are expected.
    two_schedulers(stack, "scheduler-4")  # the SIGTERM scenario before this one left one scheduler
    sleep_for = ORPHAN_GRACE + 40
    run_id = trigger(stack, "ha_sleepers", n=6, seconds=sleep_for)
    deadline = time.monotonic() + 240
    while not stack.task_rows("ha_sleepers", run_id) or any(
        r["state"] != "success" for r in stack.task_rows("ha_sleepers", run_id) if r["task_id"] == "plan"
    ):
        assert time.monotonic() < deadline, "the plan task did not succeed"
        stack.check_alive()
        time.sleep(1)
    # An ECS task with our startedBy and the tags of the finished plan task: no scheduler tracks it.
    ecs = ecs_client(stack)
    started = time.monotonic()  # before ECS creates it: the grace period counts from its createdAt
    orphan = ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=TASK_FAMILY,
        launchType="EC2",
        startedBy=STARTED_BY,
        tags=identity_tags(TryIdentity("ha_sleepers", "plan", run_id, 1)),
        overrides={"containerOverrides": [{"name": CONTAINER, "command": ["sleep", "900"]}]},
    )["tasks"][0]["taskArn"]
    while (task := ecs.describe_tasks(cluster=CLUSTER, tasks=[orphan])["tasks"][0])[
        "lastStatus"
    ] != "STOPPED":
        assert time.monotonic() - started < ORPHAN_GRACE + 180, f"the orphan was not stopped: {task}"
        stack.check_alive()
        time.sleep(2)
    assert task["stoppedReason"].startswith(ORPHAN_REASON), task["stoppedReason"]
    assert "task instance is success at try 1" in task["stoppedReason"]
    stopped_after = time.monotonic() - started
    assert stopped_after >= ORPHAN_GRACE  # never before the grace period

    assert wait_all(stack, {"ha_sleepers": run_id}, 300) == {"ha_sleepers": "success"}
    rows = [r for r in stack.task_rows("ha_sleepers", run_id) if r["task_id"] == "sleep"]
    assert all(r["state"] == "success" and r["try_number"] == 1 for r in rows)
    # No other task in the cluster, in this scenario or an earlier one, was stopped as an orphan.
    swept = [
        t["taskArn"] for t in ecs_tasks(stack) if (t.get("stoppedReason") or "").startswith(ORPHAN_REASON)
    ]
    assert swept == [orphan]
    logged = {
        log.stem: [
            line for line in log.read_text(errors="replace").splitlines() if "Stopping orphaned" in line
        ]
        for log in stack.logs.glob("scheduler-*.log")
    }
    # Only the scheduler that queued the plan task instance judged it (the other one is alive).
    (plan,) = [r for r in stack.task_rows("ha_sleepers", run_id) if r["task_id"] == "plan"]
    (judge,) = [name for name, job in stack.job_ids.items() if job == plan["queued_by_job_id"]]
    assert logged[judge] and all(orphan in line for line in logged[judge]), logged
    assert not any(lines for name, lines in logged.items() if name != judge), logged
    print(
        f"\norphan stopped {stopped_after:.0f}s after it started (grace {ORPHAN_GRACE}s); "
        f"{len(rows)} sleepers of {sleep_for}s queued by jobs "
        f"{dict(Counter(r['queued_by_job_id'] for r in rows))} all succeeded"
    )
