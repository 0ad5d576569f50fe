"""From a deployed stack to a working executor: deploy/ecs-executor.yaml on moto's CloudFormation (server
mode), ``config-from-stack`` on its outputs, then ``check`` and a task launched with exactly that config.

moto's gaps for this template (ECS cluster and task definition properties, AWS::SQS::QueuePolicy) are
filled as tests/support/moto_cloudformation.py explains; the
template's Rules section (Fargate sizes), which moto
does not evaluate, is checked in test_deploy_template.py.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shlex
import subprocess
import sys
import uuid
from typing import Any

import pytest
from airflow.utils.state import TaskInstanceState

from ecs_executor.check.report import config_results
from ecs_executor.check.rows import PASS, SKIP
from ecs_executor.check.run import collect_checks
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.request.run_task import STARTED_BY, started_by
from ecs_executor.stack.command import main, run, stack_outputs
from ecs_executor.stack.options import StackConfigError
from tests.conftest import ACCOUNT, REGION, Driver, finish_moto_task, make_workload, moto_tasks
from tests.support.executor_view import arns
from tests.support.moto_cloudformation import (  # noqa: F401  (fixture)
    aws_clients,
    complete_moto_cloudformation,
    deploy,
    network,
    outputs,
)

pytestmark = pytest.mark.usefixtures("complete_moto_cloudformation")


@pytest.fixture
def aws_default(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> None:
    """The default Airflow AWS connection points at moto; no executor option is set beforehand."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "extra": {"endpoint_url": moto_url, "region_name": REGION}}),
    )
    for key in [k for k in os.environ if "_AWS_ECS_EXECUTOR__" in k]:
        monkeypatch.delenv(key)


def _stack() -> str:
    return f"af-{uuid.uuid4().hex[:8]}"


def _config(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main([*args, "--region", REGION])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_deploy_then_config_then_check_and_a_task_run(
    moto_url, aws_default, monkeypatch, capsys, new_executor, moto_manual_lifecycle
):
    stack = _stack()
    deploy(moto_url, stack, network(moto_url))

    for line in _config(capsys, stack, "--format", "env").splitlines():
        if not line.startswith("#"):
            key, value = shlex.split(line)[0].split("=", 1)
            monkeypatch.setenv(key, value)

    settings, rows = config_results()
    assert settings is not None, rows
    rows += collect_checks(settings)
    status = {row.name: row.status for row in rows}
    passing = ["config", "credentials", "cluster", "launch target", "task definition", "container"]
    passing += ["memory", "logs", "network mode", "subnets", "security groups"]
    assert {name: status.get(name) for name in passing} == dict.fromkeys(passing, PASS), rows
    assert status["capacity providers"] == SKIP  # none configured: the cluster's default strategy applies
    detail = {row.name: row.detail for row in rows}
    assert detail["launch target"] == (
        "the cluster's default capacity provider strategy: FARGATE (weight 1), FARGATE_SPOT (weight 0)"
    )
    assert detail["memory"] == "task memory 2048 MiB, task cpu 1024"  # the container may use all of it
    assert all(row.ok for row in rows), rows

    # Only to make the test quick: sweeps every 0.2 s instead of 2 s.
    monkeypatch.setenv("AIRFLOW__AWS_ECS_EXECUTOR__POLL_INTERVAL", "0.2")
    executor = new_executor()
    driver = Driver(executor)
    workload = make_workload("hello")
    executor.queue_workload(workload, session=None)
    driver.until(lambda: bool(arns(executor)))
    (arn,) = arns(executor).values()
    task = moto_tasks(stack)[arn]
    assert task.task_definition_arn.endswith(f":task-definition/{stack}-worker:1")
    assert task.capacity_provider_name == "FARGATE"
    finish_moto_task(stack, arn, 0)
    driver.until(lambda: bool(driver.final_states()))
    assert driver.final_states() == {workload.ti.key: TaskInstanceState.SUCCESS}


def test_event_tracking_gives_each_scheduler_a_queue_fed_by_the_executors_task_changes(
    moto_url, aws_default, capsys
):
    stack = _stack()
    out = outputs(deploy(moto_url, stack, network(moto_url), EventQueues="2"))
    c = aws_clients(moto_url, "events", "sqs")
    cluster_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{stack}"
    dead_letter_arn = c["sqs"].get_queue_attributes(
        QueueUrl=out["EventsDeadLetterQueue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    rule_arns = []

    for n in (1, 2):
        parser = configparser.ConfigParser()
        parser.read_string(_config(capsys, stack, "--scheduler", str(n)))
        section = parser["aws_ecs_executor"]
        url = out[f"EventsQueue{n}"]
        assert (section["tracking_mode"], section["events_queue"]) == ("events", url)

        attributes = c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queue_arn = attributes["QueueArn"]
        assert attributes["MessageRetentionPeriod"] == "3600"  # hours, not the 4-day default
        # What the check of event tracking looks up: the rule that targets this queue.
        (name,) = c["events"].list_rule_names_by_target(TargetArn=queue_arn)["RuleNames"]
        rule = c["events"].describe_rule(Name=name)
        rule_arns.append(rule["Arn"])
        assert json.loads(rule["EventPattern"]) == {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {"clusterArn": [cluster_arn], "startedBy": [{"prefix": STARTED_BY}]},
        }
        # EventBridge retries a target for 24 h and then drops the event silently: here it gives up
        # after the queue's retention and parks the event in the dead-letter queue.
        (target,) = c["events"].list_targets_by_rule(Rule=name)["Targets"]
        assert target["Arn"] == queue_arn
        assert target["DeadLetterConfig"] == {"Arn": dead_letter_arn}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 3600
        policy = c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
        (statement,) = json.loads(policy["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert (statement["Action"], statement["Resource"]) == ("sqs:SendMessage", queue_arn)
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
        # And the check of event tracking passes on exactly this scheduler's config.
        rows = collect_checks(settings_from_mapping(dict(section)))
        events_rows = {(row.name, row.status) for row in rows if row.name.startswith("events")}
        assert events_rows == {
            ("events queue", PASS),
            ("events queue policy", PASS),
            ("events rule", PASS),
            ("events permissions", PASS),
        }, rows

    # Only the dead-letter queue's rules may write to it (moto leaves AWS::NoValue as null in a list).
    policy = c["sqs"].get_queue_attributes(QueueUrl=out["EventsDeadLetterQueue"], AttributeNames=["Policy"])
    (statement,) = json.loads(policy["Attributes"]["Policy"])["Statement"]
    senders = [arn for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"] if arn]
    assert senders == rule_arns

    def event(cluster: str, started_by: str) -> dict[str, Any]:
        detail = {"clusterArn": cluster, "lastStatus": "STOPPED", "version": 3, "startedBy": started_by}
        return {"Source": "aws.ecs", "DetailType": "ECS Task State Change", "Detail": json.dumps(detail)}

    ours, team = started_by(None), started_by("team_a")
    entries = [
        event(cluster_arn, ours),
        event(cluster_arn + "-other", ours),
        event(cluster_arn, "ecs-svc/123"),
    ]
    c["events"].put_events(Entries=[*entries, event(cluster_arn, team)])
    for n in (1, 2):
        messages = c["sqs"].receive_message(QueueUrl=out[f"EventsQueue{n}"], MaxNumberOfMessages=10)[
            "Messages"
        ]
        seen = sorted(
            (json.loads(m["Body"])["detail"]["clusterArn"], json.loads(m["Body"])["detail"]["startedBy"])
            for m in messages
        )
        assert seen == [(cluster_arn, ours), (cluster_arn, team)]

    assert main([stack, "--region", REGION, "--scheduler", "3"]) == 1
    assert "has 2 event queue(s) (EventsQueue1, EventsQueue2), so scheduler 3 has none" in (
        capsys.readouterr().err
    )


def test_an_existing_cluster_is_used_as_it_is_and_the_scheduler_role_gets_the_policy(
    moto_url, aws_default, capsys
):
    existing = f"mine-{uuid.uuid4().hex[:6]}"
    ecs = aws_clients(moto_url, "ecs")["ecs"]
    ecs.create_cluster(clusterName=existing, capacityProviders=["FARGATE_SPOT"])
    iam = aws_clients(moto_url, "iam")["iam"]
    role = f"scheduler-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Statement": []}))
    stack = _stack()
    description = deploy(moto_url, stack, network(moto_url), ExistingCluster=existing, SchedulerRoleName=role)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [outputs(description)["SchedulerPolicyArn"]]

    parser = configparser.ConfigParser()
    parser.read_string(_config(capsys, stack))
    assert parser["aws_ecs_executor"]["cluster"] == existing
    assert ecs.describe_clusters(clusters=[stack])["clusters"] == []  # none created
    assert ecs.describe_clusters(clusters=[existing])["clusters"][0]["capacityProviders"] == ["FARGATE_SPOT"]
    arn = outputs(description)["SchedulerPolicyArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    launch = next(s for s in document["Statement"] if s["Sid"] == "Launch")
    assert launch["Condition"]["ArnEquals"]["ecs:cluster"].endswith(f":cluster/{existing}")


def test_workload_encryption_from_the_stack_to_a_passing_check(moto_url, aws_default, capsys):
    """WorkloadKmsKey=create: config-from-stack names the stack's key, and check's rows pass on it (the
    task role's Decrypt, which the scheduler cannot try, is named); without it the option is not printed."""
    stack = _stack()
    out = outputs(deploy(moto_url, stack, network(moto_url), WorkloadKmsKey="create"))
    parser = configparser.ConfigParser()
    parser.read_string(_config(capsys, stack))
    section = parser["aws_ecs_executor"]
    assert section["workload_kms_key"] == out["WorkloadKmsKey"]
    assert section["workload_kms_key"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    env = _config(capsys, stack, "--format", "env")
    assert f"AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY={out['WorkloadKmsKey']}" in env.splitlines()

    rows = {row.name: row for row in collect_checks(settings_from_mapping(dict(section)))}
    assert rows["workload key"].status == PASS, rows["workload key"]
    assert rows["workload data keys"].status == PASS, rows["workload data keys"]
    assert rows["workload decrypt"].status == SKIP
    assert out["TaskRoleArn"] in rows["workload decrypt"].detail

    plain = _stack()
    deploy(moto_url, plain, network(moto_url))
    assert "workload_kms_key" not in _config(capsys, plain)


# ---- one clear message for each bad input ---------------------------------------------------------


def test_a_missing_stack_is_named_with_its_region(aws_default, capsys):
    assert main(["no-such-stack", "--region", REGION]) == 1
    assert capsys.readouterr().err == (
        f"config-from-stack: CloudFormation stack 'no-such-stack' does not exist in {REGION}; check the "
        f"name and --region (aws cloudformation list-stacks --region {REGION})\n"
    )


def test_a_stack_of_another_template_is_told_which_outputs_are_missing(moto_url, aws_default, capsys):
    stack = _stack()
    template = {
        "Resources": {"Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": stack}}},
        "Outputs": {"LogGroup": {"Value": {"Ref": "Group"}}},
    }
    cfn = aws_clients(moto_url, "cloudformation")["cloudformation"]
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    assert main([stack, "--region", REGION]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"config-from-stack: stack {stack!r} has no output Cluster, TaskDefinition, ContainerName, "
        "RegionName, Subnets, SecurityGroups, AssignPublicIp, TrackingMode (outputs found: LogGroup)"
    )
    assert err.count("\n") == 1


def test_a_stack_that_is_not_complete_is_refused_with_its_state() -> None:
    class Answers:
        def client(self, service: str, region_name: str | None = None) -> Any:
            assert (service, region_name) == ("cloudformation", "eu-west-1")
            return self

        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            stack = {"StackStatus": "ROLLBACK_COMPLETE", "StackStatusReason": "Subnet not found"}
            return {"Stacks": [{**stack, "Outputs": []}]}

    with pytest.raises(StackConfigError) as err:
        stack_outputs(Answers(), "airflow", "eu-west-1")
    assert str(err.value).startswith("stack 'airflow' is ROLLBACK_COMPLETE (Subnet not found), not ")


def test_no_region_and_a_bad_scheduler_number_are_refused(monkeypatch, capsys):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert main(["airflow"]) == 1
    assert capsys.readouterr().err == "config-from-stack: no Region: pass --region (or set AWS_REGION)\n"
    args = argparse.Namespace(stack="airflow", region=REGION, format="ini", scheduler=6, team=None)
    assert run(args) == 1
    assert capsys.readouterr().err == "config-from-stack: --scheduler must be 1-5, not 6\n"


def test_python_m_ecs_executor_runs_the_command(moto_url, aws_default):
    """The module entry point in a fresh interpreter: exit code and the message on stderr only."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "ecs_executor", "config-from-stack", "absent", "--region", REGION],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert "CloudFormation stack 'absent' does not exist" in done.stderr


def test_airflow_cli_prints_the_config_with_the_same_arguments(moto_url, aws_default, capsys):
    """``airflow ecs-executor config-from-stack`` through Airflow's own argparse wiring, and its arguments
    are those of ``python -m ecs_executor config-from-stack``."""
    from airflow.cli import cli_parser

    from ecs_executor.cli import cli_commands
    from ecs_executor.stack.command import add_arguments

    stack = _stack()
    deploy(moto_url, stack, network(moto_url))
    argv = [stack, "--region", REGION, "--format", "env", "--scheduler", "1", "--conn-id", "aws_default"]
    parser = argparse.ArgumentParser()
    cli_parser._add_command(parser.add_subparsers(dest="subcommand"), cli_commands()[0])
    args = parser.parse_args(["ecs-executor", "config-from-stack", *argv])
    ours = argparse.ArgumentParser()
    add_arguments(ours)
    assert {k: v for k, v in vars(args).items() if k not in ("func", "subcommand")} == vars(
        ours.parse_args(argv)
    )
    with pytest.raises(SystemExit) as exited:
        args.func(args)
    assert exited.value.code == 0
    assert f"AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER={stack}" in capsys.readouterr().out.splitlines()
