"""``python -m ecs_executor.local_ecs.loadtest``: how many RunTask calls per second the endpoint sustains.

The endpoint runs in its own process (pretend mode) so the client's CPU use does not share its GIL,
which is how the executor meets it in demos and benchmarks.

``--events`` runs it a second time publishing task state change events to a stand-in SQS that
accepts every SendMessageBatch at once, and reports the endpoint's CPU per event: its CPU time beyond
the run without events (same tasks), divided by the events it published.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
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


class _NullSqs:
    """Answers SendMessageBatch at once and counts the messages, so the figures are the endpoint's own
    (moto's SQS takes milliseconds per message and slows as its queue fills; see ``local_ecs.local_sqs``)."""

    def __init__(self) -> None:
        self.received = 0
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(30)

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body = await request.json()
            entries = body.get("Entries") or [body]
            self.received += len(entries)
            answer = {
                "Successful": [
                    {
                        "Id": entry.get("Id", "0"),
                        "MessageId": str(i),
                        "MD5OfMessageBody": hashlib.md5(entry["MessageBody"].encode()).hexdigest(),
                    }
                    for i, entry in enumerate(entries)
                ],
                "Failed": [],
            }
            return web.json_response(answer, content_type="application/x-amz-json-1.0")

        async def start() -> None:
            app = web.Application(client_max_size=4 * 1024 * 1024)
            app.router.add_post("/", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()

        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(start())
        self._loop.run_forever()


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
    baseline = _run(args, [])
    result: dict[str, Any] = {"tasks": args.tasks, "concurrency": args.concurrency}
    if not args.events:
        baseline.pop("events")
        baseline.pop("events_sent_within_seconds")
        print(json.dumps({**result, **baseline}))
        return 0
    sink = _NullSqs()
    args.started = time.perf_counter()
    knobs = ["--events-queue-url", f"{sink.url}/123456789012/loadtest", "--events-endpoint-url", sink.url]
    with_events = _run(args, knobs)
    published = with_events["events"]["published"]
    extra_cpu = with_events["server_cpu_seconds"] - baseline["server_cpu_seconds"]
    result.update(
        without_events={k: v for k, v in baseline.items() if not k.startswith("events")},
        with_events=with_events,
        sink_received=sink.received,
        server_cpu_us_per_event=round(extra_cpu / max(published, 1) * 1e6),
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
