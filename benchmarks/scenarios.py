"""The benchmark scenarios: endpoint knobs, executor options and phases, for the full and quick runs.

Both executors read the same ``[aws_ecs_executor]`` options (cluster, container_name, region_name,
task_definition, launch_type, subnets, security_groups, conn_id); options only one of them knows are
ignored by the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLUSTER = "bench"
CONTAINER = "base"
EC2_FAMILY = "bench"
FARGATE_FAMILY = "bench-fargate"

# Real ECS limits (and the endpoint's defaults with throttle=True).
RUN_TASK_BURST, RUN_TASK_RATE = 100, 40.0
FARGATE_BURST, FARGATE_RATE = 100, 20.0
DESCRIBE_BURST, DESCRIBE_RATE = 100, 20.0

TASK_DEFINITIONS = [
    {
        "family": EC2_FAMILY,
        "containerDefinitions": [{"name": CONTAINER, "image": "apache/airflow:3.3.2", "memory": 512}],
    },
    {
        "family": FARGATE_FAMILY,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": CONTAINER, "image": "apache/airflow:3.3.2"}],
    },
]

EC2_OPTIONS = {
    "cluster": CLUSTER,
    "container_name": CONTAINER,
    "task_definition": EC2_FAMILY,
    "launch_type": "EC2",
}
FARGATE_OPTIONS = {
    **EC2_OPTIONS,
    "task_definition": FARGATE_FAMILY,
    "launch_type": "FARGATE",
    "subnets": "subnet-0bench0001",
    "security_groups": "sg-0bench0001",
}
# Tasks never end by themselves during a run: they end only when the driver stops them (lag samples).
# deprovisioning_seconds=0: the task is STOPPED the moment its container exits, so "ECS stop" is one
# instant for both executors (the provider reads DEPROVISIONING+exit code as done, we wait for STOPPED).
BASE_KNOBS: dict[str, Any] = {"pretend_seconds": 3600, "deprovisioning_seconds": 0, "throttle": True}


# ``encrypted``: ours with workload_kms_key set (every workload sealed; moto's KMS, benchmarks/kms.py), run
# beside plain ``ours`` where the launch path is measured.
WITH_ENCRYPTED = ("ours", "encrypted", "provider")


@dataclass
class Scenario:
    name: str
    title: str
    n: int
    knobs: dict[str, Any]
    options: dict[str, Any]
    # The throttle bound of the launch phase: burst at t=0, then the refill rate.
    bound_burst: float
    bound_rate: float
    extra_pending: int = 0
    track_seconds: float = 0.0
    lag_samples: int = 0
    track_latency_ms: float | None = None
    track_knobs: dict[str, Any] = field(default_factory=dict)  # endpoint knobs set once launches are done
    sqs_url: str | None = None  # events mode: the SQS server the endpoint publishes to
    ours_options: dict[str, Any] = field(default_factory=dict)
    cap: dict[str, float] = field(default_factory=lambda: {"ours": 300.0, "provider": 600.0})
    executors: tuple[str, ...] = ("ours", "provider")
    tracemalloc: bool = False
    notice_burst: bool = False  # at the tracking window's start, a RUNNING notice for every tracked task
    plot: bool = False
    note: str = ""

    def bound_seconds(self, n: int | None = None) -> float:
        n = self.n if n is None else n
        return max(0.0, (n - self.bound_burst) / self.bound_rate)


def scenarios(quick: bool) -> list[Scenario]:
    """Full: the figures in docs/benchmarks.md (about 20 minutes). Quick: same shapes, smaller N."""
    q = quick
    # latency100 and memory run for ours only in --quick.
    ours_only_if_quick = ("ours",) if q else ("ours", "provider")
    cap_provider = 45.0 if q else 600.0
    cap_ours = 60.0 if q else 300.0
    caps = {"ours": cap_ours, "provider": cap_provider}
    # Setup of the many-tracked scenarios: both sides grant a 10,000-token RunTask burst (refill stays
    # 40/s) and the endpoint answers at once, so the tracked tasks exist within seconds for both
    # executors; then 50 ms latency while they are tracked.
    many_tracked: dict[str, Any] = {
        "knobs": {
            **BASE_KNOBS,
            "latency_ms": 0,
            "throttle_overrides": {"cluster_modify": [10_000, RUN_TASK_RATE]},
        },
        "track_latency_ms": 50,
        "options": EC2_OPTIONS,
        "ours_options": {"run_task_burst": 10_000},
        "bound_burst": 10_000,
        "bound_rate": RUN_TASK_RATE,
    }
    return [
        Scenario(
            name="ec2",
            title="EC2 limits, 50 ms latency",
            n=200 if q else 1000,
            knobs={**BASE_KNOBS, "latency_ms": 50},
            options=EC2_OPTIONS,
            bound_burst=RUN_TASK_BURST,
            bound_rate=RUN_TASK_RATE,
            track_seconds=6 if q else 20,
            lag_samples=5 if q else 20,
            cap=dict(caps),
            executors=WITH_ENCRYPTED,
            plot=True,
            note="RunTask bucket 100 + 40/s, DescribeTasks 100 + 20/s",
        ),
        Scenario(
            name="fargate",
            title="Fargate limits, 50 ms latency",
            n=200 if q else 1000,
            knobs={**BASE_KNOBS, "latency_ms": 50, "fargate": True},
            options=FARGATE_OPTIONS,
            bound_burst=FARGATE_BURST,
            bound_rate=FARGATE_RATE,
            track_seconds=0 if q else 10,
            lag_samples=0 if q else 10,
            cap=dict(caps),
            executors=WITH_ENCRYPTED,
            plot=True,
            note="plus the Fargate launch bucket 100 + 20/s",
        ),
        Scenario(
            name="track10k",
            title=f"{'2,000' if q else '10,000'} tracked + {'200' if q else '1,000'} pending",
            n=2000 if q else 10_000,
            extra_pending=200 if q else 1000,
            # Then the extra tasks wait on the real 40/s refill while everything is tracked.
            **many_tracked,
            track_seconds=8 if q else 30,
            lag_samples=5 if q else 20,
            cap={"ours": cap_ours, "provider": 60.0 if q else 480.0},
            note="RunTask bucket 10,000 + 40/s (setup), DescribeTasks 100 + 20/s",
        ),
        Scenario(
            name="oversub",
            title="10x oversubscribed RunTask limit",
            n=60 if q else 300,
            # The account's RunTask budget is a tenth of what the executors are configured for (as if
            # other clients used the rest): they ask at 40/s, ECS grants 10 + 4/s.
            knobs={
                **BASE_KNOBS,
                "latency_ms": 50,
                "throttle_overrides": {"cluster_modify": [RUN_TASK_BURST / 10, RUN_TASK_RATE / 10]},
            },
            options=EC2_OPTIONS,
            bound_burst=RUN_TASK_BURST / 10,
            bound_rate=RUN_TASK_RATE / 10,
            cap={"ours": 90.0 if q else 300.0, "provider": 45.0 if q else 300.0},
            plot=True,
            note="ECS grants RunTask 10 + 4/s; both executors are set up for 100 + 40/s",
        ),
        Scenario(
            name="latency100",
            title="100 ms added to every call",
            n=200 if q else 1000,
            knobs={**BASE_KNOBS, "latency_ms": 100},
            options=EC2_OPTIONS,
            bound_burst=RUN_TASK_BURST,
            bound_rate=RUN_TASK_RATE,
            track_seconds=0 if q else 10,
            lag_samples=0 if q else 10,
            cap={"ours": cap_ours, "provider": 200.0},
            executors=ours_only_if_quick,
            note="EC2 limits",
        ),
        Scenario(
            name="memory",
            title=f"live heap with {'2,000' if q else '10,000'} tracked (tracemalloc)",
            n=2000 if q else 10_000,
            **many_tracked,
            track_seconds=4 if q else 10,
            cap={"ours": cap_ours, "provider": 60.0 if q else 300.0},
            executors=ours_only_if_quick,
            tracemalloc=True,
            note="as track10k without the pending tasks; tracemalloc on: its CPU figures do not count",
        ),
    ]
