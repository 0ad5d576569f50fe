"""Check rows for where tasks run: network (subnets, security groups, network mode), the launch target
that applies, and capacity providers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecs_executor.aws.clients import describe_error, error_code
from ecs_executor.check.rows import ACCESS_DENIED_CODES, CheckResult, Probe, create_cluster_fix, skip, warn
from ecs_executor.request.ecs_rules import FARGATE_CAPACITY_PROVIDERS


def network_mode_results(p: Probe, td: dict[str, Any], network_mode: str) -> list[CheckResult]:
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
                warn(
                    "fargate compatibility",
                    f"the task definition is compatible with {', '.join(compatible) or 'nothing'}, "
                    "not FARGATE; ECS may reject RunTask with 'Task definition does not support "
                    "launch_type FARGATE'",
                    'Register it with "requiresCompatibilities": ["FARGATE"].',
                )
            )
    return results


def check_network(p: Probe) -> list[CheckResult]:
    subnets = list(p.awsvpc.get("subnets") or [])
    groups = list(p.awsvpc.get("securityGroups") or [])
    if not subnets and not groups:
        return [skip("network", "no subnets or security groups configured (not needed unless awsvpc)")]
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
                results.append(skip(kind, "none configured: ECS uses the VPC's default security group"))
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
        return warn(
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


def check_launch_target(p: Probe) -> list[CheckResult]:
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
            warn(
                name,
                "no launch type or capacity provider strategy is configured, and the cluster's default "
                f"strategy could not be read: {describe_error(exc)}",
            )
        ]
    if cluster is None:
        return [skip(name, f"cluster {p.settings.cluster!r} does not exist")]
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


def check_capacity_providers(p: Probe) -> list[CheckResult]:
    strategy = p.base.get("capacityProviderStrategy") or []
    wanted = [str(item.get("capacityProvider")) for item in strategy]
    if not wanted:
        return [skip("capacity providers", f"none configured (launch type {p.base.get('launchType')})")]
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
                create_cluster_fix(p),
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
