"""deploy/ecs-executor.yaml read statically: what moto's CloudFormation does not evaluate (the Rules section),
what must agree with our code (outputs, Fargate sizes, the calls the executor makes), and the IAM policy
the setup guide shows, which must be the template's policy as deployed.

cfn-lint runs on the template in ``make lint`` (part of ``make test``).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from cfnlint.decode import cfn_yaml

from ecs_executor.ecs_rules import FARGATE_SIZES
from ecs_executor.stack_config import MAX_EVENT_QUEUES, OPTION_OUTPUTS
from tests.moto_cloudformation import (  # noqa: F401  (fixture)
    TEMPLATE,
    aws_clients,
    complete_moto_cloudformation,
    deploy,
    network,
    outputs,
)

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "ecs_executor"
T: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))


def test_parameters_offer_exactly_the_fargate_sizes() -> None:
    params = T["Parameters"]
    assert params["Cpu"]["AllowedValues"] == [str(c) for c in FARGATE_SIZES]
    assert params["Memory"]["AllowedValues"] == [str(m) for m in sorted(set().union(*FARGATE_SIZES.values()))]
    assert params["Cpu"]["Default"] == "1024" and params["Memory"]["Default"] == "2048"


def test_rules_refuse_the_cpu_memory_pairs_fargate_refuses() -> None:
    """moto does not evaluate Rules, so each rule is read here: one per cpu, allowing that cpu's sizes."""
    allowed = {}
    for name, rule in T["Rules"].items():
        if not name.startswith("FargateMemoryFor"):
            continue
        cpu = rule["RuleCondition"]["Fn::Equals"]
        assert cpu[0] == {"Ref": "Cpu"}
        (assertion,) = rule["Assertions"]
        memories, memory_ref = assertion["Assert"]["Fn::Contains"]
        assert memory_ref == {"Ref": "Memory"}
        allowed[int(cpu[1])] = {int(m) for m in memories}
    assert allowed == FARGATE_SIZES


def test_option_outputs_match_the_config_command() -> None:
    outs = T["Outputs"]
    for option, key in OPTION_OUTPUTS.items():
        assert outs[key]["Description"].split(" ")[0] == option, key
    queues = {k for k in outs if k.startswith("EventsQueue")}
    assert queues == {f"EventsQueue{n}" for n in range(1, MAX_EVENT_QUEUES + 1)}
    for n in range(1, MAX_EVENT_QUEUES + 1):
        assert outs[f"EventsQueue{n}"]["Condition"] == f"Queue{n}"
        for kind in ("EventsQueue", "EventsRule", "EventsQueuePolicy"):
            assert T["Resources"][f"{kind}{n}"]["Condition"] == f"Queue{n}"
    assert T["Parameters"]["EventQueues"]["AllowedValues"] == [str(n) for n in range(MAX_EVENT_QUEUES + 1)]


def test_the_container_and_family_outputs_name_the_task_definition() -> None:
    td = T["Resources"]["WorkerTaskDefinition"]["Properties"]
    (container,) = td["ContainerDefinitions"]
    assert T["Outputs"]["ContainerName"]["Value"] == container["Name"]
    assert T["Outputs"]["TaskDefinition"]["Value"] == td["Family"]
    assert container["Memory"] == td["Memory"]  # moto and our check both want container memory
    options = container["LogConfiguration"]["Options"]
    assert options["awslogs-group"] == {"Ref": "WorkerLogGroup"}


# ---- the scheduler policy: exactly the calls the product makes -------------------------------------

SERVICES = ("ecs", "ec2", "logs", "sts", "cloudformation", "sqs", "events")
# Authorised with another call, not called by name: tags and roles ride on RunTask.
IMPLIED = {"ecs:TagResource", "iam:PassRole"}
# Calls that need no scheduler permission: STS needs none; config-from-stack runs as whoever deploys.
NOT_THE_SCHEDULERS = {"sts:GetCallerIdentity", "cloudformation:DescribeStacks"}
# SQS authorises a batch action by its single-message permission; there is no permission of the batch's name
# (SQS Developer Guide, "Amazon SQS batch actions").
AUTHORISED_AS = {"sqs:DeleteMessageBatch": "sqs:DeleteMessage", "sqs:SendMessageBatch": "sqs:SendMessage"}


def _operations() -> dict[str, set[str]]:
    """boto3 method name -> ``service:Operation`` for the services the product talks to."""
    session = botocore.session.get_session()
    methods: dict[str, set[str]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        prefix = model.signing_name if service != "logs" else "logs"
        for op in model.operation_names:
            methods.setdefault(botocore.xform_name(op), set()).add(f"{prefix}:{op}")
    return methods


def _product_calls() -> set[str]:
    """Every AWS operation named in product code (our own functions of the same name left out)."""
    sources = [
        p.read_text() for p in PKG.rglob("*.py") if not {"local_ecs", "demo"} & set(p.relative_to(PKG).parts)
    ]
    ours = {name for text in sources for name in re.findall(r"\bdef ([a-z_]+)\(", text)}
    words = {word for text in sources for word in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text)}
    methods = _operations()
    return {action for word in words - ours for action in methods.get(word, ())}


def _policy_actions(resource: str) -> set[str]:
    actions: set[str] = set()
    for statement in T["Resources"][resource]["Properties"]["PolicyDocument"]["Statement"]:
        action = statement["Action"]
        actions |= {action} if isinstance(action, str) else set(action)
    return actions


def test_the_scheduler_policies_allow_exactly_what_the_product_calls() -> None:
    calls = {AUTHORISED_AS.get(call, call) for call in _product_calls() - NOT_THE_SCHEDULERS}
    base, events = _policy_actions("SchedulerPolicy"), _policy_actions("SchedulerEventsPolicy")
    assert calls | IMPLIED == base | events
    assert all(action.startswith(("sqs:", "events:")) for action in events)  # polling needs only the base


def test_the_events_policy_has_the_queue_and_rule_actions_of_event_tracking() -> None:
    assert _policy_actions("SchedulerEventsPolicy") == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "events:ListRuleNamesByTarget",
        "events:DescribeRule",
    }


# ---- one source: the setup guide's policy is the deployed template's -------------------------------

# The setup guide's example account, Region, stack name and role names.
DOC_ACCOUNT, DOC_REGION, DOC_STACK = "111122223333", "eu-west-1", "airflow"
DOC_TASK_ROLE = f"arn:aws:iam::{DOC_ACCOUNT}:role/airflow-task-role"
DOC_EXECUTION_ROLE = f"arn:aws:iam::{DOC_ACCOUNT}:role/airflow-task-execution-role"


def _documented_policy(first_sid: str) -> dict[str, Any]:
    text = (ROOT / "docs" / "setup-guide.md").read_text()
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
        policy: dict[str, Any] = json.loads(block)
        if policy.get("Statement", [{}])[0].get("Sid") == first_sid:
            return policy
    raise AssertionError(f"no policy starting with Sid {first_sid} in docs/setup-guide.md")


@pytest.mark.usefixtures("complete_moto_cloudformation")
@pytest.mark.parametrize(
    ("output", "first_sid"),
    [("SchedulerPolicyArn", "Launch"), ("SchedulerEventsPolicyArn", "ReadTaskEvents")],
)
def test_the_setup_guides_policy_is_the_deployed_templates(
    moto_url: str, output: str, first_sid: str
) -> None:
    from tests.conftest import ACCOUNT, REGION

    stack = f"doc{uuid.uuid4().hex[:8]}"
    out = outputs(deploy(moto_url, stack, network(moto_url), EventQueues="1"))
    iam = aws_clients(moto_url, "iam")["iam"]
    version = iam.get_policy(PolicyArn=out[output])["Policy"]["DefaultVersionId"]
    deployed = iam.get_policy_version(PolicyArn=out[output], VersionId=version)["PolicyVersion"]["Document"]
    text = json.dumps(deployed)
    for ours, theirs in (
        (out["TaskRoleArn"], DOC_TASK_ROLE),
        (out["TaskExecutionRoleArn"], DOC_EXECUTION_ROLE),
        (f":{ACCOUNT}:", f":{DOC_ACCOUNT}:"),
        (f":{REGION}:", f":{DOC_REGION}:"),
        (stack, DOC_STACK),
    ):
        text = text.replace(ours, theirs)
    assert _documented_policy(first_sid) == json.loads(text)
