"""``python -m benchmarks.run [--quick]``: this executor vs the provider's AwsEcsExecutor, side by side.

For every scenario and executor: a fresh local ECS endpoint (pretend mode, ECS's token buckets, added
latency) in this process, and one worker subprocess that holds only the executor and a scheduler-like
driver (``benchmarks/worker.py``), so CPU time and RSS are the executor's own. The endpoint records
the time of every RunTask it accepts (the common ground truth for the launch curves) and every
ThrottlingException it answers, per operation.

Writes ``results.json`` and ``report.md`` into ``--out`` and the launch-curve plot to ``--plot``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.kms import CountingKms
from benchmarks.report import render_markdown, render_plot
from benchmarks.scenarios import CLUSTER, TASK_DEFINITIONS, Scenario, scenarios
from ecs_executor.local_ecs import LocalEcs

ROOT = Path(__file__).resolve().parent.parent
STARTUP_GRACE = 90.0  # worker process start (Airflow import) and result writing, on top of the cap


class Instrumented:
    """A LocalEcs whose accepted RunTasks and bucket throttles are timestamped (endpoint side)."""

    def __init__(self, knobs: dict[str, Any]):
        self.ecs = LocalEcs(**knobs)
        self.accepted: list[float] = []
        self.throttled: Counter[str] = Counter()
        self.throttle_times: list[tuple[float, str]] = []
        server = self.ecs.server
        new_task = server.registry.new_task
        bucket_throttled = server.faults.bucket_throttled

        def counting_new_task(*args: Any, **kwargs: Any) -> Any:
            self.accepted.append(time.monotonic())
            return new_task(*args, **kwargs)

        def counting_bucket_throttled(operation: str, fargate_launches: int) -> bool:
            throttled = bucket_throttled(operation, fargate_launches)
            if throttled:
                self.throttled[operation] += 1
                self.throttle_times.append((time.monotonic(), operation))
            return throttled

        server.registry.new_task = counting_new_task  # type: ignore[method-assign]
        server.faults.bucket_throttled = counting_bucket_throttled  # type: ignore[method-assign]

    def __enter__(self) -> Instrumented:
        self.url = self.ecs.start()
        self.ecs.bootstrap([CLUSTER], TASK_DEFINITIONS)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ecs.stop()


def run_one(scenario: Scenario, executor: str, out: Path, profile: bool = False) -> dict[str, Any]:
    cap = scenario.cap.get(executor, scenario.cap["ours"])
    run_dir = out / "runs" / f"{scenario.name}-{executor}"
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.iterdir():
        stale.unlink()
    result_path, progress_path = run_dir / "result.json", run_dir / "progress.jsonl"
    sealed = executor == "encrypted"  # ours with workload_kms_key, at moto's KMS (benchmarks/kms.py)
    with (
        Instrumented(scenario.knobs) as endpoint,
        CountingKms() if sealed else contextlib.nullcontext() as kms,
    ):
        options = {**scenario.options, **(scenario.ours_options if executor != "provider" else {})}
        if kms is not None:
            options["workload_kms_key"] = kms.key_arn
        spec = {
            "executor": executor,
            "url": endpoint.url,
            "kms_url": kms.url if kms is not None else None,
            "n": scenario.n,
            "extra_pending": scenario.extra_pending,
            "options": options,
            "tracemalloc": scenario.tracemalloc,
            "track_seconds": scenario.track_seconds,
            "lag_samples": scenario.lag_samples,
            "track_latency_ms": scenario.track_latency_ms,
            "track_knobs": scenario.track_knobs,
            "sqs_url": scenario.sqs_url,
            "notice_burst": scenario.notice_burst,
            "cap_seconds": cap,
            "result_path": str(result_path),
            "progress_path": str(progress_path),
        }
        (run_dir / "spec.json").write_text(json.dumps(spec, indent=1))
        started = time.monotonic()
        command = [sys.executable, "-m", "benchmarks.worker", str(run_dir / "spec.json")]
        if profile:  # sampled stacks of every thread, for benchmarks/profile.py
            spy = Path(sys.executable).with_name("py-spy")
            command = [str(spy), "record", "-r", "200", "--threads", "--nonblocking", "-f", "raw"]
            command += ["-o", str(run_dir / "profile.txt"), "--", sys.executable, "-m", "benchmarks.worker"]
            command += [str(run_dir / "spec.json")]
        with open(run_dir / "worker.log", "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            killed = False
            try:
                proc.wait(timeout=cap + STARTUP_GRACE)
            except subprocess.TimeoutExpired:
                killed = True
                proc.kill()
                proc.wait(timeout=30)
        elapsed = time.monotonic() - started
        stats = endpoint.ecs.stats()
        accepted, throttled = list(endpoint.accepted), dict(endpoint.throttled)
        throttle_times = list(endpoint.throttle_times)
        kms_calls = kms.calls() if kms is not None else None
    result: dict[str, Any]
    if result_path.exists():
        result = json.loads(result_path.read_text())
    else:
        result = {"executor": executor, "finished": False, "error": "no result (killed at the cap)"}
    progress = (
        [json.loads(line) for line in progress_path.read_text().splitlines()]
        if (progress_path.exists())
        else []
    )
    if "t0_monotonic" not in result:
        result.update(_partial_from_progress(progress, cap))
    t0 = result.get("t0_monotonic")
    result.update(
        scenario=scenario.name,
        cap_seconds=cap,
        killed_at_cap=killed,
        process_seconds=elapsed,
        endpoint={
            "calls": stats["calls"],
            "throttled": throttled,
            "tasks_started": stats["tasks_started"],
            "run_task_deduplicated": stats["run_task_deduplicated"],
            "accepted_times": [round(t - t0, 4) for t in accepted] if t0 is not None else [],
            "throttle_times": [(round(t - t0, 3), op) for t, op in throttle_times] if t0 is not None else [],
        },
        progress_tail=progress[-3:],
        kms_calls=kms_calls,
    )
    return result


def _partial_from_progress(progress: list[dict[str, Any]], cap: float) -> dict[str, Any]:
    """What a killed run still tells: its completed heartbeats and how far it got."""
    from benchmarks.worker import summarize_ms

    hb = [p["hb_ms"] / 1000 for p in progress]
    last = progress[-1] if progress else {}
    return {
        "launched": last.get("launched", 0),
        "failed": last.get("failed", 0),
        "heartbeats_all": summarize_ms(hb),
        "heartbeats": {},
        "note": f"did not finish in {cap:.0f} s; {len(progress)} heartbeat(s) completed, the last at "
        f"t={last.get('t', 0):.0f} s; a heartbeat was still running when the run was stopped",
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    import os

    versions = {}
    for dist in ("apache-airflow", "apache-airflow-providers-amazon", "aiobotocore", "botocore", "boto3"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[dist] = version(dist)
    import hashlib

    package = ROOT / "ecs_executor"
    code = {
        str(path.relative_to(package)): hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in sorted(package.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    return {
        "code_sha256": code,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "python": platform.python_version(),
        "os": platform.platform(),
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller N and caps: under 3 minutes")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument(
        "--executors",
        default="ours,encrypted,provider",
        help="ours (ecs_executor as it is), encrypted (ours with workload_kms_key: every workload sealed, "
        "moto's KMS), provider (the Amazon provider's AwsEcsExecutor)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--profile", action="store_true", help="record each worker with py-spy (runs/*/profile.txt)"
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="launch-curve PNG (default: docs/ if full, else --out)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="re-render report.md and the plot from results.json"
    )
    args = parser.parse_args(argv)
    only = {s for s in args.only.split(",") if s}
    wanted = {e for e in args.executors.split(",") if e}
    out: Path = args.out / ("quick" if args.quick else "full")
    out.mkdir(parents=True, exist_ok=True)
    # Only a complete full run replaces the plot in docs/.
    complete = not args.quick and not args.only and wanted >= {"ours", "provider"}
    plot = args.plot or (ROOT / "docs" / "benchmarks-launch.png" if complete else out / "launch-curves.png")
    if args.report_only:
        results = json.loads((out / "results.json").read_text())
        (out / "report.md").write_text(render_markdown(results))
        render_plot(results, plot)
        print(render_markdown(results))
        return 0
    chosen = [s for s in scenarios(args.quick) if not only or s.name in only]
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "scenarios": {}, "runs": {}}
    for scenario in chosen:
        results["scenarios"][scenario.name] = {
            "title": scenario.title,
            "n": scenario.n,
            "extra_pending": scenario.extra_pending,
            "knobs": scenario.knobs,
            "note": scenario.note,
            "bound_burst": scenario.bound_burst,
            "bound_rate": scenario.bound_rate,
            "bound_seconds": scenario.bound_seconds(),
            "plot": scenario.plot,
        }
        for executor in scenario.executors:
            if executor not in wanted:
                continue
            print(f"[{time.monotonic() - started:6.0f}s] {scenario.name} / {executor} ...", flush=True)
            result = run_one(scenario, executor, out, args.profile)
            results["runs"][f"{scenario.name}/{executor}"] = result
            print(f"         {_one_line(scenario, result)}", flush=True)
            (out / "results.json").write_text(json.dumps(results))
    results["total_seconds"] = time.monotonic() - started
    if machine()["code_sha256"] != results["machine"]["code_sha256"]:
        results["code_changed_during_run"] = machine()["code_sha256"]
        print("WARNING: ecs_executor/*.py changed while the benchmark ran", flush=True)
    (out / "results.json").write_text(json.dumps(results))
    report = render_markdown(results)
    (out / "report.md").write_text(report)
    render_plot(results, plot)
    print(report)
    print(f"results: {out / 'results.json'}\nplot: {plot}\ntotal {results['total_seconds']:.0f} s")
    return 0


def _one_line(scenario: Scenario, r: dict[str, Any]) -> str:
    accepted = r.get("endpoint", {}).get("accepted_times", [])
    n = scenario.n
    all_at = f"{accepted[n - 1]:.1f}s" if len(accepted) >= n else f"only {len(accepted)}"
    hb = r.get("heartbeats_all") or {}
    return (
        f"finished={r.get('finished')} launched={r.get('launched')} failed={r.get('failed')} "
        f"N accepted at {all_at} (bound {scenario.bound_seconds():.1f}s) "
        f"hb p50/p99/max={hb.get('p50') or 0:.1f}/{hb.get('p99') or 0:.1f}/{hb.get('max') or 0:.1f} ms "
        f"throttled={r.get('endpoint', {}).get('throttled')} {r.get('error') or r.get('note') or ''}"
    )


if __name__ == "__main__":
    sys.exit(main())
