"""Deploying deploy/ecs-executor.yaml to moto's CloudFormation, with moto's gaps for our resources filled.

moto 5.2.5's CloudFormation creates every resource type the template uses except one, but drops
properties of two:

* ``AWS::ECS::Cluster``: only the name is kept (no capacity providers, no default strategy);
* ``AWS::ECS::TaskDefinition``: family, containers and memory are kept; cpu, network mode,
  compatibilities, runtime platform and both roles are dropped;
* ``AWS::SQS::QueuePolicy`` is not supported at all (skipped with a warning);
* ``AWS::KMS::Key``: the key policy is stored as the template's object rather than the JSON text KMS
  keeps, with a ``!Ref AWS::NoValue`` statement left as null (moto's own DescribeKey then fails with
  HTTP 500), and key spec and usage are fixed, not read.

moto's RunTask also fails (HTTP 500) on a container without container-level memory, which ECS accepts
when the task sets memory (the template's worker container has none, so that a task-level memory override
is enough); the fixture makes moto count such a container at the task's memory, as ECS does.

Two more moto differences the template is written around or checked elsewhere: the ``!Condition`` short
form inside ``Fn::Or`` evaluates to false in moto (the template uses ``{Condition: Name}``, valid in
both), and the ``Rules`` section is not evaluated (test_deploy_template.py reads it against ecs_rules).

``complete_moto_cloudformation`` registers, for those four types only, handlers that do what
CloudFormation does: the resource's properties, with intrinsics already resolved by moto, become the
API request (PascalCase names matched to the ECS service model's members, values coerced to its types;
for the KMS key, CreateKey's own parameters) sent to moto's own backend. So what lands in moto is what
the template asks for, and a wrong property name or type in the template fails here as it would in
CloudFormation.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from tests.conftest import ACCOUNT, REGION

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "ecs-executor.yaml"
_ECS_MODEL = botocore.session.get_session().get_service_model("ecs")


def api_request(operation: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation properties -> the ECS API request ``operation`` takes (names and types)."""
    shape = _ECS_MODEL.operation_model(operation).input_shape
    return _convert(shape, dict(properties))


def _convert(shape: Any, value: Any) -> Any:
    if shape.type_name == "structure":
        members = {name.lower(): (name, member) for name, member in shape.members.items()}
        out = {}
        for key, item in value.items():
            assert key.lower() in members, f"{shape.name} has no member {key!r}"
            name, member = members[key.lower()]
            out[name] = _convert(member, item)
        return out
    if shape.type_name == "list":
        return [_convert(shape.member, item) for item in value]
    if shape.type_name == "map":
        return {k: _convert(shape.value, v) for k, v in value.items()}
    if shape.type_name in ("integer", "long"):
        return int(value)
    if shape.type_name == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value if shape.type_name != "string" else str(value)


def without_no_value(value: Any) -> Any:
    """moto leaves ``!Ref AWS::NoValue`` in a list as null; CloudFormation drops the entry."""
    if isinstance(value, list):
        return [without_no_value(v) for v in value if v is not None]
    if isinstance(value, dict):
        return {k: without_no_value(v) for k, v in value.items()}
    return value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _handlers() -> dict[str, Any]:
    from moto.cloudformation.parsing import CloudFormationModel
    from moto.ecs.models import ecs_backends
    from moto.sqs.models import sqs_backends

    class Handler(CloudFormationModel):
        """Creation only: the tests never update or delete stacks."""

        TYPE, NAME = "", ""

        @classmethod
        def cloudformation_type(cls) -> str:  # type: ignore[override]
            return cls.TYPE

        @classmethod
        def cloudformation_name_type(cls) -> str:  # type: ignore[override]
            return cls.NAME

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def update_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            raise NotImplementedError

        @classmethod
        def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
            raise NotImplementedError

    class Cluster(Handler):
        TYPE, NAME = "AWS::ECS::Cluster", "ClusterName"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
        ) -> Any:
            request = api_request("CreateCluster", cloudformation_json["Properties"])
            request.setdefault("clusterName", resource_name)
            backend = ecs_backends[account_id][region_name]
            return backend.create_cluster(**{_snake(k): v for k, v in request.items()})

    class TaskDefinition(Handler):
        TYPE, NAME = "AWS::ECS::TaskDefinition", "Family"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
        ) -> Any:
            request = api_request("RegisterTaskDefinition", cloudformation_json["Properties"])
            backend = ecs_backends[account_id][region_name]
            return backend.register_task_definition(**{_snake(k): v for k, v in request.items()})

    class QueuePolicy(Handler):
        TYPE = "AWS::SQS::QueuePolicy"

        def __init__(self, name: str):
            self.name = name

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
        ) -> Any:
            properties = cloudformation_json["Properties"]
            for url in properties["Queues"]:
                sqs_backends[account_id][region_name].set_queue_attributes(
                    url.rsplit("/", 1)[-1], {"Policy": json.dumps(properties["PolicyDocument"])}
                )
            return cls(resource_name)

    class KmsKey(Handler):
        TYPE = "AWS::KMS::Key"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
        ) -> Any:
            from moto.kms.models import kms_backends

            properties = cloudformation_json["Properties"]
            key = kms_backends[account_id][region_name].create_key(
                policy=json.dumps(without_no_value(properties["KeyPolicy"])),
                key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
                key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
                description=properties.get("Description", ""),
                tags=properties.get("Tags", []),
            )
            key.key_rotation_status = str(properties.get("EnableKeyRotation", False)).lower() == "true"
            return key

    return {handler.TYPE: handler for handler in (Cluster, TaskDefinition, QueuePolicy, KmsKey)}


@pytest.fixture
def complete_moto_cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's CloudFormation with the four handlers above, for one test."""
    from moto.cloudformation import parsing
    from moto.ecs.models import EC2ContainerServiceBackend

    model_map = {**parsing.get_model_map(), **_handlers()}
    monkeypatch.setattr(parsing, "get_model_map", lambda: model_map)
    monkeypatch.setattr(
        EC2ContainerServiceBackend,
        "_calculate_task_resource_requirements",
        staticmethod(_with_task_memory(EC2ContainerServiceBackend._calculate_task_resource_requirements)),
    )
    yield


def _with_task_memory(calculate: Any) -> Any:
    """moto's resource sum, with a container that sets no memory counted at its task's memory."""

    def requirements(task_definition: Any) -> dict[str, Any]:
        containers = task_definition.container_definitions
        if all(c.get("memory") or c.get("memoryReservation") for c in containers):
            return dict(calculate(task_definition))
        proxy = copy.copy(task_definition)
        proxy.container_definitions = [
            c
            if c.get("memory") or c.get("memoryReservation")
            else {**c, "memory": int(task_definition.memory)}
            for c in containers
        ]
        return dict(calculate(proxy))

    return requirements


def aws_clients(moto_url: str, *services: str) -> dict[str, Any]:
    import boto3

    return {s: boto3.client(s, endpoint_url=moto_url, region_name=REGION) for s in services}  # type: ignore[call-overload]


def network(moto_url: str) -> dict[str, str]:
    """A VPC (DNS host names on: moto's Fargate RunTask needs them), a subnet, a security group."""
    c = aws_clients(moto_url, "ec2")
    vpc = c["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    c["ec2"].modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = c["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = c["ec2"].create_security_group(
        GroupName=f"tasks-{uuid.uuid4().hex[:6]}", Description="airflow tasks", VpcId=vpc
    )["GroupId"]
    return {"vpc": vpc, "subnet": subnet, "sg": group}


def deploy(moto_url: str, stack: str, net: Mapping[str, str], **parameters: str) -> dict[str, Any]:
    """``aws cloudformation deploy`` of the template into moto; the stack's description."""
    values = {
        "WorkerImage": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/airflow-ecs-worker:3.3.2-python3.11",
        "ExecutionApiServerUrl": "https://airflow-api.internal:8080/execution/",
        "Subnets": net["subnet"],
        "SecurityGroups": net["sg"],
        **parameters,
    }
    cfn = aws_clients(moto_url, "cloudformation")["cloudformation"]
    cfn.create_stack(
        StackName=stack,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    description: dict[str, Any] = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert description["StackStatus"] == "CREATE_COMPLETE", description
    return description


def outputs(description: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs") or []}
