"""build(): exactly what RunTask receives, per task; and the limits a task must respect."""

from __future__ import annotations

import json

import pytest

from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.request.run_task import (
    MAX_CLIENT_TOKEN,
    InvalidTaskConfig,
    NoQueueProfile,
    RunTaskBuilder,
    TryIdentity,
    client_token,
    identity_tags,
    new_launch_id,
    started_by,
    workload_command,
)

SETTINGS = settings_from_mapping(
    {
        "cluster": "c",
        "container_name": "w",
        "region_name": "us-east-1",
        "task_definition": "td:3",
        "subnets": "subnet-1",
        "run_task_kwargs": json.dumps(
            {"tags": [{"key": "team", "value": "data"}], "propagateTags": "TASK_DEFINITION"}
        ),
    }
)
IDENT = TryIdentity("my_dag", "my_task", "manual__2026-11-25T10:00:00+00:00", 2, 5)
LID = "5f0c" * 8  # a launch id as new_launch_id() makes them
CMD = workload_command('{"token": "x"}')


def test_build_returns_exactly_the_run_task_arguments() -> None:
    builder = RunTaskBuilder(SETTINGS, extra_env={"V": "1"})
    kwargs = builder.build(IDENT, CMD, launch_id=LID)
    tags = kwargs.pop("tags")
    assert kwargs == {
        "cluster": "c",
        "clientToken": client_token(LID, 1),
        "count": 1,
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": "w",
                    "command": CMD,
                    "environment": [
                        {"name": "AIRFLOW_IS_EXECUTOR_CONTAINER", "value": "true"},
                        {"name": "V", "value": "1"},
                    ],
                }
            ]
        },
        "propagateTags": "TASK_DEFINITION",
        "startedBy": "airflow-ecs-executor",
        "taskDefinition": "td:3",
    }
    assert {"key": "team", "value": "data"} in tags
    assert {"key": "airflow:run_id", "value": "manual__2026-11-25T10:00:00+00:00"} in tags
    assert {"key": "airflow:map_index", "value": "5"} in tags
    assert {"key": "airflow:try_number", "value": "2"} in tags


def test_executor_config_merges_last_and_by_container_name() -> None:
    builder = RunTaskBuilder(SETTINGS)
    kwargs = builder.build(
        IDENT,
        CMD,
        launch_id=LID,
        executor_config={
            "overrides": {
                "cpu": "1024",
                "containerOverrides": [
                    {"name": "w", "memory": 4096, "environment": [{"name": "X", "value": "1"}]},
                    {"name": "sidecar", "cpu": 128},
                ],
            },
        },
    )
    ours, sidecar = kwargs["overrides"]["containerOverrides"]
    assert ours["name"] == "w" and ours["memory"] == 4096 and ours["command"] == CMD
    assert [e["name"] for e in ours["environment"]] == ["X", "AIRFLOW_IS_EXECUTOR_CONTAINER"]
    assert sidecar == {"name": "sidecar", "cpu": 128}
    assert kwargs["overrides"]["cpu"] == "1024"


@pytest.mark.parametrize(
    ("executor_config", "text"),
    [
        ({"count": 3}, "must not set count"),
        ({"clientToken": "x"}, "must not set clientToken"),
        (
            {"overrides": {"containerOverrides": [{"name": "w", "command": ["bash"]}]}},
            "must not override the command",
        ),
        ({"overides": {}}, 'Unknown parameter in input: "overides"'),
        ({"overrides": {"cpu": 1024}}, "Invalid type for parameter overrides.cpu"),
        ({"tags": [{"key": f"k{i}", "value": "v"} for i in range(50)]}, "ECS allows 50 per task"),
        (
            {
                "overrides": {
                    "containerOverrides": [
                        {"name": "w", "environment": [{"name": "BIG", "value": "x" * 8200}]}
                    ]
                }
            },
            "over ECS's limit of 8192",
        ),
    ],
)
def test_bad_executor_config_is_refused_with_a_reason(executor_config, text) -> None:
    with pytest.raises(InvalidTaskConfig, match=None) as err:
        RunTaskBuilder(SETTINGS).build(IDENT, CMD, executor_config, launch_id=LID)
    assert text in str(err.value)


def test_executor_config_must_be_a_dict() -> None:
    with pytest.raises(InvalidTaskConfig, match="must be a dict"):
        RunTaskBuilder(SETTINGS).build(IDENT, CMD, ["x"], launch_id=LID)  # type: ignore[arg-type]


def test_client_token_is_unique_per_queued_workload_and_stable_per_attempt() -> None:
    # Airflow queues the same try again (deferred task resuming, reschedule-mode sensor): the try's key
    # repeats, the launch id does not, so ECS never sees a reused token with a different request.
    first, requeued = new_launch_id(), new_launch_id()
    assert first != requeued
    assert client_token(first, 1) == client_token(first, 1)  # a retried RunTask gets the same task back
    assert client_token(first, 1) != client_token(first, 2)  # a relaunch gets a new one
    assert client_token(first, 1) != client_token(requeued, 1)
    assert len(client_token(first, 123456)) <= MAX_CLIENT_TOKEN
    builder = RunTaskBuilder(SETTINGS)
    kwargs = builder.build(IDENT, CMD, launch_id=first)
    again = builder.build(IDENT, CMD, launch_id=requeued)
    assert kwargs["clientToken"] != again["clientToken"]
    assert {k: v for k, v in again.items() if k != "clientToken"} == {
        k: v for k, v in kwargs.items() if k != "clientToken"
    }


def test_tags_and_started_by_follow_ecs_length_rules() -> None:
    long_id = TryIdentity("d" * 300, "t", "r", 1)
    for tag in identity_tags(long_id):
        assert len(tag["key"]) <= 128 and len(tag["value"]) <= 256
    assert started_by("team a!") == "airflow-ecs-executor/team_a_"
    assert len(started_by("x" * 300)) == 128


PROFILED = settings_from_mapping(
    {
        "cluster": "c",
        "container_name": "w",
        "region_name": "us-east-1",
        "task_definition": "td:3",
        "launch_type": "FARGATE",
        "subnets": "subnet-1",
        "queue_profiles": json.dumps(
            {"gpu": {"cluster": "gpu", "task_definition": "gpu-td", "launch_type": "EC2"}}
        ),
    }
)


def test_queue_picks_the_profile_and_the_default_queue_the_base() -> None:
    builder = RunTaskBuilder(PROFILED, default_queue="default")
    gpu = builder.build(IDENT, CMD, launch_id=LID, queue="gpu")
    assert (gpu["cluster"], gpu["taskDefinition"], gpu["launchType"]) == ("gpu", "gpu-td", "EC2")
    assert "platformVersion" not in gpu
    for queue in ("default", None):  # None: a callback
        base = builder.build(IDENT, CMD, launch_id=LID, queue=queue)
        assert (base["cluster"], base["launchType"], base["platformVersion"]) == ("c", "FARGATE", "LATEST")
    with pytest.raises(NoQueueProfile, match="queue 'big' has no entry in queue_profiles; configured: gpu"):
        builder.build(IDENT, CMD, launch_id=LID, queue="big")
    assert builder.clusters() == ["c", "gpu"]
    # Without profiles, every queue runs on the base options (Celery-style queue names are common).
    assert RunTaskBuilder(SETTINGS).build(IDENT, CMD, launch_id=LID, queue="big")["cluster"] == "c"


def test_executor_config_launch_target_replaces_the_configured_one() -> None:
    builder = RunTaskBuilder(PROFILED)
    spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    kwargs = builder.build(IDENT, CMD, {"capacityProviderStrategy": spot}, launch_id=LID)
    assert kwargs["capacityProviderStrategy"] == spot and "launchType" not in kwargs
    ec2 = builder.build(IDENT, CMD, {"launchType": "EC2"}, launch_id=LID)
    assert ec2["launchType"] == "EC2" and "platformVersion" not in ec2
    with pytest.raises(InvalidTaskConfig, match="sets both launchType and capacityProviderStrategy"):
        builder.build(IDENT, CMD, {"launchType": "EC2", "capacityProviderStrategy": spot}, launch_id=LID)
    elsewhere = builder.build(IDENT, CMD, {"cluster": "other"}, launch_id=LID, queue="gpu")
    assert elsewhere["cluster"] == "other" and elsewhere["taskDefinition"] == "gpu-td"
