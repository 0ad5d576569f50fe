"""deploy/ecs-executor.yaml read statically: what moto's CloudFormation does not evaluate (the Rules section),
what must agree with our code (outputs, Fargate sizes, the calls the executor makes), and the IAM policy
the setup guide shows, which must be the template's policy as deployed.

cfn-lint runs on the template in ``make lint`` (part of ``make test``).
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from cfnlint.decode import cfn_yaml

from ecs_executor.request.ecs_rules import FARGATE_SIZES
from ecs_executor.request.run_task import STARTED_BY
from ecs_executor.stack.options import MAX_EVENT_QUEUES, OPTION_OUTPUTS, OPTIONAL_OUTPUTS
from tests.support.moto_cloudformation import (  # noqa: F401  (fixture)
    TEMPLATE,
    aws_clients,
    complete_moto_cloudformation,
    deploy,
    network,
    outputs,
)

ROOT = Path(__file__).resolve().parents[2]
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
    for option, key in {**OPTION_OUTPUTS, **OPTIONAL_OUTPUTS}.items():
        assert outs[key]["Description"].split(" ")[0] == option, key
    assert outs["WorkloadKmsKey"]["Condition"] == "EncryptWorkload"  # no output: the option stays unset
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
    options = container["LogConfiguration"]["Options"]
    assert options["awslogs-group"] == {"Ref": "WorkerLogGroup"}


def test_the_worker_container_holds_no_signing_key_logs_blocking_and_takes_the_tasks_memory() -> None:
    td = T["Resources"]["WorkerTaskDefinition"]["Properties"]
    (container,) = td["ContainerDefinitions"]
    assert "Secrets" not in container  # no [api_auth] jwt_secret: workers use their workload's token
    assert not any("JWT" in e["Name"] for e in container["Environment"])
    assert "JwtSecretArn" not in T["Parameters"]
    execution_role = json.dumps(T["Resources"]["TaskExecutionRole"])
    assert "secretsmanager" not in execution_role and "Secret" not in execution_role
    # A hard container limit equal to the task's memory would make every task-level memory override
    # need a container override too: the container takes the task's memory.
    assert not {"Memory", "MemoryReservation"} & set(container)
    # ECS's default, non-blocking, may drop a crashing container's last lines: the failure reason.
    assert container["LogConfiguration"]["Options"]["mode"] == "blocking"
    assert T["Resources"]["WorkerLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# ---- names AWS accepts for any stack name ------------------------------------------------------------

STACK_NAME_MAX = 128  # CloudFormation's limit
# Name properties of the template's resource types, and AWS's limit for each.
NAME_LIMITS = {
    ("AWS::SQS::Queue", "QueueName"): 80,
    ("AWS::Events::Rule", "Name"): 64,
    ("AWS::ECS::Cluster", "ClusterName"): 255,
    ("AWS::ECS::TaskDefinition", "Family"): 255,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::IAM::Role", "RoleName"): 64,
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName"): 128,
    ("AWS::IAM::Policy", "PolicyName"): 128,
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255,
    ("AWS::KMS::Alias", "AliasName"): 256,
}


def _longest(value: Any) -> int:
    """Length of a name property with the longest stack name (other references count their own limit)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] == "AWS::StackName":
        return STACK_NAME_MAX
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"].replace("${AWS::StackName}", "x" * STACK_NAME_MAX)
        assert "${" not in text, value  # only the stack name is substituted in names
        return len(text)
    raise AssertionError(f"name property not understood: {value!r}")


def test_every_name_fits_aws_limits_for_any_stack_name() -> None:
    """Once event queues are on, `${AWS::StackName}-ecs-events-1` failed for stacks over ~50 characters:
    queues and rules are now named by CloudFormation, and every name the template sets fits."""
    checked = 0
    for logical_id, resource in T["Resources"].items():
        for (kind, prop), limit in NAME_LIMITS.items():
            if resource["Type"] == kind and prop in resource.get("Properties", {}):
                assert _longest(resource["Properties"][prop]) <= limit, (logical_id, prop)
                checked += 1
        if resource["Type"] in ("AWS::SQS::Queue", "AWS::Events::Rule"):
            assert not {"QueueName", "Name"} & set(resource["Properties"]), logical_id
    assert checked >= 5  # cluster, family, log group, policy name, key alias
    assert _longest({"Fn::Sub": "${AWS::StackName}-ecs-events-1"}) > 64  # what the test exists for


# ---- the Rules section, evaluated as CloudFormation does -------------------------------------------

PARAMETER_DEFAULTS = {name: str(p.get("Default", "")) for name, p in T["Parameters"].items()}


def _evaluate(expression: Any, params: dict[str, str]) -> Any:
    if isinstance(expression, str):
        return expression
    if isinstance(expression, list):
        return [_evaluate(item, params) for item in expression]
    ((function, args),) = expression.items()
    if function == "Ref":
        return params[args]
    values = [_evaluate(a, params) for a in args]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    if function == "Fn::Contains":
        return values[1] in values[0]
    raise AssertionError(f"rule function {function} not evaluated here")


def refusals(**given: str) -> list[str]:
    """The AssertDescriptions of every rule the parameters break, plus AllowedPattern failures."""
    params = {**PARAMETER_DEFAULTS, **given}
    refused = [
        f"{name} does not match its AllowedPattern"
        for name, value in params.items()
        if "AllowedPattern" in T["Parameters"][name]
        and not re.fullmatch(T["Parameters"][name]["AllowedPattern"], value)
    ]
    for rule in T["Rules"].values():
        if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], params):
            continue
        refused += [a["AssertDescription"] for a in rule["Assertions"] if not _evaluate(a["Assert"], params)]
    return refused


HTTPS = "https://airflow-api.internal:8080/execution/"
HTTP = "http://airflow-api.internal:8080/execution/"


def test_the_execution_api_url_is_https_unless_plain_http_is_asked_for_by_name() -> None:
    """The workload token crosses the VPC to this URL: http:// is refused where https:// is expected."""
    assert refusals(ExecutionApiServerUrl=HTTPS) == []
    assert refusals(ExecutionApiServerUrl=HTTP) == ["ExecutionApiServerUrl does not match its AllowedPattern"]
    assert refusals(PlainHttpExecutionApiServerUrl=HTTP) == []
    assert refusals(PlainHttpExecutionApiServerUrl=HTTPS) == [
        "PlainHttpExecutionApiServerUrl does not match its AllowedPattern"
    ]
    assert [r for r in refusals() if "ExecutionApiServerUrl" in r] == [
        "Give ExecutionApiServerUrl (https://.../execution/), or PlainHttpExecutionApiServerUrl if you "
        "accept tokens in clear text."
    ]
    both = refusals(ExecutionApiServerUrl=HTTPS, PlainHttpExecutionApiServerUrl=HTTP)
    assert both == ["Give ExecutionApiServerUrl or PlainHttpExecutionApiServerUrl, not both."]
    assert refusals(ExecutionApiServerUrl="https://api:8080/") != []  # must end in /execution/


def test_the_dag_location_is_a_bucket_and_a_plain_prefix() -> None:
    ok = {"ExecutionApiServerUrl": HTTPS}
    assert refusals(**ok, DagsBucket="my-dags", DagsPrefix="airflow/dags") == []
    assert refusals(**ok, DagsBucket="my-dags") == []
    assert refusals(**ok, DagsPrefix="airflow/dags") == [
        "DagsPrefix is a folder of DagsBucket; give the bucket too."
    ]
    for prefix in ("/dags", "dags/", "da*gs", "a//b"):  # IAM wildcards or empty path parts
        assert refusals(**ok, DagsBucket="my-dags", DagsPrefix=prefix), prefix


def test_the_fargate_rules_evaluate_as_read() -> None:
    ok = {"ExecutionApiServerUrl": HTTPS}
    assert refusals(**ok, Cpu="256", Memory="512") == []
    assert refusals(**ok, Cpu="256", Memory="4096") == [
        "With 256 CPU units Fargate accepts 512 to 2048 MiB of memory."
    ]
    assert refusals(**ok, FargateWeight="0") == ["FargateWeight or FargateSpotWeight must be above 0."]


# ---- event tracking: one pattern, short retention, undelivered events kept -------------------------


def test_every_rule_has_the_executors_pattern_and_a_dead_letter_queue() -> None:
    from ecs_executor.core.state_change import rule_pattern

    for n in range(1, MAX_EVENT_QUEUES + 1):
        rule = T["Resources"][f"EventsRule{n}"]["Properties"]
        pattern = rule["EventPattern"]
        cluster = pattern["detail"]["clusterArn"]
        assert pattern == rule_pattern(cluster)  # startedBy: the prefix every task we launch carries
        assert rule_pattern([])["detail"]["startedBy"] == [{"prefix": STARTED_BY}]
        (target,) = rule["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600
        queue = T["Resources"][f"EventsQueue{n}"]["Properties"]
        assert queue["MessageRetentionPeriod"] <= 4 * 3600  # hours: an unread queue replays little
    assert T["Resources"]["EventsDeadLetterAlarm"]["Properties"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}}
    ]


# ---- the deployed worker: no signing key, its DAG prefix only, trusted by this account's ECS only -----


def _allows(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    """IAM's answer for Allow statements alone: action, resource (wildcards) and every condition."""
    from ecs_executor.check.event_wiring import condition_matches, iam_glob

    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if (
            st["Effect"] != "Allow"
            or action not in actions
            or not any(iam_glob(r, resource) for r in resources)
        ):
            continue
        conditions = st.get("Condition") or {}
        if all(
            key in context
            and any(condition_matches(op, v, context[key]) for v in (vs if isinstance(vs, list) else [vs]))
            for op, keys in conditions.items()
            for key, vs in keys.items()
        ):
            return True
    return False


@pytest.mark.usefixtures("complete_moto_cloudformation")
def test_the_deployed_worker_has_no_signing_key_and_reads_only_its_dag_prefix(moto_url: str) -> None:
    from tests.conftest import ACCOUNT, REGION

    stack = f"wk{uuid.uuid4().hex[:8]}"
    out = outputs(deploy(moto_url, stack, network(moto_url), DagsBucket="my-dags", DagsPrefix="airflow/dags"))
    c = aws_clients(moto_url, "ecs", "iam")
    td = c["ecs"].describe_task_definition(taskDefinition=out["TaskDefinition"])["taskDefinition"]
    (container,) = td["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env == {
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "https://airflow-api.internal:8080/execution/",
        "AWS_DEFAULT_REGION": REGION,
        "S3_URL": "s3://my-dags/airflow/dags",
    }
    assert not container.get("secrets") and "memory" not in container and "memoryReservation" not in container
    assert container["logConfiguration"]["options"]["mode"] == "blocking"

    roles = {name: out[name].rsplit("/", 1)[1] for name in ("TaskRoleArn", "TaskExecutionRoleArn")}
    for role in roles.values():
        (trust,) = c["iam"].get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Condition"] == {  # confused deputy: only ECS tasks of this account and Region
            "StringEquals": {"aws:SourceAccount": ACCOUNT},
            "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"},
        }
    for name in c["iam"].list_role_policies(RoleName=roles["TaskExecutionRoleArn"])["PolicyNames"]:
        document = c["iam"].get_role_policy(RoleName=roles["TaskExecutionRoleArn"], PolicyName=name)
        assert "secretsmanager" not in json.dumps(document["PolicyDocument"])

    (name,) = c["iam"].list_role_policies(RoleName=roles["TaskRoleArn"])["PolicyNames"]
    statements = c["iam"].get_role_policy(RoleName=roles["TaskRoleArn"], PolicyName=name)["PolicyDocument"]
    statements = statements["Statement"]
    read = "s3:GetObject"
    assert _allows(statements, read, "arn:aws:s3:::my-dags/airflow/dags/etl/daily.py", {})
    assert not _allows(statements, read, "arn:aws:s3:::my-dags/airflow/connections.json", {})
    assert not _allows(statements, read, "arn:aws:s3:::my-dags/airflow/dags-old/x.py", {})
    assert not _allows(statements, read, "arn:aws:s3:::other-bucket/airflow/dags/x.py", {})
    bucket = "arn:aws:s3:::my-dags"
    # aws s3 sync s3://my-dags/airflow/dags lists with the prefix "airflow/dags/".
    assert _allows(statements, "s3:ListBucket", bucket, {"s3:prefix": "airflow/dags/"})
    assert _allows(statements, "s3:ListBucket", bucket, {"s3:prefix": "airflow/dags/etl/"})
    assert not _allows(statements, "s3:ListBucket", bucket, {"s3:prefix": "airflow/"})
    assert not _allows(statements, "s3:ListBucket", bucket, {})  # the whole bucket


# ---- the scheduler policy: exactly the calls the product makes -------------------------------------

SERVICES = ("ecs", "ec2", "logs", "sts", "cloudformation", "sqs", "events")
# Authorised with another call, not called by name: tags and roles ride on RunTask.
IMPLIED = {"ecs:TagResource", "iam:PassRole"}
# Calls that need no scheduler permission: STS needs none; config-from-stack runs as whoever deploys.
NOT_THE_SCHEDULERS = {"sts:GetCallerIdentity", "cloudformation:DescribeStacks"}
# SQS authorises a batch action by its single-message permission; there is no permission of the batch's name
# (SQS Developer Guide, "Amazon SQS batch actions").
AUTHORISED_AS = {"sqs:DeleteMessageBatch": "sqs:DeleteMessage", "sqs:SendMessageBatch": "sqs:SendMessage"}
# Methods several of these clients have, and the one client the product calls them on (engine/definitions.py
# tags ECS task definitions).
CALLED_ON = {"tag_resource": "ecs"}


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
    return {
        action
        for word in words - ours
        for action in methods.get(word, ())
        if word not in CALLED_ON or action.startswith(CALLED_ON[word] + ":")
    }


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

# The setup guide's example account, Region, stack name, and the names of its hand-made set-up for what
# the stack names itself (tests/repo/test_docs.py checks that the guide creates exactly these).
DOC_ACCOUNT, DOC_REGION, DOC_STACK = "111122223333", "eu-west-1", "airflow"
DOC_TASK_ROLE = f"arn:aws:iam::{DOC_ACCOUNT}:role/airflow-worker-task"
DOC_EXECUTION_ROLE = f"arn:aws:iam::{DOC_ACCOUNT}:role/airflow-worker-execution"
DOC_QUEUE = f"arn:aws:sqs:{DOC_REGION}:{DOC_ACCOUNT}:airflow-ecs-events-1"
DOC_RULE = f"arn:aws:events:{DOC_REGION}:{DOC_ACCOUNT}:rule/airflow-ecs-events-1"


def _without_no_value(value: Any) -> Any:
    """moto leaves ``!Ref AWS::NoValue`` in a list as null; CloudFormation drops the entry."""
    if isinstance(value, list):
        return [_without_no_value(v) for v in value if v is not None]
    if isinstance(value, dict):
        return {k: _without_no_value(v) for k, v in value.items()}
    return value


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
    text = json.dumps(_without_no_value(deployed))
    c = aws_clients(moto_url, "sqs", "events")
    queue = c["sqs"].get_queue_attributes(QueueUrl=out["EventsQueue1"], AttributeNames=["QueueArn"])
    queue_arn = queue["Attributes"]["QueueArn"]
    (rule,) = c["events"].list_rule_names_by_target(TargetArn=queue_arn)["RuleNames"]
    for ours, theirs in (
        (out["TaskRoleArn"], DOC_TASK_ROLE),
        (out["TaskExecutionRoleArn"], DOC_EXECUTION_ROLE),
        (queue_arn, DOC_QUEUE),
        (c["events"].describe_rule(Name=rule)["Arn"], DOC_RULE),
        (f":{ACCOUNT}:", f":{DOC_ACCOUNT}:"),
        (f":{REGION}:", f":{DOC_REGION}:"),
        (stack, DOC_STACK),
    ):
        text = text.replace(ours, theirs)
    assert _documented_policy(first_sid) == json.loads(text)


def _documented_block(predicate: Any) -> dict[str, Any]:
    text = (ROOT / "docs" / "setup-guide.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, flags=re.S)]
    (block,) = [b for b in blocks if predicate(b)]
    return block


@pytest.mark.usefixtures("complete_moto_cloudformation")
def test_the_setup_guides_role_policies_are_the_deployed_templates(moto_url: str) -> None:
    """The hand-made roles of the guide trust and allow what the stack's roles do: the trust policy
    (confused-deputy conditions), the execution role's policy, the task role's DAG-prefix policy."""
    from tests.conftest import ACCOUNT, REGION

    stack = f"rp{uuid.uuid4().hex[:8]}"
    out = outputs(deploy(moto_url, stack, network(moto_url), DagsBucket="my-dag-bucket", DagsPrefix="dags"))
    iam = aws_clients(moto_url, "iam")["iam"]

    def as_documented(document: Any) -> Any:
        text = json.dumps(_without_no_value(document))
        for ours, theirs in ((ACCOUNT, DOC_ACCOUNT), (REGION, DOC_REGION), (stack, DOC_STACK)):
            text = text.replace(ours, theirs)
        return json.loads(text)

    def first_sid(sid: str) -> Any:
        return lambda b: b.get("Statement", [{}])[0].get("Sid") == sid

    trust = _documented_block(lambda b: "sts:AssumeRole" in json.dumps(b))
    for output, policy_sid in (("TaskExecutionRoleArn", "PullImage"), ("TaskRoleArn", "ListDagPrefix")):
        role = iam.get_role(RoleName=out[output].rsplit("/", 1)[1])["Role"]
        assert as_documented(role["AssumeRolePolicyDocument"]) == trust, output
        (name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
        # moto keeps a role's inline policy (AWS::IAM::Role Policies) as the repr of a dict.
        document = ast.literal_eval(document) if isinstance(document, str) else document
        assert as_documented(document) == _documented_block(first_sid(policy_sid)), output


def test_the_policy_lets_the_scheduler_register_tag_and_run_derived_definitions_only() -> None:
    """Derived families (request/derived_definition.py) fall under the policy's RunTask and TagResource
    resources; other families' definitions cannot be tagged."""
    from ecs_executor.request.derived_definition import derived_family

    statements = _documented_policy("Launch")["Statement"]
    prefix = f"arn:aws:ecs:{DOC_REGION}:{DOC_ACCOUNT}:task-definition/"
    derived = f"{prefix}{derived_family(f'{DOC_STACK}-worker', 'ab' * 32)}:3"
    cluster = {"ecs:cluster": f"arn:aws:ecs:{DOC_REGION}:{DOC_ACCOUNT}:cluster/{DOC_STACK}"}
    assert _allows(statements, "ecs:RunTask", derived, cluster)
    assert _allows(statements, "ecs:TagResource", derived, {})
    assert _allows(statements, "ecs:RegisterTaskDefinition", derived, {})
    assert not _allows(statements, "ecs:TagResource", f"{prefix}someone-else:1", {})
    assert not _allows(statements, "ecs:RunTask", f"{prefix}someone-else:1", cluster)
