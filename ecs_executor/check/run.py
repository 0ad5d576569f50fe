"""``airflow ecs-executor check`` / ``python -m ecs_executor.check``: is this deployment able to run tasks?

Loads the ``[aws_ecs_executor]`` configuration exactly as the scheduler does, then asks AWS whether what it
names exists and fits together: credentials, cluster, task definition, network, capacity providers. Every
finding is one table row with a fix, so an operator can go from a fresh configuration to a working one
without starting the scheduler. Checks are independent: one failure does not hide the others.

Read-only: Describe*, Get* and List* calls, plus, in events mode, one receive and one delete probe that
change nothing (check/event_wiring.py), and with workload encryption one GenerateDataKey with DryRun
(check/workload_key.py). ``collect_checks`` is the testable core (no printing, no
argparse); rows for the network and launch target live in check/network.py, the output in check/report.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from ecs_executor.aws.clients import AwsClients, describe_error
from ecs_executor.check.derived import check_derived_definitions
from ecs_executor.check.event_wiring import check_events
from ecs_executor.check.network import (
    check_capacity_providers,
    check_launch_target,
    check_network,
    network_mode_results,
)
from ecs_executor.check.rows import (
    CheckClients,
    CheckResult,
    Probe,
    create_cluster_fix,
    first_cluster,
    warn,
)
from ecs_executor.check.workload_key import check_workload_key
from ecs_executor.config.settings import EcsExecutorSettings
from ecs_executor.request.ecs_rules import signing_key_variables
from ecs_executor.request.log_location import awslogs_location, awslogs_problem


def _check_credentials(p: Probe) -> list[CheckResult]:
    via = p.clients.describe_connection()
    try:
        identity = p.clients.client("sts").get_caller_identity()
    except Exception as exc:
        return [
            CheckResult(
                "credentials",
                False,
                f"STS GetCallerIdentity failed via {via}: {describe_error(exc)}",
                f"Check the Airflow connection named by {p.opt('conn_id')}: its credentials, role_arn or "
                "region. Without that connection the default chain is used: AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the ECS task role / EC2 instance profile of this "
                "machine. If only STS is unreachable (private subnets), add an STS VPC endpoint.",
            )
        ]
    return [
        CheckResult(
            "credentials",
            True,
            f"account {identity.get('Account')}, {identity.get('Arn')} (via {via})",
        )
    ]


def _check_cluster(p: Probe) -> list[CheckResult]:
    s = p.settings
    try:
        cluster = p.cluster()
    except Exception as exc:
        return [
            CheckResult(
                "cluster",
                False,
                f"DescribeClusters {s.cluster!r} failed: {describe_error(exc)}",
                "The executor's identity needs ecs:DescribeClusters, ecs:RunTask, ecs:DescribeTasks, "
                "ecs:StopTask and iam:PassRole on the task and execution roles.",
            )
        ]
    if cluster is None:
        return [
            CheckResult(
                "cluster",
                False,
                f"cluster {s.cluster!r} does not exist in {s.region_name}",
                create_cluster_fix(p),
            )
        ]
    status = cluster.get("status")
    if status != "ACTIVE":
        return [
            CheckResult(
                "cluster", False, f"cluster {s.cluster!r} is {status}, not ACTIVE", create_cluster_fix(p)
            )
        ]
    results = [
        CheckResult(
            "cluster",
            True,
            f"{cluster.get('clusterName') or s.cluster} is ACTIVE ({cluster.get('runningTasksCount', 0)} "
            "running tasks)",
        )
    ]
    if p.base.get("launchType") == "EC2" and not cluster.get("registeredContainerInstancesCount"):
        results.append(
            warn(
                "container instances",
                f"launch type EC2 but cluster {s.cluster!r} has no registered container instances",
                "Register EC2 container instances (an Auto Scaling group with the ECS agent), or use a "
                f"capacity provider via {p.opt('capacity_provider_strategy')}, or launch_type FARGATE.",
            )
        )
    return results


def _task_definition_fix(p: Probe) -> str:
    return (
        f"Register it (aws ecs register-task-definition) or set {p.opt('task_definition')} to an existing "
        "family, family:revision or ARN (or fix taskDefinition in run_task_kwargs)."
    )


def _check_task_definition(p: Probe, *, logs: bool = True) -> list[CheckResult]:
    """Task definition rows; ``logs=False`` leaves out the one row that calls CloudWatch Logs."""
    s = p.settings
    name = p.base["taskDefinition"]
    try:
        td = p.task_definition()
    except Exception as exc:
        return [
            CheckResult(
                "task definition",
                False,
                f"{name!r} could not be described: {describe_error(exc)}",
                _task_definition_fix(p),
            )
        ]
    if td.get("status") not in (None, "ACTIVE"):
        return [
            CheckResult(
                "task definition",
                False,
                f"{td.get('taskDefinitionArn')} is {td.get('status')}",
                _task_definition_fix(p),
            )
        ]
    network_mode = td.get("networkMode") or "bridge"
    revision = f"{td.get('family')}:{td.get('revision')}" if td.get("family") else td.get("taskDefinitionArn")
    results = [CheckResult("task definition", True, f"{revision} (network mode {network_mode})")]

    containers = td.get("containerDefinitions") or []
    container = next((c for c in containers if c.get("name") == s.container_name), None)
    if container is None:
        found = ", ".join(repr(c.get("name")) for c in containers) or "none"
        results.append(
            CheckResult(
                "container",
                False,
                f"no container named {s.container_name!r} in {revision}",
                f"Set {p.opt('container_name')} to one of the containers found: {found}.",
            )
        )
    else:
        results.append(CheckResult("container", True, f"{s.container_name!r} ({container.get('image')})"))
        results.append(_memory_result(p, td, container))
        results.extend(_signing_key_results(p, td))
        results.extend(_execution_api_results(container))
        if logs:
            results.append(_logging_result(p, td))
    results.extend(network_mode_results(p, td, network_mode))
    return results


def _signing_key_results(p: Probe, td: dict[str, Any]) -> list[CheckResult]:
    """A FAIL row for each container given Airflow's signing key; no row when none is."""
    overrides = p.base.get("overrides") or {}
    containers = list(td.get("containerDefinitions") or []) + list(overrides.get("containerOverrides") or [])
    rows = []
    for container in containers:
        names = signing_key_variables(container)
        if names:
            rows.append(
                CheckResult(
                    "signing key",
                    False,
                    f"container {container.get('name')!r} gets {', '.join(names)}: every task could read "
                    "Airflow's signing key and forge Execution API and REST API tokens",
                    "Remove it from the task definition (and run_task_kwargs) and the execution role's "
                    "access to its secret: workers use only their workload's token (docs/worker-image.md).",
                )
            )
    return rows


def _execution_api_results(container: dict[str, Any]) -> list[CheckResult]:
    """A WARN row when the container reaches the Execution API over plain http:// beyond this host."""
    env = {str(e.get("name")): str(e.get("value", "")) for e in container.get("environment") or []}
    url = env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "")
    host = urlsplit(url).hostname or ""
    if not url.lower().startswith("http://") or host in ("localhost", "127.0.0.1", "::1"):
        return []
    return [
        warn(
            "execution api",
            f"the container reaches the Execution API at {url}: every task's token crosses the network "
            "unencrypted",
            "Serve the API over TLS and use an https:// URL (docs/setup-guide.md).",
        )
    ]


def _memory_result(p: Probe, td: dict[str, Any], container: dict[str, Any]) -> CheckResult:
    overrides = p.base.get("overrides") or {}
    task_memory = td.get("memory") or overrides.get("memory")
    task_cpu = td.get("cpu") or overrides.get("cpu")
    container_memory = container.get("memory") or container.get("memoryReservation")
    if p.settings.is_fargate and not (task_memory and task_cpu):
        return CheckResult(
            "memory",
            False,
            f"Fargate needs task-level cpu and memory; the task definition sets cpu={task_cpu}, "
            f"memory={task_memory}",
            "Set cpu and memory on the task definition (e.g. 1024 / 2048), or overrides.cpu/memory in "
            f"{p.opt('run_task_kwargs')}.",
        )
    if not (task_memory or container_memory):
        return CheckResult(
            "memory",
            False,
            f"neither the task nor container {p.settings.container_name!r} sets memory",
            "Set task-level memory, or memory/memoryReservation on the container.",
        )
    parts = []
    if task_memory:
        parts.append(f"task memory {task_memory} MiB")
    if task_cpu:
        parts.append(f"task cpu {task_cpu}")
    if container_memory:
        parts.append(f"container memory {container_memory} MiB")
    return CheckResult("memory", True, ", ".join(parts))


def _logging_result(p: Probe, td: dict[str, Any]) -> CheckResult:
    name = p.settings.container_name
    problem = awslogs_problem(td, name)
    if problem is not None:
        return warn(
            "logs",
            problem,
            "Use logDriver awslogs with awslogs-group, awslogs-region and awslogs-stream-prefix so the "
            "Airflow UI can show the container's output while the task runs (and for crash reasons).",
        )
    location = awslogs_location(td, name, "<task id>")
    assert location is not None
    region = location.region or p.settings.region_name
    detail = f"awslogs: {location.group}/{location.stream} in {region}"
    container = next(c for c in td.get("containerDefinitions") or [] if c.get("name") == name)
    create_group = str(container["logConfiguration"]["options"].get("awslogs-create-group", "")).lower()
    if create_group == "true":
        return CheckResult("logs", True, detail + " (group created on demand)")
    try:
        answer = p.clients.client("logs", region).describe_log_groups(logGroupNamePrefix=location.group)
    except Exception as exc:
        return warn(
            "logs",
            f"{detail}; could not verify the log group exists: {describe_error(exc)}",
            "Grant logs:DescribeLogGroups to run this check (the executor itself does not need it).",
        )
    if not any(g.get("logGroupName") == location.group for g in answer.get("logGroups") or []):
        return CheckResult(
            "logs",
            False,
            f"log group {location.group!r} does not exist in {region}; containers fail to start with a "
            "missing awslogs group",
            f"Create it (aws logs create-log-group --log-group-name {location.group} --region {region}) or "
            "set awslogs-create-group to true (needs logs:CreateLogGroup on the execution role).",
        )
    return CheckResult("logs", True, detail)


CHECKS: tuple[tuple[str, Callable[[Probe], list[CheckResult]]], ...] = (
    ("credentials", _check_credentials),
    ("cluster", _check_cluster),
    ("launch target", check_launch_target),
    ("task definition", _check_task_definition),
    ("derived definitions", check_derived_definitions),
    ("network", check_network),
    ("capacity providers", check_capacity_providers),
    ("events", check_events),
    ("workload key", check_workload_key),
)


def collect_checks(
    settings: EcsExecutorSettings, *, team_name: str | None = None, clients: CheckClients | None = None
) -> list[CheckResult]:
    """Run every AWS check for valid ``settings``; one or more rows per check, never raises."""
    probe = Probe(settings, clients or AwsClients.for_settings(settings), team_name)
    results: list[CheckResult] = []
    for name, check in CHECKS:
        try:
            results.extend(check(probe))
        except Exception as exc:  # a bug in one check must not hide the others
            results.append(CheckResult(name, False, f"the check itself failed: {describe_error(exc)}"))
    return results


EcsCall = Callable[..., Awaitable[Any]]
# The rows whose failure means no task can launch, and that need only ECS Describe calls.
STARTUP_ROWS = frozenset({"cluster", "task definition", "container"})


class _NoClients:
    """The start-up check's probe gets its answers seeded; any other AWS call would be a bug."""

    def client(self, service: str, region_name: str | None = None) -> Any:
        raise RuntimeError(f"the start-up check makes no {service} calls")

    def describe_connection(self) -> str:
        return "the engine's ECS client"


async def startup_problems(
    call: EcsCall, settings: EcsExecutorSettings, *, team_name: str | None = None
) -> list[str]:
    """The scheduler's start-up check: cluster ACTIVE, task definition found and holding our container.

    ``call(method, **kwargs)`` is the engine's own paced ECS call (so the check runs on the engine's
    client and loop). The rows are ``collect_checks``' own, so both name the option and the fix the same
    way; ``[]`` when nothing would stop every launch.
    """
    probe = Probe(settings, _NoClients(), team_name)
    try:
        cluster_answer = await call("describe_clusters", clusters=[settings.cluster])
        probe.seed("cluster", lambda: first_cluster(cluster_answer))
    except Exception as exc:
        probe.seed("cluster", _raiser(exc))
    try:
        td_answer = await call("describe_task_definition", taskDefinition=probe.base["taskDefinition"])
        probe.seed("task_definition", lambda: dict(td_answer["taskDefinition"]))
    except Exception as exc:
        probe.seed("task_definition", _raiser(exc))
    rows = _check_cluster(probe) + _check_task_definition(probe, logs=False)
    return [_problem_text(row) for row in rows if row.name in STARTUP_ROWS and not row.ok]


def _raiser(exc: BaseException) -> Callable[[], Any]:
    def again() -> Any:
        raise exc

    return again


def _problem_text(row: CheckResult) -> str:
    return f"{row.name}: {row.detail}" + (f". {row.fix}" if row.fix else "")
