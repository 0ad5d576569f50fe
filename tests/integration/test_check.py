"""``ecs-executor check`` against moto (server mode): every row it can print, and its exit code."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError

from ecs_executor.aws.clients import AwsClients
from ecs_executor.check.report import config_results, format_table, main, run_check
from ecs_executor.check.rows import CheckResult
from ecs_executor.check.run import collect_checks, startup_problems
from ecs_executor.cli import cli_commands
from tests.conftest import CONTAINER, REGION, executor_env, executor_settings


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """No wrapping, so assertions can look for whole phrases (wrapping has its own test)."""
    monkeypatch.setenv("COLUMNS", "1000")


@pytest.fixture
def aws(moto_url: str, configure: Any) -> dict[str, Any]:
    """boto3 clients on moto; ``configure`` also points the ``aws_test`` connection at moto."""
    kwargs = {"endpoint_url": moto_url, "region_name": REGION}
    return {name: boto3.client(name, **kwargs) for name in ("ecs", "ec2", "logs")}  # type: ignore[call-overload]


@pytest.fixture
def network(aws: dict[str, Any]) -> dict[str, str]:
    vpc = aws["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = aws["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = aws["ec2"].create_security_group(
        GroupName=f"sg-{uuid.uuid4().hex[:6]}", Description="airflow tasks", VpcId=vpc
    )["GroupId"]
    return {"vpc": vpc, "subnet": subnet, "sg": group}


def _name() -> str:
    return f"chk-{uuid.uuid4().hex[:8]}"


def _register(
    aws: dict[str, Any],
    family: str,
    *,
    container: str = CONTAINER,
    fargate: bool = True,
    log_group: str | None = "create",
    **extra: Any,
) -> str:
    """A Fargate-shaped task definition (awsvpc, task cpu/memory, awslogs). Registering is safe in moto."""
    definition: dict[str, Any] = {"name": container, "image": "apache/airflow:3.3.2", "memory": 512}
    if log_group:
        group = f"/ecs/{family}"
        if log_group == "create":
            aws["logs"].create_log_group(logGroupName=group)
        definition["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {"awslogs-group": group, "awslogs-stream-prefix": "airflow", "awslogs-region": REGION},
        }
    kwargs: dict[str, Any] = {"family": family, "containerDefinitions": [definition]}
    if fargate:
        kwargs.update(networkMode="awsvpc", cpu="512", memory="1024", requiresCompatibilities=["FARGATE"])
    kwargs.update(extra)
    aws["ecs"].register_task_definition(**kwargs)
    return family


def _check() -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(out=out)
    return code, out.getvalue()


def _rows(text: str) -> dict[str, str]:
    """First table line of each check -> its status (later rows of the same name keep the first)."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        for status in ("PASS", "FAIL", "WARN", "SKIP"):
            marker = f"  {status}  "
            if marker in line + "  ":
                name = line.split(marker)[0].strip()
                if name and name != "CHECK":
                    rows.setdefault(name, status)
    return rows


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


# ---- all good ------------------------------------------------------------------------------------


def test_all_pass_fargate_with_network(aws, network, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster)
    configure(cluster, subnets=network["subnet"], security_groups=network["sg"])

    code, text = _check()

    assert code == 0, text
    rows = _rows(text)
    expected = [
        "config",
        "credentials",
        "cluster",
        "task definition",
        "container",
        "memory",
        "logs",
        "network mode",
        "subnets",
        "security groups",
    ]
    assert {name: rows.get(name) for name in expected} == dict.fromkeys(expected, "PASS"), text
    assert rows["capacity providers"] == "SKIP"
    # The clean-up's listings are probed; registration rights cannot be checked without registering:
    # said, not pretended.
    assert rows["definition clean-up"] == "PASS" and "ecs:ListTaskDefinitionFamilies" in text
    assert rows["derived definitions"] == "SKIP" and "not verifiable without registering" in text
    assert "ecs:DeregisterTaskDefinition and ecs:DeleteTaskDefinitions" in text  # the clean-up's rights
    assert "account 123456789012" in text
    assert "test-secret-key-DO-NOT-LOG" not in text and "testing" not in text
    assert "all checks passed" in text


@pytest.mark.parametrize(
    ("where", "name"),
    [
        ("secrets", "AIRFLOW__API_AUTH__JWT_SECRET"),
        ("environment", "AIRFLOW__API_AUTH__JWT_SECRET_CMD"),
        ("environment", "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH"),
    ],
)
def test_a_worker_given_airflows_signing_key_fails_the_check(aws, network, configure, where, name):
    """Workers need only their workload's token: a task definition handing them the key that signs
    every token fails, whichever form it takes."""
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    value = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf"
    entry = {"name": name, "valueFrom": value} if where == "secrets" else {"name": name, "value": "x"}
    definition = {
        "name": CONTAINER,
        "image": "apache/airflow:3.3.2",
        "memory": 512,
        where: [entry],
    }
    _register(aws, cluster, log_group=None, containerDefinitions=[definition])
    configure(cluster, subnets=network["subnet"], security_groups=network["sg"])
    code, text = _check()
    assert code == 1 and _rows(text)["signing key"] == "FAIL", text
    assert name in text and "workload's token" in text
    assert "jwt-AbCdEf" not in text and '"x"' not in text  # names only, never values


@pytest.mark.parametrize(
    ("url", "row"),
    [
        ("http://airflow-api.internal:8080/execution/", "WARN"),
        ("https://airflow-api.internal:8080/execution/", None),
        ("http://127.0.0.1:8080/execution/", None),  # this host: nothing crosses a network
    ],
)
def test_a_plain_http_execution_api_is_a_warning(aws, network, configure, url, row):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    definition = {
        "name": CONTAINER,
        "image": "apache/airflow:3.3.2",
        "memory": 512,
        "environment": [{"name": "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "value": url}],
    }
    _register(aws, cluster, containerDefinitions=[definition])
    configure(cluster, subnets=network["subnet"], security_groups=network["sg"])
    code, text = _check()
    assert _rows(text).get("execution api") == row, text
    if row:
        assert code == 0 and "https://" in text  # a warning: the tasks still run


def test_all_pass_with_attached_capacity_provider(aws, network, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    _register(aws, cluster)
    configure(
        cluster,
        subnets=network["subnet"],
        capacity_provider_strategy='[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]',
    )
    code, text = _check()
    assert code == 0, text
    rows = _rows(text)
    assert rows["capacity providers"] == "PASS"
    assert rows["security groups"] == "SKIP"  # none configured: the VPC default is used


def test_bridge_mode_ec2_passes_and_warns_about_missing_instances(aws, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster, fargate=False, log_group=None)
    configure(cluster, launch_type="EC2")
    code, text = _check()
    assert code == 0, text  # warnings do not fail
    rows = _rows(text)
    assert rows["network"] == "SKIP"
    assert rows["logs"] == "WARN"  # no awslogs: nothing to show in the UI while running
    assert rows["container instances"] == "WARN"


# ---- failures ------------------------------------------------------------------------------------


def test_missing_cluster_does_not_stop_the_other_checks(aws, network, configure):
    cluster = _name()
    _register(aws, cluster)
    configure(cluster, subnets=network["subnet"], security_groups=network["sg"])
    code, text = _check()
    assert code == 1
    rows = _rows(text)
    assert rows["cluster"] == "FAIL"
    assert f"aws ecs create-cluster --cluster-name {cluster}" in text
    assert "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER" in text
    assert rows["task definition"] == rows["subnets"] == rows["security groups"] == "PASS"


def test_task_definition_without_our_container(aws, network, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster, container="web")
    configure(cluster, subnets=network["subnet"])
    code, text = _check()
    assert code == 1 and _rows(text)["container"] == "FAIL"
    result = _by_name(collect_checks(executor_settings(cluster, subnets=network["subnet"])))["container"]
    assert not result.ok and result.status == "FAIL"
    assert f"no container named {CONTAINER!r}" in result.detail
    assert "'web'" in result.fix and "AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME" in result.fix


def test_missing_task_definition(aws, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    configure(cluster)
    code, text = _check()
    assert code == 1 and _rows(text)["task definition"] == "FAIL"
    result = _by_name(collect_checks(executor_settings(cluster)))["task definition"]
    assert not result.ok and "register-task-definition" in result.fix
    assert "AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION" in result.fix


def test_missing_subnet_is_named(aws, network, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster)
    ghost = "subnet-0123456789abcdef0"
    configure(cluster, subnets=f"{network['subnet']},{ghost}", security_groups=network["sg"])
    code, text = _check()
    assert code == 1
    results = _by_name(collect_checks(executor_settings(cluster, subnets=f"{network['subnet']},{ghost}")))
    assert not results["subnets"].ok
    assert ghost in results["subnets"].detail and network["subnet"] not in results["subnets"].detail
    assert ghost in results["subnets"].fix and "AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS" in results["subnets"].fix
    assert _rows(text)["security groups"] == "PASS"


def test_missing_security_group_is_named(aws, network, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster)
    ghost = "sg-0123456789abcdef0"
    configure(cluster, subnets=network["subnet"], security_groups=ghost)
    code, text = _check()
    assert code == 1
    rows = _rows(text)
    assert rows["security groups"] == "FAIL" and rows["subnets"] == "PASS"
    assert ghost in text


def test_subnets_and_security_groups_of_different_vpcs(aws, network):
    other_vpc = aws["ec2"].create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    other_sg = aws["ec2"].create_security_group(GroupName=_name(), Description="x", VpcId=other_vpc)[
        "GroupId"
    ]
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster)
    results = _by_name(
        collect_checks(executor_settings(cluster, subnets=network["subnet"], security_groups=other_sg))
    )
    assert not results["network vpc"].ok
    assert network["vpc"] in results["network vpc"].detail and other_vpc in results["network vpc"].detail


def test_capacity_provider_not_attached(aws, network, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster, capacityProviders=["FARGATE"])
    _register(aws, cluster)
    configure(
        cluster,
        subnets=network["subnet"],
        capacity_provider_strategy='[{"capacityProvider": "FARGATE"}, {"capacityProvider": "FARGATE_SPOT"}]',
    )
    code, text = _check()
    assert code == 1
    assert _rows(text)["capacity providers"] == "FAIL"
    strategy = '[{"capacityProvider": "FARGATE"}, {"capacityProvider": "FARGATE_SPOT"}]'
    result = _by_name(
        collect_checks(
            executor_settings(cluster, subnets=network["subnet"], capacity_provider_strategy=strategy)
        )
    )["capacity providers"]
    assert "FARGATE_SPOT" in result.detail and "attached: FARGATE" in result.detail
    # PutClusterCapacityProviders replaces the list, so the fix keeps FARGATE.
    assert f"--cluster {cluster} --capacity-providers FARGATE FARGATE_SPOT" in result.fix


def test_awsvpc_without_subnets_and_fargate_on_bridge(aws):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster)  # awsvpc
    results = _by_name(collect_checks(executor_settings(cluster)))
    assert not results["network mode"].ok and "no subnets" in results["network mode"].detail

    bridge = _name()
    aws["ecs"].create_cluster(clusterName=bridge)
    _register(aws, bridge, fargate=False)
    results = _by_name(collect_checks(executor_settings(bridge)))
    assert not results["network mode"].ok and "need network mode awsvpc" in results["network mode"].detail
    assert not results["memory"].ok and "task-level cpu and memory" in results["memory"].detail
    assert results["fargate compatibility"].status == "WARN"


def test_missing_log_group_fails_and_on_demand_group_passes(aws, network):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster, log_group="missing")
    result = _by_name(collect_checks(executor_settings(cluster, subnets=network["subnet"])))["logs"]
    assert not result.ok and "create-log-group" in result.fix

    created = _name()
    aws["ecs"].create_cluster(clusterName=created)
    aws["ecs"].register_task_definition(
        family=created,
        networkMode="awsvpc",
        cpu="512",
        memory="1024",
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": "x",
                "memory": 512,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/ecs/nowhere-yet",
                        "awslogs-stream-prefix": "p",
                        "awslogs-create-group": "true",
                    },
                },
            }
        ],
    )
    assert _by_name(collect_checks(executor_settings(created, subnets=network["subnet"])))["logs"].ok


def test_failing_credentials_do_not_stop_the_other_checks(aws, network, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster)
    configure(cluster)
    real = AwsClients("aws_test", REGION)

    class NoSts:
        def client(self, service: str, region_name: str | None = None) -> Any:
            if service == "sts":

                class Sts:
                    def get_caller_identity(self) -> Any:
                        raise NoCredentialsError()

                return Sts()
            return real.client(service, region_name)

        def describe_connection(self) -> str:
            return real.describe_connection()

    results = collect_checks(executor_settings(cluster, subnets=network["subnet"]), clients=NoSts())
    by_name = _by_name(results)
    assert not by_name["credentials"].ok
    assert "no AWS credentials found" in by_name["credentials"].detail
    assert "AIRFLOW__AWS_ECS_EXECUTOR__CONN_ID" in by_name["credentials"].fix
    assert by_name["cluster"].ok and by_name["subnets"].ok


# ---- configuration -----------------------------------------------------------------------------------


def test_bad_config_lists_each_problem_with_its_env_var(configure, monkeypatch):
    configure("some-cluster", launch_type="BOAT", subnets="net-1")
    monkeypatch.delenv("AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME")
    code, text = _check()
    assert code == 1
    assert "AIRFLOW__AWS_ECS_EXECUTOR__LAUNCH_TYPE" in text and "FARGATE, EC2, EXTERNAL" in text
    assert "AIRFLOW__AWS_ECS_EXECUTOR__SUBNETS" in text and "subnet-" in text
    assert "AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME" in text and "required but not set" in text
    config_rows = [line for line in text.splitlines() if line.startswith("config") and "FAIL" in line]
    assert len(config_rows) == 3
    assert "credentials" not in text  # no AWS call with a broken configuration


def test_config_from_an_explicit_conf_object():
    class Conf:
        def get(self, section: str, key: str, **kwargs: Any) -> str | None:
            return {"cluster": "c", "region_name": REGION}.get(key, kwargs.get("fallback"))

    settings, results = config_results(Conf())
    assert settings is None
    assert [r.ok for r in results] == [False]
    assert "container_name" in results[0].detail


def test_team_scoped_config(aws, configure):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster, fargate=False)
    configure(cluster, team="teama", launch_type="EC2")
    out = io.StringIO()
    assert run_check(team_name="teama", out=out) == 0, out.getvalue()
    assert "team teama" in out.getvalue()
    # The global section is empty: without the team the configuration is incomplete.
    out = io.StringIO()
    assert run_check(out=out) == 1
    assert "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER" in out.getvalue()


def test_main_parses_team(aws, configure, capsys):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster, fargate=False)
    configure(cluster, team="teamb", launch_type="EC2")
    assert main(["--team", "teamb"]) == 0
    assert "all checks passed" in capsys.readouterr().out


def test_python_dash_m_invocation(aws, moto_url, network):
    """``python -m ecs_executor.check`` in a fresh interpreter, configured only through the environment."""
    import json

    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster)
    env = {k: v for k, v in os.environ.items() if "_AWS_ECS_EXECUTOR__" not in k}
    env.update(executor_env(cluster, subnets=network["subnet"]))
    env["AIRFLOW_CONN_AWS_TEST"] = json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": moto_url, "region_name": REGION}}
    )
    proc = subprocess.run(
        [sys.executable, "-m", "ecs_executor.check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout

    env["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"] = "no-such-cluster"
    proc = subprocess.run(
        [sys.executable, "-m", "ecs_executor.check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "does not exist" in proc.stdout


# ---- output ---------------------------------------------------------------------------------------


def test_table_wraps_to_the_width():
    long = "arn:aws:ecs:us-east-1:123456789012:task-definition/" + "x" * 150
    results = [
        CheckResult("credentials", True, "account 1"),
        CheckResult("task definition", False, long + " word " * 30, "do this " * 40),
        CheckResult("network", True, "skipped", status="SKIP"),
    ]
    text = format_table(results, width=100)
    assert all(len(line) <= 100 for line in text.splitlines()), text
    assert text.splitlines()[0].split() == ["CHECK", "RESULT", "DETAIL", "HOW", "TO", "FIX"]
    assert "task definition  FAIL" in text
    assert "x" * 20 in text


def test_airflow_cli_runs_the_check(configure, capsys):
    """What ``airflow ecs-executor check --team t`` does, through Airflow's own argparse wiring."""
    import argparse

    from airflow.cli import cli_parser

    (group,) = cli_commands()
    assert group.name == "ecs-executor"
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="subcommand")
    cli_parser._add_command(subparsers, group)
    args = parser.parse_args(["ecs-executor", "check", "--team", "teamz"])
    assert args.team == "teamz"
    with pytest.raises(SystemExit) as exited:
        args.func(args)  # nothing configured for teamz: config rows fail, exit code 1
    assert exited.value.code == 1
    assert "AIRFLOW__TEAMZ___AWS_ECS_EXECUTOR__CLUSTER" in capsys.readouterr().out


def test_check_result_status_follows_ok():
    assert CheckResult("x", True, "").status == "PASS"
    assert CheckResult("x", False, "").status == "FAIL"
    assert CheckResult("x", True, "", status="WARN").status == "WARN"


# ---- launch target -------------------------------------------------------------------------------------


def test_launch_target_shows_what_is_configured(aws, network):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    _register(aws, cluster)
    configured = executor_settings(cluster, subnets=network["subnet"], launch_type="FARGATE")
    row = _by_name(collect_checks(configured))["launch target"]
    assert row.ok and row.detail == "launch type FARGATE (configured)"
    strategy = (
        '[{"capacityProvider": "FARGATE_SPOT", "weight": 3}, {"capacityProvider": "FARGATE", "base": 1}]'
    )
    settings = executor_settings(cluster, subnets=network["subnet"], capacity_provider_strategy=strategy)
    row = _by_name(collect_checks(settings))["launch target"]
    assert row.detail == (
        "capacity provider strategy FARGATE_SPOT (weight 3), FARGATE (base 1, weight 0) (configured)"
    )


def test_launch_target_shows_the_clusters_default_strategy(aws):
    with_default = _name()
    aws["ecs"].create_cluster(
        clusterName=with_default,
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )
    _register(aws, with_default, fargate=False)
    row = _by_name(collect_checks(executor_settings(with_default)))["launch target"]
    assert (
        row.ok and row.detail == "the cluster's default capacity provider strategy: FARGATE_SPOT (weight 1)"
    )

    plain = _name()
    aws["ecs"].create_cluster(clusterName=plain)
    _register(aws, plain, fargate=False)
    row = _by_name(collect_checks(executor_settings(plain)))["launch target"]
    assert row.detail == "launch type FARGATE (the cluster has no default capacity provider strategy)"

    row = _by_name(collect_checks(executor_settings(_name())))["launch target"]
    assert row.status == "SKIP" and "does not exist" in row.detail


# ---- the scheduler's start-up check ---------------------------------------------------------------------


async def _startup(cluster: str, **options: Any) -> list[str]:
    """startup_problems through the engine's own kind of client (aiobotocore, from the connection)."""
    from ecs_executor.aws.clients import ecs_client

    settings = executor_settings(cluster, **options)
    client, stack = await ecs_client(settings)
    async with stack:

        async def call(method: str, **kwargs: Any) -> Any:
            return await getattr(client, method)(**kwargs)

        return await startup_problems(call, settings)


async def test_startup_check_passes_a_working_setup(aws):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    _register(aws, cluster, fargate=False, log_group="missing")  # logs are not a start-up matter
    assert await _startup(cluster) == []


async def test_startup_check_names_the_option_and_the_fix(aws):
    cluster = _name()
    _register(aws, cluster, container="web")
    problems = await _startup(cluster)
    assert len(problems) == 2, problems
    missing_cluster, no_container = problems
    assert missing_cluster.startswith("cluster: ") and "does not exist" in missing_cluster
    assert (
        "aws ecs create-cluster" in missing_cluster
        and "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER" in missing_cluster
    )
    assert no_container.startswith("container: ") and "'web'" in no_container
    assert "AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME" in no_container


async def test_startup_check_reports_failing_calls_and_missing_task_definitions(aws):
    cluster = _name()
    aws["ecs"].create_cluster(clusterName=cluster)
    (problem,) = await _startup(cluster, task_definition="no-such-family")
    assert problem.startswith("task definition: ") and "register-task-definition" in problem

    async def broken(method: str, **kwargs: Any) -> Any:
        raise NoCredentialsError()

    problems = await startup_problems(broken, executor_settings(cluster), team_name="teama")
    assert [p.split(":")[0] for p in problems] == ["cluster", "task definition"]
    assert "no AWS credentials found" in problems[0]
    assert "AIRFLOW__TEAMA___AWS_ECS_EXECUTOR__TASK_DEFINITION" in problems[1]
