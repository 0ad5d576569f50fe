"""``python -m benchmarks.sealed_size``: the RunTask override of the largest realistic workload, plain
and sealed (``workload_kms_key``), against ECS's 8,192 characters; and the CPU one seal costs.

The largest realistic workload: dag_id, task_id and run_id at Airflow's 250-character limit, map index
99999, try 99, a long bundle path, Airflow's default log path (it repeats the three ids) and a workload
token signed RS256 (the longer of Airflow's signatures). The ids come in two kinds: words (as people
name DAGs; compress well) and random characters (the worst case for compression). KMS's wrapped AES-256
data key is 184 bytes (moto's is 96); 256 bytes shows the margin if it were longer.
Figures: docs/benchmarks.md, "Sealed workloads: size".
"""

from __future__ import annotations

import base64
import os
import random
import string
import timeit
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.workloads import build_workload
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.core.envelope import DataKey, seal, try_context
from ecs_executor.request.ecs_rules import MAX_OVERRIDES_CHARS, overrides_size
from ecs_executor.request.run_task import (
    RunTaskBuilder,
    TryIdentity,
    new_launch_id,
    sealed_command,
    workload_command,
)

ID_LEN = 250  # Airflow's limit for dag_id, task_id and run_id
KMS_WRAPPED_BYTES = 184
_WORDS = ("extract", "load", "customer", "orders", "daily", "warehouse", "transform", "partition", "report")


@dataclass(frozen=True)
class Case:
    label: str
    workload_json: str
    identity: TryIdentity


@dataclass(frozen=True)
class Sizes:
    label: str
    wrapped_bytes: int
    workload: int
    plain: int  # the whole overrides JSON, as ECS counts it
    sealed: int
    envelope: int


def _token(rng: random.Random) -> str:
    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(rng.randbytes(n)).rstrip(b"=").decode()

    return f"{b64(27)}.{b64(300)}.{b64(256)}"  # header, claims, RS256 (2048-bit) signature


def _random_id(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "_-") for _ in range(n))


def _words_id(rng: random.Random, n: int) -> str:
    text = ""
    while len(text) < n:
        text += rng.choice(_WORDS) + "_"
    return text[:n]


def largest(label: str, make_id: Callable[[random.Random, int], str], seed: int = 25) -> Case:
    rng = random.Random(seed)
    dag, task, run = (make_id(rng, ID_LEN) for _ in range(3))
    log_path = f"dag_id={dag}/run_id={run}/task_id={task}/map_index=99999/attempt=99.log"
    bundle_path = "/".join(make_id(rng, 60) for _ in range(4)) + ".py"
    workload = build_workload(
        task,
        dag_id=dag,
        run_id=run,
        token=_token(rng),
        dag_rel_path=bundle_path,
        log_path=log_path,
        try_number=99,
        map_index=99999,
    )
    return Case(label, workload.model_dump_json(), TryIdentity(dag, task, run, 99, 99999))


def typical() -> Case:
    run = "scheduled__2026-12-03T00:00:00+00:00"
    workload = build_workload(
        "load_orders",
        dag_id="daily_orders",
        run_id=run,
        token=_token(random.Random(1)),
        dag_rel_path="orders/daily_orders.py",
        log_path=f"dag_id=daily_orders/run_id={run}/task_id=load_orders/attempt=1.log",
    )
    return Case("typical ids", workload.model_dump_json(), TryIdentity("daily_orders", "load_orders", run, 1))


def cases() -> list[Case]:
    return [typical(), largest("250-char ids, words", _words_id), largest("250-char ids, random", _random_id)]


def builder() -> RunTaskBuilder:
    settings = settings_from_mapping(
        {
            "cluster": "c",
            "container_name": "airflow-worker",
            "region_name": "eu-west-1",
            "task_definition": "td",
        }
    )
    versions = {"ECS_EXECUTOR_SCHEDULER_PYTHON": "3.12.11", "ECS_EXECUTOR_SCHEDULER_AIRFLOW": "3.3.2"}
    return RunTaskBuilder(settings, extra_env=versions)


def measure(case: Case, wrapped_bytes: int = KMS_WRAPPED_BYTES) -> Sizes:
    """Both requests as the executor builds them (``build`` refuses oversized ones: they fit)."""
    runs = builder()
    key = DataKey(os.urandom(32), os.urandom(wrapped_bytes), "arn:aws:kms:eu-west-1:111122223333:key/k", 0.0)
    envelope = seal(case.workload_json, key, try_context(case.identity.to_dict()))
    plain = runs.build(case.identity, workload_command(case.workload_json), launch_id=new_launch_id())
    sealed = runs.build(case.identity, sealed_command(envelope), launch_id=new_launch_id())
    return Sizes(
        case.label,
        wrapped_bytes,
        len(case.workload_json),
        overrides_size(plain["overrides"]),
        overrides_size(sealed["overrides"]),
        len(envelope),
    )


def seal_microseconds(case: Case, number: int = 2000) -> float:
    key = DataKey(os.urandom(32), os.urandom(KMS_WRAPPED_BYTES), "arn", 0.0)
    context = try_context(case.identity.to_dict())
    return timeit.timeit(lambda: seal(case.workload_json, key, context), number=number) / number * 1e6


def main() -> None:
    limit = f"{MAX_OVERRIDES_CHARS:,}"
    print(f"| workload | wrapped key | workload JSON | overrides plain | overrides sealed | of {limit} |")
    print("|---|---|---|---|---|---|")
    rows = [measure(c) for c in cases()] + [measure(cases()[-1], 256)]
    for r in rows:
        print(
            f"| {r.label} | {r.wrapped_bytes} B | {r.workload:,} | {r.plain:,} | {r.sealed:,} | "
            f"{r.sealed / MAX_OVERRIDES_CHARS:.0%} |"
        )
    for c in (cases()[0], cases()[-1]):
        print(f"seal(), {c.label}: {seal_microseconds(c):.0f} µs per workload")


if __name__ == "__main__":
    main()
