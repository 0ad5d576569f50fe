"""``python -m benchmarks.admission [--n N]``: heartbeats while N workloads queued at once are admitted.

Our executor only, against the local ECS endpoint (pretend mode, no added latency), with a RunTask
bucket that would start all N at once (``run_task_burst`` = N on both sides): what bounds a heartbeat
is then the executor's own admission per heartbeat. The driver (``benchmarks/worker.py``) queues N
workloads, then heartbeats once a second until every task is reported RUNNING.

Reported for that launch phase: heartbeat p50 / p99 / max, the most of one heartbeat not spent on its own
CPU (waiting for the GIL), full garbage collections on the scheduler thread, and how many heartbeats
admitted workloads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.run import run_one
from benchmarks.scenarios import BASE_KNOBS, EC2_OPTIONS, RUN_TASK_RATE, Scenario

ROOT = Path(__file__).resolve().parent.parent


def scenario(n: int) -> Scenario:
    return Scenario(
        name=f"admission-{n}",
        title=f"{n:,} queued at once",
        n=n,
        knobs={**BASE_KNOBS, "latency_ms": 0, "throttle_overrides": {"cluster_modify": [n, RUN_TASK_RATE]}},
        options=EC2_OPTIONS,
        ours_options={"run_task_burst": n},
        bound_burst=n,
        bound_rate=RUN_TASK_RATE,
        cap={"ours": 300.0 + n / 100},  # 250 admitted a heartbeat, once a second
        executors=("ours",),
    )


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    beats = result["heartbeat_raw_ms"].get("launch") or []
    waits = result["heartbeat_wait_raw_ms"].get("launch") or []
    stats = result["heartbeats"].get("launch") or {}
    launch_end = (result.get("phase_marks") or {}).get("launch_done", {}).get("t") or 0.0
    gcs = [(t, ms) for t, ms, thread in result.get("gc_full_pauses") or [] if thread == "MainThread"]
    return {
        "finished": result.get("finished"),
        "heartbeats": len(beats),
        "p50_ms": stats.get("p50"),
        "p99_ms": stats.get("p99"),
        "max_ms": stats.get("max"),
        "max_wait_ms": max(waits) if waits else None,
        "main_thread_full_gcs_ms": [ms for t, ms in gcs if t <= launch_end],
        "all_running_s": round(launch_end, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "admission")
    args = parser.parse_args(argv)
    result = run_one(scenario(args.n), "ours", args.out)
    summary = summarize(result)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
