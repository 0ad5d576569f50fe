"""``python -m benchmarks.client_cost``: CPU per ECS call in aiobotocore, the floor under the engine.

Sends N RunTask calls (the executor's real RunTask arguments, built by ``RunTaskBuilder``) and then
DescribeTasks sweeps over the launched tasks, through one aiobotocore client configured as the engine
configures it, against a local ECS endpoint in another process (no latency, no throttling), and
reports this process's CPU time per call. Each variant adds one client option; the last one is the
engine's client as ``aws.clients.ecs_client`` builds it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.scenarios import CLUSTER, CONTAINER, EC2_FAMILY, TASK_DEFINITIONS

VARIANTS: dict[str, dict[str, Any]] = {
    "botocore defaults, adaptive retries": {"retries": "adaptive"},
    "standard retries": {"retries": "standard"},
    "standard + raw timestamps": {"retries": "standard", "raw_timestamps": True},
    "standard + raw timestamps + no param validation": {
        "retries": "standard",
        "raw_timestamps": True,
        "validate": False,
    },
    "the engine's client: + plain-JSON parsing": {
        "retries": "standard",
        "validate": False,
        "plain_json": True,
    },
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(url: str, kwargs: list[dict[str, Any]], variant: dict[str, Any]) -> dict[str, float]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    session = get_session()
    if variant.get("plain_json"):
        from ecs_executor.aws.clients import EcsResponseParserFactory

        session.register_component("response_parser_factory", EcsResponseParserFactory())
    if variant.get("raw_timestamps"):
        session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=lambda v: v)
    config = AioConfig(
        max_pool_connections=32,
        retries={"mode": variant["retries"], "max_attempts": 5},
        parameter_validation=variant.get("validate", True),
    )
    async with session.create_client(
        "ecs", endpoint_url=url, region_name="us-east-1", config=config
    ) as client:
        gate = asyncio.Semaphore(32)

        async def run(kw: dict[str, Any]) -> Any:
            async with gate:
                return await client.run_task(**kw)

        async def describe(arns: list[str]) -> Any:
            async with gate:
                return await client.describe_tasks(cluster=CLUSTER, tasks=arns)

        await run({**kwargs[0], "clientToken": f"warm-{time.monotonic()}"})
        started = _cpu()
        answers = await asyncio.gather(*(run(kw) for kw in kwargs))
        run_cpu = _cpu() - started
        arns = [a["tasks"][0]["taskArn"] for a in answers]
        chunks = [arns[i : i + 100] for i in range(0, len(arns), 100)]
        started = _cpu()
        for _ in range(3):
            await asyncio.gather(*(describe(chunk) for chunk in chunks))
        describe_cpu = _cpu() - started
    return {
        "run_task_ms_per_call": run_cpu / len(kwargs) * 1000,
        "describe_ms_per_call_of_100": describe_cpu / (3 * len(chunks)) * 1000,
        "describe_ms_per_task": describe_cpu / (3 * len(arns)) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client_cost", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AIRFLOW_HOME=tempfile.mkdtemp(prefix="ecs-bench-airflow-"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    from benchmarks.workloads import make_workload
    from ecs_executor.config.settings import settings_from_mapping
    from ecs_executor.request.run_task import RunTaskBuilder, TryIdentity, workload_command

    settings = settings_from_mapping(
        {
            "cluster": CLUSTER,
            "container_name": CONTAINER,
            "region_name": "us-east-1",
            "task_definition": EC2_FAMILY,
            "launch_type": "EC2",
        }
    )
    builder = RunTaskBuilder(settings)
    results = {}
    for name, variant in VARIANTS.items():
        # A fresh endpoint per variant, in its own process so its CPU is not counted here.
        command = [sys.executable, "-m", "ecs_executor.local_ecs", "--pretend-seconds", "3600"]
        definition = json.dumps(TASK_DEFINITIONS[0])
        server = subprocess.Popen(
            [*command, "--bootstrap-cluster", CLUSTER, "--bootstrap-task-definition", definition],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip().partition("=")[2]
            kwargs = []
            for i in range(args.calls):
                workload = make_workload(f"t{i}", run_id=f"cost-{name[:8]}")
                identity = TryIdentity.from_key(workload.ti.key)
                kwargs.append(builder.build(identity, workload_command(workload.model_dump_json())))
            results[name] = asyncio.run(_measure(url, kwargs, variant))
        finally:
            server.terminate()
            server.wait(timeout=30)
        r = results[name]
        print(
            f"{name:50s} RunTask {r['run_task_ms_per_call']:.3f} ms/call   "
            f"DescribeTasks {r['describe_ms_per_call_of_100']:.2f} ms/call of 100 "
            f"({r['describe_ms_per_task']:.3f} ms/task)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
