"""``python -m ecs_executor.local_ecs.loadtest``: how many RunTask calls per second the endpoint sustains.

The endpoint runs in its own process (pretend mode) so the client's CPU use does not share its GIL,
which is how the executor meets it in demos and benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecs_executor.local_ecs.loadtest", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pretend-seconds", type=float, default=600, help="keep every task RUNNING")
    args = parser.parse_args(argv)
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
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip().partition("=")[2]
        rss_before = _rss_mb(server.pid)
        elapsed = asyncio.run(_drive(url, args.tasks, args.concurrency))
        with urllib.request.urlopen(f"{url}/_local_ecs/stats", timeout=10) as response:
            stats: dict[str, Any] = json.loads(response.read())
        result = {
            "tasks": args.tasks,
            "concurrency": args.concurrency,
            "seconds": round(elapsed, 2),
            "run_task_per_second": round(args.tasks / elapsed),
            "server_rss_mb": {"before": round(rss_before), "after": round(_rss_mb(server.pid))},
            "tasks_by_status": stats["tasks_by_status"],
        }
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
