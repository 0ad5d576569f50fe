"""``python -m benchmarks.shared_budget``: several schedulers' executors launching into one account at once.

ECS's API buckets are per account and Region, so N schedulers (Airflow HA) share one RunTask bucket
(burst 100, 40/s). For each N: one local ECS endpoint (ECS's buckets, 50 ms added to every call, pretend
tasks) and N worker processes (``benchmarks/worker.py``, one ``EcsExecutor`` each), released together,
each launching ``--n`` tasks. Run once with ``schedulers_sharing_budget=N`` and once without it (each
executor pacing itself for the whole bucket and relying on backing off when throttled).

Figures: failed launches, RunTask throttles answered by the endpoint per launch, and the time from the
release to the last launch against the bound of the combined work, ``(N * n - burst) / rate``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.run import ROOT, Instrumented
from benchmarks.scenarios import BASE_KNOBS, EC2_OPTIONS, RUN_TASK_BURST, RUN_TASK_RATE

START_DELAY = 60.0  # for every worker to import Airflow, start its executor and warm up
CAP = 300.0


def run_shared(schedulers: int, n: int, share: bool, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    options = {**EC2_OPTIONS, **({"schedulers_sharing_budget": schedulers} if share else {})}
    with Instrumented({**BASE_KNOBS, "latency_ms": 50}) as endpoint:
        start_at = time.time() + START_DELAY
        start_mono = time.monotonic() + START_DELAY
        procs = []
        for i in range(schedulers):
            spec = {
                "executor": "ours",
                "url": endpoint.url,
                "n": n,
                "options": options,
                "cap_seconds": START_DELAY + CAP,
                "start_at_epoch": start_at,
                "result_path": str(out / f"result-{i}.json"),
                "progress_path": str(out / f"progress-{i}.jsonl"),
            }
            (out / f"spec-{i}.json").write_text(json.dumps(spec))
            log = open(out / f"worker-{i}.log", "wb")  # noqa: SIM115 - closed below
            command = [sys.executable, "-m", "benchmarks.worker", str(out / f"spec-{i}.json")]
            procs.append((subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
        for proc, log in procs:
            proc.wait(timeout=START_DELAY + CAP + 120)
            log.close()
        accepted = sorted(t - start_mono for t in endpoint.accepted if t >= start_mono)
        throttled = endpoint.throttled.get("RunTask", 0)
    results = [json.loads((out / f"result-{i}.json").read_text()) for i in range(schedulers)]
    launched = sum(r.get("launched", 0) for r in results)
    total = schedulers * n
    bound = (total - RUN_TASK_BURST) / RUN_TASK_RATE
    return {
        "schedulers": schedulers,
        "n_each": n,
        "schedulers_sharing_budget": schedulers if share else 1,
        "launched": launched,
        "failed": sum(r.get("failed", 0) for r in results),
        "finished": all(r.get("finished") for r in results),
        "run_task_throttles": throttled,
        "throttles_per_launch": throttled / max(1, launched),
        "last_launch_seconds": accepted[total - 1] if len(accepted) >= total else None,
        "per_scheduler_last_launch_seconds": [
            (r["event_buffer_launch_times"] or [None])[-1]
            for r in results
            if "event_buffer_launch_times" in r
        ],
        "bound_seconds": bound,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_budget", description=__doc__)
    parser.add_argument("--schedulers", default="2,3", help="comma-separated scheduler counts")
    parser.add_argument("--n", type=int, default=1000, help="tasks each scheduler launches")
    parser.add_argument("--modes", default="shared,unshared", help="shared (the option set), unshared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "shared_budget")
    args = parser.parse_args(argv)
    rows = []
    for count in (int(c) for c in args.schedulers.split(",")):
        for mode in args.modes.split(","):
            row = run_shared(count, args.n, mode == "shared", args.out / f"{count}-{mode}")
            rows.append(row)
            last = row["last_launch_seconds"]
            ratio = f"{last / row['bound_seconds']:.2f}x" if last else "-"
            print(
                f"{count} schedulers, {mode}: launched {row['launched']}, failed {row['failed']}, "
                f"RunTask throttles {row['run_task_throttles']} ({row['throttles_per_launch']:.2f}/launch), "
                f"last launch {last if last is None else round(last, 1)}s, bound "
                f"{row['bound_seconds']:.1f}s ({ratio})",
                flush=True,
            )
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
