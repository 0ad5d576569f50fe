"""``python -m benchmarks.definitions [--n 1000] [--images 10]``: managed task definitions under load.

One local ECS endpoint (ECS's buckets, task definition modify 20 + 1/s included; 50 ms added to every
call; pretend tasks) and two schedulers one after the other, each a fresh process holding one
``EcsExecutor`` driven like Airflow's scheduler (``heartbeat()`` once a second). Each queues ``--n`` tasks
at once, task ``i`` asking for image ``i % --images``:

* scheduler A finds nothing and registers one derived definition per image;
* scheduler B (another scheduler, or A restarted) finds them again by family and hash tag;
* scheduler C queues as many tasks with no derivation at all (the baseline on the same endpoint).

Each scheduler ends with ``end()``, leaving its tasks running: the endpoint holds the earlier ones.

``--concurrent``: instead, two schedulers at the very same moment on a fresh endpoint (each a process with
``schedulers_sharing_budget=2``, both released from one barrier after start-up), ``--n`` tasks split
between them, each asking for every image: the figures are registrations and the distinct derived
definitions registered and used (the issue's bound: no more than ``--images``).

Figures per scheduler: RegisterTaskDefinition calls the endpoint answered, failed tasks, the time from
queueing to the last RunTask the endpoint accepted against the bound of RunTask pacing plus registration
pacing, ``(n - 100) / 40 + max(0, images - 20) / 1`` s, and heartbeat p99/max.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import ROOT, Instrumented
from benchmarks.scenarios import BASE_KNOBS, EC2_OPTIONS, RUN_TASK_BURST, RUN_TASK_RATE
from benchmarks.worker import _setup_environment, percentile
from ecs_executor.request.derived_definition import FAMILY_MARK
from ecs_executor.request.ecs_rules import TASK_DEFINITION_MODIFY_BURST, TASK_DEFINITION_MODIFY_RATE

CAP_SECONDS = 300.0


def child(
    url: str, n: int, images: int, run_id: str, barrier: str | None = None, share: int = 1
) -> dict[str, Any]:
    """One scheduler: queue ``n`` tasks at once, heartbeat until each is RUNNING or failed.

    With ``barrier`` (a folder), the scheduler says it is ready there and queues only once ``share``
    schedulers are, so concurrent schedulers register at the same moment."""
    _setup_environment({"url": url, "options": {**EC2_OPTIONS, "schedulers_sharing_budget": share}})
    from benchmarks.workloads import TOKEN, build_workload
    from ecs_executor import EcsExecutor

    executor = EcsExecutor(parallelism=n + 10)
    executor.start()
    if barrier is not None:
        Path(barrier, run_id).touch()
        while len(list(Path(barrier).iterdir())) < share:
            time.sleep(0.002)
    workloads = [
        build_workload(
            f"t{i}",
            dag_id="definitions",
            run_id=run_id,
            token=TOKEN,
            dag_rel_path="definitions.py",
            log_path=None,
            executor_config={"image": f"bench/img-{i % images}:1"} if images else None,
        )
        for i in range(n)
    ]
    queued_at = time.monotonic()
    for workload in workloads:
        executor.queue_workload(workload, session=None)
    beats: list[float] = []
    running: set[Any] = set()
    failed: dict[Any, str] = {}
    while len(running) + len(failed) < n and time.monotonic() - queued_at < CAP_SECONDS:
        started = time.perf_counter()
        executor.heartbeat()
        beats.append(time.perf_counter() - started)
        for key, (state, info) in executor.get_event_buffer().items():
            state = str(getattr(state, "value", state))
            if state == "running":
                running.add(key)
            elif state == "failed":
                failed[key] = str(info)
        time.sleep(1.0)
    counters = dict(executor._engine.counters) if executor._engine is not None else {}
    executor.end()
    return {
        "queued_at": queued_at,
        "running": len(running),
        "failed": len(failed),
        "failure_samples": sorted(set(failed.values()))[:3],
        "heartbeats": len(beats),
        "heartbeat_p99_ms": round(1000 * (percentile(beats, 99) or 0), 1),
        "heartbeat_max_ms": round(1000 * max(beats, default=0), 1),
        "engine": {
            k: counters.get(k, 0)
            for k in (
                "definitions_registered",
                "definitions_reused",
                "definition_retries",
                "definitions_converged",
                "run_task_calls",
                "run_task_retries",
                "throttled",
            )
        },
    }


def scheduler(endpoint: Instrumented, name: str, n: int, images: int) -> dict[str, Any]:
    registered_before = endpoint.ecs.stats()["calls"].get("RegisterTaskDefinition", 0)
    throttled_before = dict(endpoint.throttled)
    command = [sys.executable, "-m", "benchmarks.definitions", "--child", endpoint.url, "--n", str(n)]
    command += ["--images", str(images), "--run-id", name]
    answer = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=CAP_SECONDS + 120)
    if answer.returncode != 0:
        raise RuntimeError(f"scheduler {name} failed:\n{answer.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
    accepted = [t for t in endpoint.accepted if t >= result["queued_at"]]
    stats = endpoint.ecs.stats()
    result["registrations"] = stats["calls"].get("RegisterTaskDefinition", 0) - registered_before
    result["launch_wall_seconds"] = round(max(accepted) - result["queued_at"], 1) if accepted else None
    result["throttled_by_endpoint"] = {
        op: n - throttled_before.get(op, 0)
        for op, n in endpoint.throttled.items()
        if n > throttled_before.get(op, 0)
    }
    del result["queued_at"]
    return result


def derived_definitions(endpoint: Instrumented) -> dict[str, int]:
    """Derived families and revisions registered at the endpoint, and revisions tasks ran on."""
    registry = endpoint.ecs.server.registry
    revisions = [d.arn for (_, family), ds in registry.families.items() if FAMILY_MARK in family for d in ds]
    used = {
        r["taskDefinitionArn"] for r in endpoint.ecs.launch_records() if FAMILY_MARK in r["taskDefinitionArn"]
    }
    families = {family for (_, family) in registry.families if FAMILY_MARK in family}
    return {"families": len(families), "revisions": len(revisions), "revisions_used": len(used)}


def concurrent(endpoint: Instrumented, n: int, images: int, schedulers: int = 2) -> dict[str, Any]:
    """``schedulers`` processes, released together, ``n`` tasks between them, each over every image."""
    barrier = tempfile.mkdtemp(prefix="definitions-barrier-")
    share = n // schedulers
    processes = []
    for index in range(schedulers):
        command = [sys.executable, "-m", "benchmarks.definitions", "--child", endpoint.url, "--n", str(share)]
        command += ["--images", str(images), "--run-id", f"s{index}", "--barrier", barrier]
        command += ["--share", str(schedulers)]
        processes.append(
            subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    results = []
    for process in processes:
        out, err = process.communicate(timeout=CAP_SECONDS + 180)
        if process.returncode != 0:
            raise RuntimeError(f"a concurrent scheduler failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    queued_at = min(r.pop("queued_at") for r in results)
    accepted = [t for t in endpoint.accepted if t >= queued_at]
    stats = endpoint.ecs.stats()
    return {
        "schedulers": results,
        "registrations": stats["calls"].get("RegisterTaskDefinition", 0),
        "derived": derived_definitions(endpoint),
        "failed": sum(r["failed"] for r in results),
        "launch_wall_seconds": round(max(accepted) - queued_at, 1) if accepted else None,
        "throttled_by_endpoint": dict(endpoint.throttled),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--child")
    parser.add_argument("--run-id", default="a")
    parser.add_argument("--concurrent", action="store_true", help="two schedulers at the same moment")
    parser.add_argument("--barrier", help=argparse.SUPPRESS)
    parser.add_argument("--share", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.n, args.images, args.run_id, args.barrier, args.share)))
        return 0
    if args.concurrent:
        with Instrumented({**BASE_KNOBS, "latency_ms": 50}) as endpoint:
            figures = {"n": args.n, "images": args.images, **concurrent(endpoint, args.n, args.images)}
        print(json.dumps(figures, indent=2))
        return 0
    run_bound = max(0.0, (args.n - RUN_TASK_BURST) / RUN_TASK_RATE)
    register_bound = max(0.0, (args.images - TASK_DEFINITION_MODIFY_BURST) / TASK_DEFINITION_MODIFY_RATE)
    figures: dict[str, Any] = {
        "n": args.n,
        "images": args.images,
        "bound_seconds": round(run_bound + register_bound, 1),
    }
    with Instrumented({**BASE_KNOBS, "latency_ms": 50}) as endpoint:
        figures["scheduler_a"] = scheduler(endpoint, "a", args.n, args.images)
        figures["scheduler_b"] = scheduler(endpoint, "b", args.n, args.images)
        # The same launch on the same endpoint (now holding 2n tasks) without any derivation: the baseline.
        figures["baseline_no_derivation"] = scheduler(endpoint, "c", args.n, 0)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
