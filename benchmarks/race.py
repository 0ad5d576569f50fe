"""``python -m benchmarks.race``: how often Airflow loses a try queued again for the same try number.

Runs ``tests/e2e/dags/race/race_handback.py`` (reschedule-mode sensors poking every 2 s and 5 s, three pokes
each, and a one-second deferral, each with a task downstream; no retries) under a real Airflow
(SQLite, api-server, scheduler, dag-processor, triggerer), once per configuration:

* ``ecs``: this executor on the local ECS endpoint, ``--tracking`` polling or events, ``--timing``
  passed to the endpoint (``fargate``: seconds between states, exit code before STOPPED);
* ``ecs-unchecked``: the same with the engine's read of the try's DB state switched off (a
  ``sitecustomize`` in the scheduler's path), i.e. reporting every end: the race the read closes;
* ``local``: Airflow's LocalExecutor, the reference;
* ``local-late``: LocalExecutor whose ends reach the scheduler 3 s late (``benchmarks/late_local.py``):
  the race without ECS, as reported upstream.

A try is *lost* when Airflow failed a sensor or the deferring task although its DAG defines success
(the ``state mismatch`` rows Airflow writes into its log table are counted beside). Each configuration
runs ``--runs`` DAG runs one after another, each with ``--copies`` of each task. ``--parallelism``
(Airflow's ``[core] parallelism``) below the number of tasks keeps tries waiting in SCHEDULED, which
widens the window.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from ecs_executor.demo.deployment import WITH_TRIGGERER, LocalDeployment

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "tests" / "e2e" / "dags" / "race"
DAG_ID = "race_handback"
UNCHECKED = (
    "import ecs_executor.engine.airflow_db as db\ndb.TryStateReader.wanted = lambda self, keys: False\n"
)


def run_config(
    kind: str, tracking: str, timing: str, runs: int, copies: int, parallelism: int, workdir: Path
) -> dict[str, Any]:
    executor = {"local": "LocalExecutor", "local-late": "benchmarks.late_local.LateLocalExecutor"}.get(
        kind, "ecs_executor.EcsExecutor"
    )
    extra_env = {"RACE_COPIES": str(copies)}
    if kind == "local-late":
        extra_env["PYTHONPATH"] = str(ROOT)
    if kind == "ecs-unchecked":
        site = workdir / "site"
        site.mkdir(parents=True)
        (site / "sitecustomize.py").write_text(UNCHECKED)
        extra_env["PYTHONPATH"] = str(site)
    stack = LocalDeployment(
        workdir / "stack",
        dags_folder=DAGS,
        executor=executor,
        tracking=tracking if kind.startswith("ecs") else "polling",
        extra_env=extra_env,
        timing=timing,
        airflow_config={
            ("core", "parallelism"): str(parallelism),
            ("scheduler", "use_job_schedule"): "False",
        },
    )
    started = time.monotonic()
    try:
        stack.start(WITH_TRIGGERER)
        stack.wait_for_dag(DAG_ID, timeout=180)
        outcomes = []
        for _ in range(runs):
            run_id = stack.trigger(DAG_ID)
            state = stack.wait_for_run(DAG_ID, run_id, timeout=600)
            rows = stack.task_rows(DAG_ID, run_id)
            outcomes.append((run_id, state, rows))
        mismatches = _state_mismatches(stack.db_path)
    finally:
        stack.stop()
    scheduler_log = (stack.logs / "scheduler.log").read_text(errors="replace")
    wall = time.monotonic() - started
    tis = [row for _, _, rows in outcomes for row in rows]
    lost = [f"{r['task_id']}={r['state']}" for r in tis if r["state"] != "success"]
    return {
        "config": f"{kind}/{tracking}/{timing}" if kind.startswith("ecs") else kind,
        "runs": runs,
        "tis": len(tis),
        "failed_runs": sum(state != "success" for _, state, _ in outcomes),
        "not_success": lost,
        "state_mismatch_rows": mismatches,
        "handed_back": scheduler_log.count("handed itself back to Airflow"),
        "wall_s": round(wall, 1),
    }


def _state_mismatches(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)) as db:
        return int(db.execute("SELECT COUNT(*) FROM log WHERE event = 'state mismatch'").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="ecs,ecs-unchecked,local")
    parser.add_argument("--tracking", default="polling", help="polling, events or both")
    parser.add_argument("--timing", default="fargate")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--parallelism", type=int, default=4)
    args = parser.parse_args()
    trackings = ["polling", "events"] if args.tracking == "both" else [args.tracking]
    results = []
    for kind in args.kinds.split(","):
        for tracking in trackings if kind.startswith("ecs") else ["polling"]:
            with tempfile.TemporaryDirectory(prefix="race-") as tmp:
                result = run_config(
                    kind, tracking, args.timing, args.runs, args.copies, args.parallelism, Path(tmp)
                )
            results.append(result)
            print(result, flush=True)
    header = f"{'config':32} {'runs':>4} {'TIs':>4} {'failed runs':>11} {'mismatch rows':>13}"
    print(f"\n{header} {'handed back':>11} {'wall s':>7}")
    for r in results:
        print(
            f"{r['config']:32} {r['runs']:>4} {r['tis']:>4} {r['failed_runs']:>11} "
            f"{r['state_mismatch_rows']:>13} {r['handed_back']:>11} {r['wall_s']:>7}  "
            + " ".join(r["not_success"])
        )


if __name__ == "__main__":
    main()
