"""``airflow ecs-executor check`` / ``python -m ecs_executor.check``: is this deployment able to run tasks?

Loads the ``[aws_ecs_executor]`` configuration exactly as the scheduler does, then asks AWS whether what it
names exists and fits together: credentials, cluster, task definition, network, capacity providers. Every
finding is one table row with a fix, so an operator can go from a fresh configuration to a working one
without starting the scheduler. Checks are independent: one failure does not hide the others.

Read-only: only Describe*/Get* calls. ``collect_checks`` is the testable core (no printing, no argparse).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from ecs_executor.aws import AwsClients, describe_error, error_code
from ecs_executor.cloudwatch import ClientSource, awslogs_location, awslogs_problem
from ecs_executor.config import (
    FARGATE_CAPACITY_PROVIDERS,
    SECTION,
    ConfLike,
    EcsExecutorConfigError,
    EcsExecutorSettings,
    env_var_name,
)

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)


class CheckClients(ClientSource, Protocol):
    """AwsClients, or a test double: clients plus a printable description of the connection used."""

    def describe_connection(self) -> str: ...


@dataclass(frozen=True)
class CheckResult:
    """One table row. ``ok`` decides the exit code; ``status`` (PASS/FAIL/WARN/SKIP) is what is shown.

    WARN and SKIP rows are ``ok``: they describe something that may work, or was not applicable.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    status: str = field(default="")

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", PASS if self.ok else FAIL)


def _warn(name: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, True, detail, fix, WARN)


def _skip(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail, "", SKIP)


class _Probe:
    """Shared state of one run: clients, settings and memoised Describe answers (or their errors)."""

    def __init__(self, settings: EcsExecutorSettings, clients: CheckClients, team_name: str | None):
        self.settings = settings
        self.clients = clients
        self.team_name = team_name
        self.base = settings.base_run_task_kwargs()
        self._memo: dict[str, Any] = {}

    def opt(self, option: str) -> str:
        return f"{option} ({env_var_name(option, self.team_name)})"

    def seed(self, key: str, call: Callable[[], Any]) -> None:
        """Store an answer fetched elsewhere (the engine's own async ECS calls) as if ``_once`` had."""
        try:
            self._memo[key] = (True, call())
        except Exception as exc:
            self._memo[key] = (False, exc)

    def _once(self, key: str, call: Callable[[], Any]) -> Any:
        """Call once; re-raise the same error to every check that needs the answer."""
        if key not in self._memo:
            try:
                self._memo[key] = (True, call())
            except Exception as exc:
                self._memo[key] = (False, exc)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def cluster(self) -> dict[str, Any] | None:
        """The cluster description, or None when ECS reports it missing."""

        def call() -> dict[str, Any] | None:
            return _first_cluster(
                self.clients.client("ecs").describe_clusters(clusters=[self.settings.cluster])
            )

        result: dict[str, Any] | None = self._once("cluster", call)
        return result

    def task_definition(self) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return dict(
                self.clients.client("ecs").describe_task_definition(
                    taskDefinition=self.base["taskDefinition"]
                )["taskDefinition"]
            )

        result: dict[str, Any] = self._once("task_definition", call)
        return result

    @property
    def awsvpc(self) -> dict[str, Any]:
        network = self.base.get("networkConfiguration") or {}
        return dict(network.get("awsvpcConfiguration") or {})


def _first_cluster(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    """DescribeClusters answer -> the cluster, or None when ECS reports it missing."""
    clusters = answer.get("clusters") or []
    return dict(clusters[0]) if clusters else None


# ---- individual checks ----------------------------------------------------------------------------


def _check_credentials(p: _Probe) -> list[CheckResult]:
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


def _create_cluster_fix(p: _Probe) -> str:
    name = p.settings.cluster.rsplit("/", 1)[-1]
    return (
        f"Create it (aws ecs create-cluster --cluster-name {name} --region {p.settings.region_name}) "
        f"or set {p.opt('cluster')} to an existing cluster in {p.settings.region_name}."
    )


def _check_cluster(p: _Probe) -> list[CheckResult]:
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
                _create_cluster_fix(p),
            )
        ]
    status = cluster.get("status")
    if status != "ACTIVE":
        return [
            CheckResult(
                "cluster", False, f"cluster {s.cluster!r} is {status}, not ACTIVE", _create_cluster_fix(p)
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
            _warn(
                "container instances",
                f"launch type EC2 but cluster {s.cluster!r} has no registered container instances",
                "Register EC2 container instances (an Auto Scaling group with the ECS agent), or use a "
                f"capacity provider via {p.opt('capacity_provider_strategy')}, or launch_type FARGATE.",
            )
        )
    return results


def _task_definition_fix(p: _Probe) -> str:
    return (
        f"Register it (aws ecs register-task-definition) or set {p.opt('task_definition')} to an existing "
        "family, family:revision or ARN (or fix taskDefinition in run_task_kwargs)."
    )


def _check_task_definition(p: _Probe, *, logs: bool = True) -> list[CheckResult]:
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
        if logs:
            results.append(_logging_result(p, td))
    results.extend(_network_mode_results(p, td, network_mode))
    return results


def _memory_result(p: _Probe, td: dict[str, Any], container: dict[str, Any]) -> CheckResult:
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


def _logging_result(p: _Probe, td: dict[str, Any]) -> CheckResult:
    name = p.settings.container_name
    problem = awslogs_problem(td, name)
    if problem is not None:
        return _warn(
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
        return _warn(
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


def _network_mode_results(p: _Probe, td: dict[str, Any], network_mode: str) -> list[CheckResult]:
    results: list[CheckResult] = []
    fargate = p.settings.is_fargate
    subnets = p.awsvpc.get("subnets") or []
    if fargate and network_mode != "awsvpc":
        results.append(
            CheckResult(
                "network mode",
                False,
                f"Fargate tasks need network mode awsvpc; the task definition uses {network_mode}",
                "Register the task definition with networkMode awsvpc, or use launch_type EC2.",
            )
        )
    elif network_mode == "awsvpc" and not subnets:
        # RunTask rejects awsvpc tasks without a network configuration, so this fails every launch.
        results.append(
            CheckResult(
                "network mode",
                False,
                "the task definition uses awsvpc but no subnets are configured",
                f"Set {p.opt('subnets')} (and {p.opt('security_groups')}); awsvpc tasks need them.",
            )
        )
    else:
        results.append(CheckResult("network mode", True, network_mode))
    if fargate:
        compatible = td.get("compatibilities") or td.get("requiresCompatibilities") or []
        if "FARGATE" not in compatible:
            results.append(
                _warn(
                    "fargate compatibility",
                    f"the task definition is compatible with {', '.join(compatible) or 'nothing'}, "
                    "not FARGATE; ECS may reject RunTask with 'Task definition does not support "
                    "launch_type FARGATE'",
                    'Register it with "requiresCompatibilities": ["FARGATE"].',
                )
            )
    return results


def _check_network(p: _Probe) -> list[CheckResult]:
    subnets = list(p.awsvpc.get("subnets") or [])
    groups = list(p.awsvpc.get("securityGroups") or [])
    if not subnets and not groups:
        return [_skip("network", "no subnets or security groups configured (not needed unless awsvpc)")]
    ec2 = None
    results: list[CheckResult] = []
    vpcs: dict[str, set[str]] = {}
    for kind, ids, option, describe, key, id_key, filter_name in (
        ("subnets", subnets, "subnets", "describe_subnets", "Subnets", "SubnetId", "subnet-id"),
        (
            "security groups",
            groups,
            "security_groups",
            "describe_security_groups",
            "SecurityGroups",
            "GroupId",
            "group-id",
        ),
    ):
        if not ids:
            if kind == "security groups":
                results.append(_skip(kind, "none configured: ECS uses the VPC's default security group"))
            continue
        try:
            ec2 = ec2 or p.clients.client("ec2")
            # A filter (not SubnetIds=/GroupIds=) lists every match, so all missing IDs can be named.
            answer = getattr(ec2, describe)(Filters=[{"Name": filter_name, "Values": ids}])
        except Exception as exc:
            results.append(_network_error(kind, exc))
            continue
        found = {item[id_key]: item.get("VpcId", "") for item in answer.get(key) or []}
        missing = [i for i in ids if i not in found]
        if missing:
            results.append(
                CheckResult(
                    kind,
                    False,
                    f"not found in {p.settings.region_name}: {', '.join(missing)}",
                    f"Remove or replace {', '.join(missing)} in {p.opt(option)} (IDs are per Region and "
                    "account).",
                )
            )
        else:
            vpcs[kind] = set(found.values())
            results.append(CheckResult(kind, True, ", ".join(f"{i} ({found[i]})" for i in ids)))
    all_vpcs = set().union(*vpcs.values()) if vpcs else set()
    if len(vpcs) == 2 and len(all_vpcs) > 1:
        results.append(
            CheckResult(
                "network vpc",
                False,
                f"subnets and security groups span several VPCs: {', '.join(sorted(all_vpcs))}",
                f"Use subnets and security groups of one VPC ({p.opt('subnets')}, "
                f"{p.opt('security_groups')}).",
            )
        )
    return results


def _network_error(kind: str, exc: Exception) -> CheckResult:
    if error_code(exc)[0] in ACCESS_DENIED_CODES:
        return _warn(
            kind,
            f"could not verify: {describe_error(exc)}",
            "Grant ec2:DescribeSubnets and ec2:DescribeSecurityGroups to run this check (the executor "
            "itself does not need them).",
        )
    return CheckResult(kind, False, f"could not describe: {describe_error(exc)}", "")


def _strategy_text(strategy: Sequence[Mapping[str, Any]]) -> str:
    """``FARGATE_SPOT (weight 3), FARGATE (base 1, weight 1)``."""
    items = []
    for item in strategy:
        parts = [f"base {item['base']}"] if item.get("base") else []
        parts.append(f"weight {item.get('weight', 0)}")
        items.append(f"{item.get('capacityProvider')} ({', '.join(parts)})")
    return ", ".join(items)


def _check_launch_target(p: _Probe) -> list[CheckResult]:
    """Where RunTask will place tasks: the configured launch type or strategy, else the cluster's default.

    With neither ``launchType`` nor ``capacityProviderStrategy``, ECS uses the cluster's
    ``defaultCapacityProviderStrategy``; it is easy to forget what that is, so the row shows it.
    """
    name = "launch target"
    if p.base.get("launchType"):
        return [CheckResult(name, True, f"launch type {p.base['launchType']} (configured)")]
    strategy = p.base.get("capacityProviderStrategy") or []
    if strategy:
        return [
            CheckResult(name, True, f"capacity provider strategy {_strategy_text(strategy)} (configured)")
        ]
    try:
        cluster = p.cluster()
    except Exception as exc:
        return [
            _warn(
                name,
                "no launch type or capacity provider strategy is configured, and the cluster's default "
                f"strategy could not be read: {describe_error(exc)}",
            )
        ]
    if cluster is None:
        return [_skip(name, f"cluster {p.settings.cluster!r} does not exist")]
    default = cluster.get("defaultCapacityProviderStrategy") or []
    if default:
        return [
            CheckResult(
                name, True, f"the cluster's default capacity provider strategy: {_strategy_text(default)}"
            )
        ]
    return [
        CheckResult(name, True, "launch type FARGATE (the cluster has no default capacity provider strategy)")
    ]


def _check_capacity_providers(p: _Probe) -> list[CheckResult]:
    strategy = p.base.get("capacityProviderStrategy") or []
    wanted = [str(item.get("capacityProvider")) for item in strategy]
    if not wanted:
        return [_skip("capacity providers", f"none configured (launch type {p.base.get('launchType')})")]
    try:
        cluster = p.cluster()
    except Exception as exc:
        return [CheckResult("capacity providers", False, f"cluster not described: {describe_error(exc)}")]
    if cluster is None:
        return [
            CheckResult(
                "capacity providers",
                False,
                f"cluster {p.settings.cluster!r} does not exist, so {', '.join(wanted)} cannot be attached",
                _create_cluster_fix(p),
            )
        ]
    attached = list(cluster.get("capacityProviders") or [])
    missing = [w for w in wanted if w not in attached]
    if missing:
        name = p.settings.cluster.rsplit("/", 1)[-1]
        # PutClusterCapacityProviders replaces the list: the fix keeps what is already attached.
        full = " ".join(dict.fromkeys([*attached, *missing]))
        custom = [m for m in missing if m not in FARGATE_CAPACITY_PROVIDERS]
        note = " (create custom providers first with aws ecs create-capacity-provider)" if custom else ""
        return [
            CheckResult(
                "capacity providers",
                False,
                f"not attached to cluster {name!r}: {', '.join(missing)} (attached: "
                f"{', '.join(attached) or 'none'})",
                f"aws ecs put-cluster-capacity-providers --cluster {name} --capacity-providers {full} "
                f"--default-capacity-provider-strategy '[]'{note}, or change "
                f"{p.opt('capacity_provider_strategy')}.",
            )
        ]
    return [CheckResult("capacity providers", True, f"{', '.join(wanted)} attached")]


CHECKS: tuple[tuple[str, Callable[[_Probe], list[CheckResult]]], ...] = (
    ("credentials", _check_credentials),
    ("cluster", _check_cluster),
    ("launch target", _check_launch_target),
    ("task definition", _check_task_definition),
    ("network", _check_network),
    ("capacity providers", _check_capacity_providers),
)


def collect_checks(
    settings: EcsExecutorSettings, *, team_name: str | None = None, clients: CheckClients | None = None
) -> list[CheckResult]:
    """Run every AWS check for valid ``settings``; one or more rows per check, never raises."""
    probe = _Probe(settings, clients or AwsClients.for_settings(settings), team_name)
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
    probe = _Probe(settings, _NoClients(), team_name)
    try:
        cluster_answer = await call("describe_clusters", clusters=[settings.cluster])
        probe.seed("cluster", lambda: _first_cluster(cluster_answer))
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


def config_results(
    conf: ConfLike | None = None, team_name: str | None = None
) -> tuple[EcsExecutorSettings | None, list[CheckResult]]:
    """Load settings as the executor does; one FAIL row per configuration problem."""
    if conf is None:
        from airflow.executors.base_executor import ExecutorConf

        conf = ExecutorConf(team_name)
    section = f"[{team_name}={SECTION}]" if team_name else f"[{SECTION}]"
    try:
        settings = EcsExecutorSettings.from_conf(conf, team_name)
    except EcsExecutorConfigError as exc:
        fix = f"Set the option in {section} of airflow.cfg or through the environment variable named."
        return None, [CheckResult("config", False, problem, fix) for problem in exc.problems]
    except Exception as exc:  # e.g. a failing _cmd / _secret option
        return None, [CheckResult("config", False, f"could not read {section}: {describe_error(exc)}")]
    base = settings.base_run_task_kwargs()
    launch = base.get("launchType") or "capacity provider strategy"
    return settings, [
        CheckResult(
            "config",
            True,
            f"cluster {settings.cluster!r}, task definition {base.get('taskDefinition')!r}, container "
            f"{settings.container_name!r}, {launch}, region {settings.region_name}",
        )
    ]


# ---- output ---------------------------------------------------------------------------------------

HEADERS = ("CHECK", "RESULT", "DETAIL", "HOW TO FIX")


def format_table(results: Sequence[CheckResult], width: int | None = None) -> str:
    """Plain-text table that wraps DETAIL and HOW TO FIX to the terminal width."""
    width = max(80, width or shutil.get_terminal_size((120, 24)).columns)
    name_w = max(len(HEADERS[0]), *(len(r.name) for r in results)) if results else len(HEADERS[0])
    status_w = len(HEADERS[1])
    rest = width - name_w - status_w - 6  # three 2-space gutters
    detail_w = max(20, rest // 2)
    fix_w = max(20, rest - detail_w)

    def wrap(text: str, w: int) -> list[str]:
        return textwrap.wrap(text, w, break_on_hyphens=False) or [""]

    def row(cells: Iterable[str]) -> list[str]:
        name, status, detail, fix = cells
        left, right = wrap(detail, detail_w), wrap(fix, fix_w)
        lines = []
        for i in range(max(len(left), len(right))):
            parts = [
                (name if i == 0 else "").ljust(name_w),
                (status if i == 0 else "").ljust(status_w),
                (left[i] if i < len(left) else "").ljust(detail_w),
                right[i] if i < len(right) else "",
            ]
            lines.append("  ".join(parts).rstrip())
        return lines

    out = row(HEADERS)
    out.append("  ".join(("-" * name_w, "-" * status_w, "-" * detail_w, "-" * fix_w)))
    rows = [row((r.name, r.status, r.detail, r.fix)) for r in results]
    # Once any row wraps, a blank line between rows keeps them apart.
    spaced = any(len(lines) > 1 for lines in rows)
    for i, lines in enumerate(rows):
        if spaced and i:
            out.append("")
        out.extend(lines)
    return "\n".join(out)


def summary_line(results: Sequence[CheckResult]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in (PASS, FAIL, WARN, SKIP)}
    verdict = "all checks passed" if all(r.ok for r in results) else "some checks FAILED"
    shown = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    return f"{verdict} ({shown})"


# INFO chatter ("Found credentials in environment variables") would land in the middle of the table;
# what it says is in the credentials row anyway.
QUIET_LOGGERS = ("botocore", "boto3", "airflow.providers.amazon", "airflow.task.hooks")


@contextlib.contextmanager
def _quiet_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def run_check(conf: ConfLike | None = None, team_name: str | None = None, out: TextIO | None = None) -> int:
    """Print the check table; 0 when nothing failed, 1 otherwise."""
    out = out if out is not None else sys.stdout
    with _quiet_loggers():
        settings, results = config_results(conf, team_name)
        if settings is not None:
            results += collect_checks(settings, team_name=team_name)
    print(f"ECS executor check{f' (team {team_name})' if team_name else ''}", file=out)
    print(format_table(results), file=out)
    print(f"\n{summary_line(results)}", file=out)
    return 0 if all(r.ok for r in results) else 1


# ---- command line ---------------------------------------------------------------------------------


def build_parser(prog: str = "python -m ecs_executor.check") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Check the ECS executor's configuration and AWS resources."
    )
    parser.add_argument("--team", default=None, help="check the configuration of this team (multi-team)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_check(team_name=args.team)


if __name__ == "__main__":
    sys.exit(main())
