"""``python -m ecs_executor.demo`` (``make demo``): run the fan-out DAG end to end and print a table.

Exit 0 only if every task instance succeeded, each ran in its own ECS task (distinct ARNs recorded as
``external_executor_id``), and everything was stopped cleanly.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ecs_executor.config.values import TRACKING_MODES
from ecs_executor.demo import two_images
from ecs_executor.demo.airflow_api import ADMIN_USER, AirflowApiError
from ecs_executor.demo.deployment import DeploymentError, LocalDeployment, clean
from ecs_executor.demo.ha import HaDeployment
from ecs_executor.demo.token_audit import audit_deployment
from ecs_executor.local_ecs.timing import TIMING_PROFILES

DAG_ID = "ecs_fanout_demo"
EXPECTED_TASKS = 22  # plan + 20 mapped work + join


def _parse(ts: str | None) -> datetime.datetime | None:
    if not ts:
        return None
    return datetime.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = _parse(start), _parse(end)
    return (b - a).total_seconds() if a and b else None


def _fmt(value: float | None) -> str:
    return f"{value:6.1f}s" if value is not None else "      -"


def table(rows: list[dict[str, Any]]) -> str:
    names = [r["task_id"] + (f"[{r['map_index']}]" if r["map_index"] >= 0 else "") for r in rows]
    w = max([14, *map(len, names)])
    lines = [f"{'task':<{w}} {'state':<8} {'ECS task ARN':<80} {'queued→run':>10} {'duration':>9}"]
    lines.append("-" * len(lines[0]))
    for name, r in zip(names, rows, strict=True):
        lines.append(
            f"{name:<{w}} {r['state'] or '-':<8} {(r['external_executor_id'] or '-'):<80} "
            f"{_fmt(_seconds(r['queued_dttm'], r['start_date'])):>10} "
            f"{_fmt(_seconds(r['start_date'], r['end_date'])):>9}"
        )
    return "\n".join(lines)


_last_progress = [""]


def progress(rows: list[dict[str, Any]]) -> None:
    """One status line: rewritten in place on a terminal, printed on change otherwise (CI logs)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"] or "none"] = counts.get(r["state"] or "none", 0) + 1
    text = f"{len(rows)} task instances: " + "  ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    if sys.stdout.isatty():
        print(f"\r  [{time.strftime('%H:%M:%S')}] {text}".ljust(100), end="", flush=True)
    elif text != _last_progress[0]:
        print(f"  [{time.strftime('%H:%M:%S')}] {text}", flush=True)
    _last_progress[0] = text


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ecs_executor.demo", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(".demo"), help="recreated on each run")
    parser.add_argument("--keep", action="store_true", help="keep Airflow running for the UI until Ctrl-C")
    parser.add_argument("--timeout", type=float, default=240)
    parser.add_argument(
        "--tracking",
        choices=TRACKING_MODES,
        default="polling",
        help="events: the local ECS endpoint publishes task state change events to moto's SQS and the "
        "executor tracks tasks from that queue",
    )
    parser.add_argument(
        "--image",
        metavar="IMAGE",
        help="run each task in this worker image with podman (e.g. localhost/ecs-executor-worker:image-test, "
        "which `make image-test` builds) instead of as a process on this host",
    )
    parser.add_argument(
        "--other-image",
        metavar="IMAGE",
        help="with --image: run the DAG ecs_two_images_demo instead, whose tasks ask (executor_config) for "
        "--image and for this image; each gets a derived task definition (docs/demo.md)",
    )
    parser.add_argument(
        "--timing",
        choices=TIMING_PROFILES,
        default=None,
        help="the local ECS endpoint's timing profile: fargate walks every ECS task state, taking seconds "
        "up and down like a (scaled-down) Fargate task (default: instant, or $ECS_EXECUTOR_TEST_TIMING)",
    )
    parser.add_argument(
        "--ha", action="store_true", help="PostgreSQL and two schedulers (Airflow's HA mode), see docs/ha.md"
    )
    parser.add_argument(
        "--encrypt",
        action="store_true",
        help="seal every workload with a KMS key at moto's KMS (workload_kms_key, docs/security.md), then "
        "search DescribeTasks, the events queue and every log for the workload tokens",
    )
    args = parser.parse_args(argv)
    if args.other_image and (not args.image or args.other_image == args.image):
        parser.error("--other-image needs --image, and another image than --image's")
    if args.ha and args.tracking == "events":
        parser.error("--ha runs with polling: events tracking needs one queue per scheduler (docs/ha.md)")
    return args


def _start(deployment: LocalDeployment, args: argparse.Namespace) -> None:
    """Steps 1 and 2: the local ECS endpoint, then Airflow."""
    where = f"in the image {args.image}, with podman" if args.image else "as local processes"
    timing = deployment.timing or "instant"
    print(f"1/4 starting the local ECS endpoint (tasks run {where}; {timing} timing)...", flush=True)
    deployment.start_local_ecs()
    print(f"    {deployment.ecs_url}")
    if args.tracking == "events":
        queue, moto = deployment.events_queue_url, deployment.sqs_url
        print(f"    task state change events -> SQS {queue} (moto at {moto})")
    if args.encrypt:
        print(f"    workloads sealed with KMS key {deployment.kms_key_arn} (moto at {deployment.sqs_url})")
    database, schedulers = ("PostgreSQL", "2 schedulers") if args.ha else ("SQLite", "scheduler")
    print(
        f"2/4 airflow db migrate ({database}), then api-server, {schedulers}, dag-processor...",
        flush=True,
    )
    deployment.start()
    print(f"    UI: {deployment.api_url}  user: {ADMIN_USER}  password: {deployment.admin_password()}")
    print(f"    component logs: {deployment.logs}")


def _run_dag(deployment: LocalDeployment, args: argparse.Namespace, started: float) -> bool:
    """Steps 3 and 4: trigger the DAG, follow it, print the table; True if it went as expected."""
    dag_id, expected = (
        (two_images.DAG_ID, two_images.EXPECTED_TASKS) if args.other_image else (DAG_ID, EXPECTED_TASKS)
    )
    print(f"3/4 waiting for DAG {dag_id} to be parsed, then triggering it...", flush=True)
    deployment.wait_for_dag(dag_id)
    run_id = deployment.trigger(dag_id)
    run_started = time.monotonic()
    print(f"    run {run_id}")
    state = deployment.wait_for_run(dag_id, run_id, timeout=args.timeout, on_tick=progress)
    run_seconds = time.monotonic() - run_started
    print()
    rows = deployment.task_rows(dag_id, run_id)
    print("4/4 result\n")
    print(table(rows))
    arns = [r["external_executor_id"] for r in rows if r["external_executor_id"]]
    succeeded = sum(1 for r in rows if r["state"] == "success")
    ok = (
        state == "success"
        and len(rows) == expected
        and succeeded == expected
        and len(set(arns)) == expected
        and all(":task/" in a for a in arns)
    )
    if args.other_image:
        ok = _images_shown(deployment, args, run_id, rows) and ok
    print(
        f"\nDAG run {state}: {succeeded}/{len(rows)} task instances succeeded, "
        f"{len(set(arns))} distinct ECS tasks; run took {run_seconds:.0f}s, "
        f"demo {time.monotonic() - started:.0f}s in all."
    )
    ok = _audit(deployment, args) and ok
    if isinstance(deployment, HaDeployment):
        queued_by = Counter(r["queued_by_job_id"] for r in rows)
        print(
            "task instances queued per scheduler: "
            + ", ".join(f"{name} (job {job}): {queued_by[job]}" for name, job in deployment.job_ids.items())
        )
    return ok


def _audit(deployment: LocalDeployment, args: argparse.Namespace) -> bool:
    """Where the workload tokens can be read; with --encrypt, nowhere (every command sealed)."""
    result = audit_deployment(deployment)
    print(f"token search: {result.summary()}")
    if not args.encrypt:
        return True
    return not result.leaks and bool(result.tokens) and result.sealed == set(result.tokens)


def _images_shown(
    deployment: LocalDeployment, args: argparse.Namespace, run_id: str, rows: list[dict[str, Any]]
) -> bool:
    """The two-image DAG: which image and task definition each task ran; True if each ran its own."""
    records = two_images.launch_records(deployment)
    seen = {f"{r['task_id']}[{r['map_index']}]": two_images.returned(deployment, run_id, r) for r in rows}
    print("\n" + two_images.image_table(rows, records, seen))
    problems = two_images.ran_as_asked(rows, records, args.image, args.other_image)
    for problem in problems:
        print(f"  not as asked: {problem}")
    return not problems


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    workdir = args.workdir.resolve()
    clean(workdir)
    dag_env = two_images.dag_environment(args.image, args.other_image) if args.other_image else {}
    deployment = (
        HaDeployment(
            workdir, worker_image=args.image, timing=args.timing, extra_env=dag_env, encrypt=args.encrypt
        )
        if args.ha
        else LocalDeployment(
            workdir,
            tracking=args.tracking,
            worker_image=args.image,
            timing=args.timing,
            extra_env=dag_env,
            encrypt=args.encrypt,
        )
    )
    ok = False
    try:
        _start(deployment, args)
        ok = _run_dag(deployment, args, started)
        if args.keep:
            print(f"\nAirflow keeps running at {deployment.api_url} (Ctrl-C to stop).")
            try:
                while True:
                    deployment.check_alive()
                    time.sleep(2)
            except KeyboardInterrupt:
                pass
    except (DeploymentError, AirflowApiError) as exc:
        print(f"\nDemo failed: {exc}", file=sys.stderr)
    finally:
        print("stopping all processes...", flush=True)
        deployment.stop()
    print("OK" if ok else "NOT OK: the outcome was not as expected (see the logs above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
