"""``python -m ecs_executor.local_ecs.loadtest``: how many RunTask calls per second the endpoint sustains.

The endpoint runs in its own process (pretend mode) so the client's CPU use does not share its GIL,
which is how the executor meets it in demos and benchmarks.

``--events`` also has it publish task state change events to a queue on a moto server in a third
process, drained as it fills by a few consumers here, and reports the endpoint's CPU per event: its
CPU time beyond a run without events (same tasks), divided by the events it published.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# About the size of an Airflow execute_workload command, so the payload is realistic.
_COMMAND = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "x" * 2000]
_DEFINITION = {
    "family": "loadtest",
    "containerDefinitions": [{"name": "base", "image": "img", "memory": 512}],
}


async def _drive(url: str, tasks: int, concurrency: int) -> float:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    session = get_session()
    config = AioConfig(
        max_pool_connections=concurrency, retries={"mode": "standard", "total_max_attempts": 1}
    )
    async with session.create_client(
        "ecs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="loadtest",
        aws_secret_access_key="loadtest",
        config=config,
    ) as ecs:
        gate = asyncio.Semaphore(concurrency)
        overrides = {"containerOverrides": [{"name": "base", "command": _COMMAND}]}

        async def one() -> None:
            async with gate:
                await ecs.run_task(cluster="loadtest", taskDefinition="loadtest", overrides=overrides)

        await one()  # warm the connection pool
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(tasks)))
        return time.perf_counter() - started


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_local_ecs/stats", timeout=10) as response:
        return dict(json.loads(response.read()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Drain:
    """Consumers that receive and delete as fast as they can (moto slows down as a queue fills)."""

    def __init__(self, client: Any, queue_url: str, threads: int = 4) -> None:
        self.client, self.queue_url = client, queue_url
        self.received = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = self.client.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if messages:
                self.client.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
                with self._lock:
                    self.received += len(messages)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


def _run(args: argparse.Namespace, knobs: list[str]) -> dict[str, Any]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecs_executor.local_ecs",
            "--pretend-seconds",
            str(args.pretend_seconds),
            "--bootstrap-cluster",
            "loadtest",
            "--bootstrap-task-definition",
            json.dumps(_DEFINITION),
            *knobs,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip().partition("=")[2]
        rss_before = _rss_mb(server.pid)
        cpu_before = _cpu_seconds(server.pid)
        elapsed = asyncio.run(_drive(url, args.tasks, args.concurrency))
        stats = _stats(url)
        while stats["events"]["pending"]:  # events still on their way to SQS
            time.sleep(0.1)
            stats = _stats(url)
        drained = time.perf_counter() - args.started
        return {
            "seconds": round(elapsed, 2),
            "run_task_per_second": round(args.tasks / elapsed),
            "events_sent_within_seconds": round(drained, 2),
            "server_cpu_seconds": round(_cpu_seconds(server.pid) - cpu_before, 2),
            "server_rss_mb": {"before": round(rss_before), "after": round(_rss_mb(server.pid))},
            "tasks_by_status": stats["tasks_by_status"],
            "events": stats["events"],
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecs_executor.local_ecs.loadtest", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pretend-seconds", type=float, default=600, help="keep every task RUNNING")
    parser.add_argument("--events", action="store_true", help="also publish task state change events")
    args = parser.parse_args(argv)
    args.started = time.perf_counter()
    if not args.events:
        result = _run(args, [])
        result.pop("events")
        result.pop("events_sent_within_seconds")
        print(json.dumps({"tasks": args.tasks, "concurrency": args.concurrency, **result}))
        return 0
    import boto3

    port = _free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sqs_url = f"http://127.0.0.1:{port}"
        sqs = boto3.client(
            "sqs",
            endpoint_url=sqs_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        for _ in range(100):
            try:
                queue_url = sqs.create_queue(QueueName="loadtest-events")["QueueUrl"]
                break
            except Exception:
                time.sleep(0.1)
        baseline = _run(args, [])
        drain = _Drain(sqs, queue_url)
        args.started = time.perf_counter()
        knobs = ["--events-queue-url", queue_url, "--events-endpoint-url", sqs_url]
        with_events = _run(args, knobs)
        drain.stop()
        published = with_events["events"]["published"]
        extra_cpu = with_events["server_cpu_seconds"] - baseline["server_cpu_seconds"]
        print(
            json.dumps(
                {
                    "tasks": args.tasks,
                    "concurrency": args.concurrency,
                    "without_events": {k: v for k, v in baseline.items() if not k.startswith("events")},
                    "with_events": with_events,
                    "received": drain.received,
                    "events_per_second": round(published / with_events["events_sent_within_seconds"]),
                    "server_cpu_us_per_event": round(extra_cpu / max(published, 1) * 1e6),
                }
            )
        )
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
