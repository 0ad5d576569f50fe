"""``python -m benchmarks.first_heartbeat [--runs N]``: the first heartbeats of a fresh scheduler process.

Airflow and the executor set some things up on first use (SQLAlchemy's mapper configuration for the first
task-event ``Log`` row, the metrics registry, the workload serialiser). ``EcsExecutor.start()`` now does
that work (``facade.startup.warm_up``); this compares fresh processes with and without it, each queueing
one task and timing its first five heartbeats against a local ECS endpoint.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.scenarios import CLUSTER, EC2_OPTIONS, TASK_DEFINITIONS
from benchmarks.worker import WARMUP_DAG, _setup_environment
from ecs_executor.local_ecs import LocalEcs


def child(url: str, warm: bool) -> dict[str, Any]:
    _setup_environment({"url": url, "options": EC2_OPTIONS})
    from benchmarks.workloads import make_workload
    from ecs_executor import EcsExecutor
    from ecs_executor import executor as executor_module

    if not warm:
        executor_module.warm_up = lambda metrics: None  # type: ignore[assignment]
    executor = EcsExecutor(parallelism=10)
    started = time.perf_counter()
    executor.start()
    start_ms = (time.perf_counter() - started) * 1000
    executor.queue_workload(make_workload("t0", dag_id=WARMUP_DAG), session=None)
    beats = []
    for _ in range(5):
        t = time.perf_counter()
        executor.heartbeat()
        beats.append((time.perf_counter() - t) * 1000)
        time.sleep(0.2)
    executor.end()
    return {"start_ms": start_ms, "heartbeats_ms": beats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=["warm", "cold"])
    parser.add_argument("--url")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.url, args.child == "warm")))
        return 0
    with LocalEcs(pretend_seconds=600.0, provisioning_seconds=0.05) as ecs:
        ecs.bootstrap([CLUSTER], TASK_DEFINITIONS, "us-east-1")
        results: dict[str, list[dict[str, Any]]] = {"warm": [], "cold": []}
        for _ in range(args.runs):
            for mode in ("cold", "warm"):  # interleaved: the machine's noise hits both alike
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.first_heartbeat", "--child", mode, "--url", ecs.url],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    for mode in ("cold", "warm"):
        first = [r["heartbeats_ms"][0] for r in results[mode]]
        rest = [max(r["heartbeats_ms"][1:]) for r in results[mode]]
        start = [r["start_ms"] for r in results[mode]]
        label = "start() warms up" if mode == "warm" else "no warm-up in start()"
        print(
            f"{label:>22}: first heartbeat median {statistics.median(first):6.1f} ms, "
            f"max {max(first):6.1f} ms; "
            f"heartbeats 2-5 max {max(rest):5.1f} ms; start() median {statistics.median(start):6.0f} ms "
            f"({len(first)} fresh processes)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
