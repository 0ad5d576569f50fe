"""``python -m benchmarks.events [--quick]``: tracking by polling vs by events, in the same run.

For each number of tracked tasks, two runs of our executor against the local ECS endpoint (pretend
mode, ECS's token buckets, 50 ms per ECS call while tracking): ``tracking_mode=polling`` and
``tracking_mode=events`` (the endpoint publishes every task state change to an SQS queue on a moto
server in its own process, as an EventBridge rule would). The worker (``benchmarks/worker.py``) queues
N tasks, waits until all run, then makes sample tasks exit one by one during the tracking window and
records when each reached the executor's event buffer (heartbeat once a second, as a scheduler).

Reported per run: lag (task exit -> event buffer) p50/p99/max, the engine's own part of it (exit ->
result queued), DescribeTasks calls and CPU seconds during the tracking window, heartbeat p99, and
the events counters. ``--big`` adds one events-mode run with that many tracked tasks (default 100,000).

In events mode, launches publish no events (moto's SQS would need minutes for three events per task):
tasks are tracked from their RunTask answers, as long-running tasks are in ECS, which sends no events
while a task runs; every change of the tracking window is published. The window (90 s) is longer than
``reconcile_interval`` (60 s), so each tracked task is also reconciled once by DescribeTasks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from benchmarks.run import machine, run_one
from benchmarks.scenarios import BASE_KNOBS, EC2_OPTIONS, RUN_TASK_RATE, Scenario
from benchmarks.worker import percentile

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
TRACK_LATENCY_MS = 50


@contextlib.contextmanager
def moto_sqs_server() -> Iterator[str]:
    """moto's server in its own process, so its CPU does not share the endpoint's GIL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                sqs_client(url).list_queues()
                break
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sqs_client(url: str) -> Any:
    return boto3.client(
        "sqs", region_name=REGION, endpoint_url=url, aws_access_key_id="bench", aws_secret_access_key="bench"
    )


def scenario(
    mode: str, n: int, sqs_url: str | None, track_seconds: float, samples: int, big: bool, burst: bool = True
) -> Scenario:
    knobs: dict[str, Any] = {
        **BASE_KNOBS,
        "latency_ms": 0,
        "throttle_overrides": {"cluster_modify": [max(n, 100), RUN_TASK_RATE]},
    }
    ours: dict[str, Any] = {"run_task_burst": max(n, 100), "tracking_mode": mode}
    track_knobs: dict[str, Any] = {}
    if mode == "events":
        assert sqs_url is not None
        queue = sqs_client(sqs_url).create_queue(QueueName=f"bench-{n}-{int(time.time() * 1000)}")["QueueUrl"]
        # Launches publish nothing, the tracking window does: moto's SQS takes ~1-5 ms per message and
        # 3 events per launch would make the setup of 10,000 tasks minutes long. Tasks are tracked from
        # their RunTask answers, as long-running tasks are in ECS (no events while they run).
        track_knobs = {"events_queue_url": queue, "events_endpoint_url": sqs_url}
        ours["events_queue"] = queue
    return Scenario(
        name=f"{mode}-{n}",
        title=f"{n:,} tracked, {mode}",
        n=n,
        knobs=knobs,
        options=EC2_OPTIONS,
        ours_options=ours,
        bound_burst=max(n, 100),
        bound_rate=RUN_TASK_RATE,
        track_seconds=track_seconds,
        lag_samples=samples,
        track_latency_ms=TRACK_LATENCY_MS,
        track_knobs=track_knobs,
        sqs_url=sqs_url if mode == "events" else None,
        cap={"ours": 900.0 if big else 600.0},
        executors=("ours",),
        notice_burst=burst,
    )


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    marks = result.get("phase_marks") or {}
    start, end = marks.get("launch_done") or {}, marks.get("tracking_done") or {}
    window = (end.get("t") or 0) - (start.get("t") or 0)

    def delta(key: str) -> float | None:
        if key in end and key in start and end[key] is not None and start[key] is not None:
            return round(float(end[key]) - float(start[key]), 3)
        return None

    counters_before, counters_after = start.get("engine_counters") or {}, end.get("engine_counters") or {}
    counters = {
        k: v - counters_before.get(k, 0) for k, v in counters_after.items() if v - counters_before.get(k, 0)
    }
    lags, engine_lags = result.get("lag_seconds") or [], result.get("engine_lag_seconds") or []
    tracking_beats = (result.get("heartbeats") or {}).get("tracking") or {}
    return {
        "finished": result.get("finished"),
        "launched": result.get("launched"),
        "failed": result.get("failed"),
        "window_seconds": round(window, 1),
        "lag_samples": len(lags),
        "lag_p50": _round(percentile(lags, 50)),
        "lag_p99": _round(percentile(lags, 99)),
        "lag_max": _round(max(lags) if lags else None),
        "engine_lag_p99": _round(percentile(engine_lags, 99)),
        "describe_calls": counters.get("describe_calls", 0),
        "cpu_seconds": delta("cpu_s"),
        "engine_cpu_seconds": delta("engine_thread_cpu_s"),
        "heartbeat_p99_ms": _round(tracking_beats.get("p99")),
        "heartbeat_max_ms": _round(tracking_beats.get("max")),
        "launch_heartbeat_max_ms": _round(((result.get("heartbeats") or {}).get("launch") or {}).get("max")),
        "notice_burst": result.get("notice_burst"),
        "notices_in_window": delta("notices_sent"),
        "counters": counters,
        "traced_bytes": result.get("traced_bytes"),
        "tracked_rss_bytes": result.get("tracked_rss_bytes"),
        "baseline_rss_bytes": result.get("baseline_rss_bytes"),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def render(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| tracked | mode | lag p50 / p99 / max (s) | engine lag p99 (s) | DescribeTasks calls "
        "| CPU s (engine) | heartbeat p99 (ms) | window (s) |",
        "|---:|---|---|---:|---:|---|---:|---:|",
    ]
    for name, r in rows.items():
        mode, n = name.split("-")
        lag = f"{r['lag_p50']} / {r['lag_p99']} / {r['lag_max']}"
        cpu = f"{r['cpu_seconds']} ({r['engine_cpu_seconds']})"
        lines.append(
            f"| {int(n):,} | {mode} | {lag} | {r['engine_lag_p99']} | {r['describe_calls']} | {cpu} "
            f"| {r['heartbeat_p99_ms']} | {r['window_seconds']} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for mode, color in (("polling", "tab:orange"), ("events", "tab:blue")):
        points = sorted(
            (int(name.split("-")[1]), r) for name, r in rows.items() if name.startswith(mode + "-")
        )
        points = [(n, r) for n, r in points if r.get("lag_p99") is not None]
        if not points:
            continue
        xs = [n for n, _ in points]
        ax.plot(xs, [r["lag_p99"] for _, r in points], "o-", color=color, label=f"{mode}: p99")
        ax.plot(xs, [r["lag_p50"] for _, r in points], "o:", color=color, label=f"{mode}: p50")
        engine = [(n, r["engine_lag_p99"]) for n, r in points if r.get("engine_lag_p99") is not None]
        if engine:
            ax.plot(
                *zip(*engine, strict=True), "s--", color=color, alpha=0.6, label=f"{mode}: engine part, p99"
            )
    ax.set_xscale("log")
    ax.set_xlabel("tasks tracked")
    ax.set_ylabel("task exit → Airflow event buffer (s)")
    ax.set_yscale("log")
    ax.set_title(f"State-change lag, {TRACK_LATENCY_MS} ms per ECS call, heartbeat 1 s")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 3,000 tracked, short windows")
    parser.add_argument(
        "--sizes", default=None, help="comma-separated tracked counts (default 1000,3000,10000; '' for none)"
    )
    parser.add_argument(
        "--big", type=int, default=None, help="one events run this large (default 100000; 0: none)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "events")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "benchmarks-events.png")
    parser.add_argument("--replot", action="store_true", help="only redraw the plot from --out/results.json")
    parser.add_argument(
        "--no-burst",
        action="store_true",
        help="no RUNNING notice for every tracked task at the window's start",
    )
    args = parser.parse_args(argv)
    if args.replot:
        plot(json.loads((args.out / "results.json").read_text())["runs"], args.plot)
        return 0
    default_sizes = "1000,3000" if args.quick else "1000,3000,10000"
    sizes = [int(x) for x in (default_sizes if args.sizes is None else args.sizes).split(",") if x]
    big = args.big if args.big is not None else (0 if args.quick else 100_000)
    track_seconds, samples = (20.0, 10) if args.quick else (90.0, 40)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    rows: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    with moto_sqs_server() as sqs_url:
        plan = [(mode, n, False) for n in sizes for mode in ("polling", "events")]
        if big:
            plan.append(("events", big, True))
        for mode, n, is_big in plan:
            sc = scenario(
                mode,
                n,
                sqs_url,
                30.0 if is_big else track_seconds,
                20 if is_big else samples,
                is_big,
                burst=not args.no_burst,
            )
            if is_big:
                sc.tracemalloc = False
            result = run_one(sc, "ours", args.out)
            rows[sc.name] = summarize(result)
            print(
                f"{sc.name}: {json.dumps({k: v for k, v in rows[sc.name].items() if k != 'counters'})}",
                flush=True,
            )
    report = {"machine": machine(), "wall_seconds": round(time.monotonic() - started), "runs": rows}
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    (args.out / "report.md").write_text(render(rows))
    with contextlib.suppress(Exception):
        plot(rows, args.plot)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
