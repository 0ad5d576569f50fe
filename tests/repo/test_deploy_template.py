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

from ecs_executor.check.workload_key import KEY_SPEC, KEY_USAGE
from ecs_executor.core.envelope import KMS_CONTEXT
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
    without_no_value,
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
    """IAM's answer for Allow statements alone: action (case-insensitive), resource (both with wildcards)
    and every condition."""
    from ecs_executor.check.event_wiring import condition_matches, iam_glob

    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if (
            st["Effect"] != "Allow"
            or not any(iam_glob(a.lower(), action.lower()) for a in actions)
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

SERVICES = ("ecs", "ec2", "logs", "sts", "cloudformation", "sqs", "events", "kms")
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
# Code that runs in the worker container, as the task role (the workload's KMS Decrypt), not in the scheduler.
WORKER_PACKAGE = "worker"
# The scheduler's policies: the base one, event tracking's, workload encryption's.
SCHEDULER_POLICIES = ("SchedulerPolicy", "SchedulerEventsPolicy", "SchedulerWorkloadKeyPolicy")


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


def _one_word_operations() -> dict[str, tuple[str, frozenset[str]]]:
    """Methods named by one word (KMS's decrypt, encrypt, sign, verify) -> action and request members."""
    session = botocore.session.get_session()
    found = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        for op in model.operation_names:
            if "_" not in botocore.xform_name(op):
                members = frozenset(model.operation_model(op).input_shape.members)
                found[botocore.xform_name(op)] = (f"{model.signing_name}:{op}", members)
    return found


def _product_files(worker: bool) -> list[Path]:
    """The product's modules (not the development tools): the worker's, or the scheduler side's."""
    files = [p for p in PKG.rglob("*.py") if not {"local_ecs", "demo"} & set(p.relative_to(PKG).parts)]
    return [p for p in files if (p.relative_to(PKG).parts[0] == WORKER_PACKAGE) == worker]


def _one_word_calls(sources: list[str]) -> set[str]:
    """Calls of one-word operations. The word alone is no evidence ("decrypt" is AES-GCM's too, in
    core/envelope.py): a call counts when it passes one of the operation's own request members by name
    (``kms.decrypt(CiphertextBlob=...)``) or ``**`` keywords."""
    operations = _one_word_operations()
    calls = set()
    for text in sources:
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in operations:
                action, members = operations[node.func.attr]
                if any(kw.arg is None or kw.arg in members for kw in node.keywords):
                    calls.add(action)
    return calls


def _product_calls(worker: bool = False) -> set[str]:
    """Every AWS operation named in product code (our own functions of the same name left out)."""
    sources = [p.read_text() for p in _product_files(worker)]
    ours = {name for text in sources for name in re.findall(r"\bdef ([a-z_]+)\(", text)}
    words = {word for text in sources for word in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text)}
    methods = _operations()
    return _one_word_calls(sources) | {
        action
        for word in words - ours
        for action in methods.get(word, ())
        if word not in CALLED_ON or action.startswith(CALLED_ON[word] + ":")
    }


def _statements(resource: str) -> list[dict[str, Any]]:
    properties = T["Resources"][resource]["Properties"]
    statements: list[dict[str, Any]] = properties.get("PolicyDocument", properties.get("KeyPolicy"))[
        "Statement"
    ]
    return statements


def _policy_actions(resource: str) -> set[str]:
    actions: set[str] = set()
    for statement in _statements(resource):
        action = statement["Action"]
        actions |= {action} if isinstance(action, str) else set(action)
    return actions


def test_the_scheduler_policies_allow_exactly_what_the_product_calls() -> None:
    calls = {AUTHORISED_AS.get(call, call) for call in _product_calls() - NOT_THE_SCHEDULERS}
    assert calls | IMPLIED == set().union(*(_policy_actions(p) for p in SCHEDULER_POLICIES))
    assert all(action.startswith(("sqs:", "events:")) for action in _policy_actions("SchedulerEventsPolicy"))
    # polling in clear needs only the base policy; KMS only with workload encryption
    assert not any(action.startswith("kms:") for action in _policy_actions("SchedulerPolicy"))
    assert _policy_actions("SchedulerWorkloadKeyPolicy") == {"kms:GenerateDataKey", "kms:DescribeKey"}


def test_the_policy_scan_sees_one_word_calls_by_their_request_members() -> None:
    """How the worker's KMS Decrypt is found, and AES-GCM's decrypt is not taken for it."""
    kms_call = "import boto3\nboto3.client('kms').decrypt(CiphertextBlob=b'x', EncryptionContext={})\n"
    splat = "def f(kms, request):\n    return kms.decrypt(**request)\n"
    aes_gcm = "def f(aead, nonce, data, aad):\n    return aead.decrypt(nonce, data, aad)\n"
    aes_gcm_named = "def f(aead, n, d, a):\n    return aead.decrypt(nonce=n, data=d, associated_data=a)\n"
    assert _one_word_calls([kms_call]) == _one_word_calls([splat]) == {"kms:Decrypt"}
    assert _one_word_calls([aes_gcm, aes_gcm_named]) == set()


def test_the_task_role_may_decrypt_exactly_as_the_worker_calls() -> None:
    """The worker (ecs_executor/worker/) runs as the task role: its KMS calls are that role's KMS grants,
    all in its IAM policy (the created key's policy names no role); the execution role gets no KMS access."""
    worker_calls = _product_calls(worker=True)
    assert worker_calls == {"kms:Decrypt"}
    assert _policy_actions("TaskRoleWorkloadDecrypt") == worker_calls


def test_the_execution_role_gets_no_kms_access() -> None:
    assert "kms" not in json.dumps(T["Resources"]["TaskExecutionRole"]).lower()
    assert "TaskExecutionRole" not in json.dumps(T["Resources"]["WorkloadKey"])


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
DOC_KEY = f"arn:aws:kms:{DOC_REGION}:{DOC_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


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
    [
        ("SchedulerPolicyArn", "Launch"),
        ("SchedulerEventsPolicyArn", "ReadTaskEvents"),
        ("SchedulerWorkloadKeyPolicyArn", "MakeWorkloadDataKeys"),
    ],
)
def test_the_setup_guides_policy_is_the_deployed_templates(
    moto_url: str, output: str, first_sid: str
) -> None:
    from tests.conftest import ACCOUNT, REGION

    stack = f"doc{uuid.uuid4().hex[:8]}"
    out = outputs(deploy(moto_url, stack, network(moto_url), EventQueues="1", WorkloadKmsKey="create"))
    iam = aws_clients(moto_url, "iam")["iam"]
    version = iam.get_policy(PolicyArn=out[output])["Policy"]["DefaultVersionId"]
    deployed = iam.get_policy_version(PolicyArn=out[output], VersionId=version)["PolicyVersion"]["Document"]
    text = json.dumps(without_no_value(deployed))
    c = aws_clients(moto_url, "sqs", "events")
    queue = c["sqs"].get_queue_attributes(QueueUrl=out["EventsQueue1"], AttributeNames=["QueueArn"])
    queue_arn = queue["Attributes"]["QueueArn"]
    (rule,) = c["events"].list_rule_names_by_target(TargetArn=queue_arn)["RuleNames"]
    for ours, theirs in (
        (out["TaskRoleArn"], DOC_TASK_ROLE),
        (out["TaskExecutionRoleArn"], DOC_EXECUTION_ROLE),
        (queue_arn, DOC_QUEUE),
        (c["events"].describe_rule(Name=rule)["Arn"], DOC_RULE),
        (out["WorkloadKmsKey"], DOC_KEY),
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
    (confused-deputy conditions), the execution role's policy, the task role's DAG-prefix and workload
    policies; and the hand-made workload key's policy is the stack's key's (without SchedulerRoleName)."""
    from tests.conftest import ACCOUNT, REGION

    stack = f"rp{uuid.uuid4().hex[:8]}"
    out = outputs(
        deploy(
            moto_url,
            stack,
            network(moto_url),
            DagsBucket="my-dag-bucket",
            DagsPrefix="dags",
            WorkloadKmsKey="create",
        )
    )
    c = aws_clients(moto_url, "iam", "kms")
    iam = c["iam"]

    def as_documented(document: Any) -> Any:
        text = json.dumps(without_no_value(document))
        for ours, theirs in (
            (out["WorkloadKmsKey"], DOC_KEY),
            (out["TaskRoleArn"], DOC_TASK_ROLE),
            (ACCOUNT, DOC_ACCOUNT),
            (REGION, DOC_REGION),
            (stack, DOC_STACK),
        ):
            text = text.replace(ours, theirs)
        return json.loads(text)

    def first_sid(sid: str) -> Any:
        return lambda b: b.get("Statement", [{}])[0].get("Sid") == sid

    trust = _documented_block(lambda b: "sts:AssumeRole" in json.dumps(b))
    inline = {
        "TaskExecutionRoleArn": {"PullImage"},
        "TaskRoleArn": {"ListDagPrefix", "OpenWorkloads"},
    }
    for output, policy_sids in inline.items():
        role = iam.get_role(RoleName=out[output].rsplit("/", 1)[1])["Role"]
        assert as_documented(role["AssumeRolePolicyDocument"]) == trust, output
        found = set()
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            # moto keeps a role's inline policy (AWS::IAM::Role Policies) as the repr of a dict.
            document = ast.literal_eval(document) if isinstance(document, str) else document
            sid = document["Statement"][0]["Sid"]
            assert as_documented(document) == _documented_block(first_sid(sid)), (output, name)
            found.add(sid)
        assert found == policy_sids, output
    key_policy = json.loads(
        c["kms"].get_key_policy(KeyId=out["WorkloadKmsKey"], PolicyName="default")["Policy"]
    )
    assert as_documented(key_policy) == _documented_block(first_sid("AccountAdministersTheKey"))


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


# ---- workload encryption: the key, who may do what with it, and for which purpose -------------------

PURPOSE_CONDITION = {"StringEquals": {f"kms:EncryptionContext:{k}": v for k, v in KMS_CONTEXT.items()}}
KEY_ARN = {"Fn::If": ["CreateWorkloadKey", {"Fn::GetAtt": ["WorkloadKey", "Arn"]}, {"Ref": "WorkloadKmsKey"}]}


ACCOUNT_STATEMENT = {
    "Sid": "AccountAdministersTheKey",
    "Effect": "Allow",
    "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
    "Action": "kms:*",
    "Resource": "*",
}


def test_the_key_policy_is_the_account_statement_alone_and_names_no_role() -> None:
    """The account administers the key and IAM policies grant its use (AWS's default statement: without it
    IAM policies grant nothing on the key). No role is named: KMS refuses a key policy naming a principal
    it cannot see yet, and the roles' IAM policies are the one place that grants, for the purpose only."""
    assert _statements("WorkloadKey") == [ACCOUNT_STATEMENT]
    key = T["Resources"]["WorkloadKey"]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == (KEY_SPEC, KEY_USAGE)  # what check's key row requires


def test_data_keys_and_decryption_are_allowed_for_the_workload_purpose_only() -> None:
    """Each statement allows one action. GenerateDataKey and Decrypt only with the purpose's encryption
    context; DescribeKey without it (its request has no encryption context: the condition would never hold).
    IAM policies name the key by its ARN, the only form IAM takes for a KMS key."""
    statements = [(s, "key") for s in _statements("WorkloadKey")] + [
        (s, "iam") for r in ("SchedulerWorkloadKeyPolicy", "TaskRoleWorkloadDecrypt") for s in _statements(r)
    ]
    seen = set()
    for statement, where in statements:
        action = statement["Action"]
        assert isinstance(action, str), statement
        seen.add(action)
        wanted = PURPOSE_CONDITION if action in ("kms:GenerateDataKey", "kms:Decrypt") else None
        assert statement.get("Condition") == wanted, statement
        assert statement["Resource"] == ("*" if where == "key" else KEY_ARN), statement
    assert seen == {"kms:*", "kms:GenerateDataKey", "kms:DescribeKey", "kms:Decrypt"}


def test_the_workload_key_parameter_takes_none_create_or_a_key_arn() -> None:
    ok = {"ExecutionApiServerUrl": HTTPS}
    assert PARAMETER_DEFAULTS["WorkloadKmsKey"] == "none"  # without it, behaviour is as before
    for value in ("none", "create", f"arn:aws:kms:{DOC_REGION}:{DOC_ACCOUNT}:key/{uuid.uuid4()}"):
        assert refusals(**ok, WorkloadKmsKey=value) == [], value
    multi_region = f"arn:aws:kms:{DOC_REGION}:{DOC_ACCOUNT}:key/mrk-{uuid.uuid4().hex}"
    assert refusals(**ok, WorkloadKmsKey=multi_region) == []
    # IAM policies take a key ARN only: an alias, a key id or an alias ARN is refused before deploying.
    for value in (
        "",
        "alias/airflow",
        str(uuid.uuid4()),
        f"arn:aws:kms:{DOC_REGION}:{DOC_ACCOUNT}:alias/airflow",
    ):
        assert refusals(**ok, WorkloadKmsKey=value) == ["WorkloadKmsKey does not match its AllowedPattern"], (
            value
        )


def _kms_allows(
    key_policy: list[dict[str, Any]],
    identity: list[dict[str, Any]],
    principal: str,
    action: str,
    key: str,
    context: dict[str, str],
) -> bool:
    """KMS's answer for Allow statements, as its key-policy documentation puts it: the key policy allows the
    principal itself, or it allows the principal's account (which is what lets IAM policies grant) and one of
    the principal's own IAM policies allows the call on that key."""
    partition, account = principal.split(":", 5)[1:5:3]

    def key_policy_allows(who: set[str]) -> bool:
        return _allows([s for s in key_policy if _named(s) & who], action, key, context)

    return key_policy_allows({principal, "*"}) or (
        key_policy_allows({f"arn:{partition}:iam::{account}:root", account})
        and _allows(identity, action, key, context)
    )


def _named(statement: dict[str, Any]) -> set[str]:
    """The AWS principals a key policy statement names ("*" for anyone)."""
    principal = statement["Principal"]
    aws = principal.get("AWS", []) if isinstance(principal, dict) else principal
    return set(aws if isinstance(aws, list) else [aws])


def _role_statements(iam: Any, role: str) -> list[dict[str, Any]]:
    """Every statement of a role's IAM policies, inline and attached, as moto stores them."""
    documents = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        # moto keeps a role's inline policy (AWS::IAM::Role Policies) as the repr of a dict.
        documents.append(ast.literal_eval(document) if isinstance(document, str) else document)
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        documents.append(
            iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        )
    statements: list[dict[str, Any]] = []
    for document in documents:
        found = without_no_value(document)["Statement"]
        statements += found if isinstance(found, list) else [found]
    return statements


PURPOSE = {f"kms:EncryptionContext:{k}": v for k, v in KMS_CONTEXT.items()}
OTHER_PURPOSE = {f"kms:EncryptionContext:{k}": "something-else" for k in KMS_CONTEXT}


@pytest.mark.usefixtures("complete_moto_cloudformation")
def test_the_deployed_workload_key_lets_each_role_do_its_part_only(moto_url: str) -> None:
    """The deployed key's policy names the account alone, so each role's KMS access is what its own IAM
    policies (all of them, read back from IAM) grant: its one call, on this key, for the purpose only."""
    c = aws_clients(moto_url, "iam", "kms")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    name = f"scheduler-{uuid.uuid4().hex[:8]}"
    scheduler = c["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    stack = f"wk{uuid.uuid4().hex[:8]}"
    out = outputs(deploy(moto_url, stack, network(moto_url), WorkloadKmsKey="create", SchedulerRoleName=name))
    key = out["WorkloadKmsKey"]
    meta = c["kms"].describe_key(KeyId=f"alias/{stack}-workload")["KeyMetadata"]
    assert out["WorkloadKeyAlias"] == f"alias/{stack}-workload" and meta["Arn"] == key
    assert (meta["KeyState"], meta["KeySpec"], meta["KeyUsage"]) == ("Enabled", KEY_SPEC, KEY_USAGE)
    assert c["kms"].get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True

    policy = c["kms"].get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    key_policy = without_no_value(json.loads(policy) if isinstance(policy, str) else policy)["Statement"]
    account = key.split(":")[4]
    assert {json.dumps(s["Principal"]) for s in key_policy} == {
        json.dumps({"AWS": f"arn:aws:iam::{account}:root"})
    }
    other_key = key.rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
    task_role, execution_role = out["TaskRoleArn"], out["TaskExecutionRoleArn"]
    identities = {
        arn: _role_statements(c["iam"], arn.rsplit("/", 1)[1])
        for arn in (scheduler, task_role, execution_role)
    }

    def may(role: str, action: str, key_arn: str, context: dict[str, str]) -> bool:
        return _kms_allows(key_policy, identities[role], role, action, key_arn, context)

    assert may(scheduler, "kms:GenerateDataKey", key, PURPOSE)
    assert may(scheduler, "kms:DescribeKey", key, {})
    assert not may(scheduler, "kms:GenerateDataKey", key, OTHER_PURPOSE)
    assert not may(scheduler, "kms:GenerateDataKey", key, {})
    assert not may(scheduler, "kms:GenerateDataKey", other_key, PURPOSE)
    assert not may(scheduler, "kms:Decrypt", key, PURPOSE)
    assert may(task_role, "kms:Decrypt", key, PURPOSE)
    assert not may(task_role, "kms:Decrypt", key, OTHER_PURPOSE)
    assert not may(task_role, "kms:Decrypt", key, {})
    assert not may(task_role, "kms:Decrypt", other_key, PURPOSE)
    assert not may(task_role, "kms:GenerateDataKey", key, PURPOSE)
    assert not may(task_role, "kms:DescribeKey", key, {})
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"):
        assert not may(execution_role, action, key, PURPOSE), action
    # The account statement is what lets those IAM policies grant: without it they grant nothing.
    assert not _kms_allows([], identities[task_role], task_role, "kms:Decrypt", key, PURPOSE)
    assert "open-workload" in c["iam"].list_role_policies(RoleName=task_role.rsplit("/", 1)[1])["PolicyNames"]
    attached = c["iam"].list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert out["SchedulerWorkloadKeyPolicyArn"] in {p["PolicyArn"] for p in attached}

    # The key works for the envelope's KMS half; moto binds the encryption context as KMS does.
    data_key = c["kms"].generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=dict(KMS_CONTEXT))
    opened = c["kms"].decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=dict(KMS_CONTEXT))
    assert opened["Plaintext"] == data_key["Plaintext"]
    with pytest.raises(c["kms"].exceptions.ClientError):
        c["kms"].decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext={"other": "context"})


@pytest.mark.usefixtures("complete_moto_cloudformation")
def test_an_existing_key_is_granted_by_arn_and_none_grants_nothing(moto_url: str) -> None:
    c = aws_clients(moto_url, "iam", "kms", "cloudformation")
    existing = c["kms"].create_key(KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    stack = f"kmx{uuid.uuid4().hex[:8]}"
    out = outputs(deploy(moto_url, stack, network(moto_url), WorkloadKmsKey=existing))
    assert out["WorkloadKmsKey"] == existing and "WorkloadKeyAlias" not in out
    resources = c["cloudformation"].list_stack_resources(StackName=stack)["StackResourceSummaries"]
    assert not any(r["ResourceType"].startswith("AWS::KMS::") for r in resources)
    arn = out["SchedulerWorkloadKeyPolicyArn"]
    version = c["iam"].get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = c["iam"].get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    assert _allows(document["Statement"], "kms:GenerateDataKey", existing, PURPOSE)

    plain = outputs(deploy(moto_url, f"kmn{uuid.uuid4().hex[:8]}", network(moto_url)))
    assert not {"WorkloadKmsKey", "SchedulerWorkloadKeyPolicyArn", "WorkloadKeyAlias"} & set(plain)
    role = plain["TaskRoleArn"].rsplit("/", 1)[1]
    assert c["iam"].list_role_policies(RoleName=role)["PolicyNames"] == []
