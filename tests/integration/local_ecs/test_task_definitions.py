"""Task definitions on the local endpoint as managed task definitions use them: registration with tags,
describe with TAGS, tags on definitions, ECS's rules and denials, the modify bucket, what a task ran with."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from ecs_executor.local_ecs import LocalEcs
from tests.integration.local_ecs.helpers import (
    CONTAINER,
    NETWORK,
    error_code,
    fargate_definition,
    make_client,
    register,
    run,
)

ROLE = "arn:aws:iam::123456789012:role/task"


def test_register_with_tags_describe_with_tags_and_tag_again(client: Any) -> None:
    arn = register(
        client, ["true"], family="d-x0123", tags=[{"key": "ecs-executor:managed", "value": "true"}]
    )
    answer = client.describe_task_definition(taskDefinition="d-x0123", include=["TAGS"])
    assert answer["taskDefinition"]["taskDefinitionArn"] == arn
    assert answer["tags"] == [{"key": "ecs-executor:managed", "value": "true"}]
    assert "tags" not in client.describe_task_definition(taskDefinition=arn)
    client.tag_resource(resourceArn=arn, tags=[{"key": "ecs-executor:last-used", "value": "1700000000"}])
    tags = client.list_tags_for_resource(resourceArn=arn)["tags"]
    assert {t["key"] for t in tags} == {"ecs-executor:managed", "ecs-executor:last-used"}
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.describe_task_definition(taskDefinition="never-registered")
    assert error_code(excinfo) == "ClientException"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"runtimePlatform": {"cpuArchitecture": "ARM32"}}, "Invalid runtimePlatform.cpuArchitecture"),
        (
            {"runtimePlatform": {"operatingSystemFamily": "BEOS"}},
            "Invalid runtimePlatform.operatingSystemFamily",
        ),
        ({"tags": [{"key": "aws:reserved", "value": "x"}]}, "reserved"),
        ({"tags": [{"key": f"k{i}", "value": "v"} for i in range(51)]}, "50"),
    ],
)
def test_register_refuses_what_ecs_refuses(client: Any, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError, match=message):
        register(client, ["true"], family="bad", **extra)


def test_gpu_is_refused_on_fargate(client: Any) -> None:
    container = {
        "name": CONTAINER,
        "image": "python:3.11",
        "resourceRequirements": [{"type": "GPU", "value": "1"}],
    }
    with pytest.raises(botocore.exceptions.ClientError, match="GPU"):
        fargate_definition(client, containerDefinitions=[container])


def test_launch_records_hold_what_each_task_ran_with(lecs: LocalEcs, client: Any) -> None:
    container = {
        "name": CONTAINER,
        "image": "repo/arm:1",
        "memory": 512,
        "command": ["true"],
        "resourceRequirements": [{"type": "GPU", "value": "2"}],
    }
    definition = register(
        client, family="arm", containerDefinitions=[container], runtimePlatform={"cpuArchitecture": "ARM64"}
    )
    task = run(client, taskDefinition=definition, overrides={"cpu": "512", "memory": "1024"})
    (record,) = [r for r in lecs.launch_records() if r["taskArn"] == task]
    assert record["containers"] == {CONTAINER: {"image": "repo/arm:1", "gpu": "2"}}
    assert record["runtimePlatform"] == {"cpuArchitecture": "ARM64"}
    assert (record["cpu"], record["memory"]) == ("512", "1024")
    assert record["taskDefinitionArn"] == definition and record["launchType"] == "EC2"
    described = client.describe_tasks(cluster="local", tasks=[task])["tasks"][0]
    assert {"name": "ecs.cpu-architecture", "value": "arm64"} in described["attributes"]


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("ecs:RegisterTaskDefinition", {}),
        ("iam:PassRole", {"taskRoleArn": ROLE}),
        ("ecs:TagResource", {"tags": [{"key": "k", "value": "v"}]}),
    ],
)
def test_denied_actions_answer_as_ecs(
    lecs: LocalEcs, client: Any, action: str, extra: dict[str, Any]
) -> None:
    lecs.configure(deny_actions=action)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        register(client, ["true"], family="denied", **extra)
    assert error_code(excinfo) == "AccessDeniedException"
    assert f"is not authorized to perform: {action} on resource" in str(excinfo.value)
    lecs.configure(deny_actions="")
    register(client, ["true"], family="denied", **extra)


def test_pass_role_is_checked_by_run_task_too(lecs: LocalEcs, client: Any) -> None:
    register(client, ["true"], family="roles", executionRoleArn=ROLE)
    lecs.configure(deny_actions="iam:PassRole")
    with pytest.raises(botocore.exceptions.ClientError, match="iam:PassRole"):
        client.run_task(cluster="local", taskDefinition="roles")


def test_unknown_denied_action_is_refused_naming_the_allowed_ones(lecs: LocalEcs) -> None:
    with pytest.raises(ValueError, match="iam:PassRole"):
        lecs.configure(deny_actions="s3:GetObject")


def test_modify_bucket_is_ecs_shaped_and_a_knob(lecs: LocalEcs) -> None:
    assert lecs.url is not None
    lecs.configure(throttle=True)
    ecs = make_client(lecs.url, retries=1)
    answers = []
    for i in range(25):
        try:
            register(ecs, ["true"], family=f"f{i}")
            answers.append("ok")
        except botocore.exceptions.ClientError as exc:
            answers.append(exc.response["Error"]["Code"])
    assert answers[:20] == ["ok"] * 20 and "ThrottlingException" in answers[20:]  # burst 20, then 1/s
    lecs.configure(throttle_overrides='{"task_definition_modify": [100, 100]}')
    register(ecs, ["true"], family="after")


def test_launch_records_hold_ephemeral_storage(lecs: LocalEcs, client: Any) -> None:
    definition = fargate_definition(client, ephemeralStorage={"sizeInGiB": 30})
    plain = run(client, taskDefinition=definition, launchType="FARGATE", networkConfiguration=NETWORK)
    bigger = run(
        client,
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration=NETWORK,
        overrides={"ephemeralStorage": {"sizeInGiB": 50}},
    )
    records = {r["taskArn"]: r for r in lecs.launch_records()}
    assert records[plain]["ephemeralStorageGiB"] == 30 and records[bigger]["ephemeralStorageGiB"] == 50
    assert records[bigger]["launchType"] == "FARGATE"
    described = client.describe_tasks(cluster="local", tasks=[bigger])["tasks"][0]
    assert described["ephemeralStorage"] == {"sizeInGiB": 50}
