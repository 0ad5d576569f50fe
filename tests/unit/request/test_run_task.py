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
from ecs_executor.request.task_settings import Derivation

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
        # The typed keys (request/task_settings.py), one row each.
        ({"image": "a b"}, "executor_config image = 'a b': an image is 1-255 letters"),
        ({"cpu": 100}, "executor_config cpu = 100: task cpu must be 128-196608 CPU units"),
        ({"memory": -1}, "executor_config memory = -1: task memory must be a positive number of MiB"),
        (
            {"ephemeral_storage": 250},
            "executor_config ephemeral_storage = 250: ephemeral storage must be 21-200",
        ),
        ({"runtime_platform": {"cpu_architecture": "RISCV"}}, "must be one of X86_64, ARM64"),
        ({"gpu": 0}, "executor_config gpu = 0: gpu must be a whole number of GPUs, at least 1"),
        ({"environment": {"A": 1}}, "executor_config environment.A = 1: Input should be a valid string"),
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


TYPED = settings_from_mapping(
    {
        "cluster": "c",
        "container_name": "w",
        "region_name": "us-east-1",
        "task_definition": "td:3",
        "launch_type": "FARGATE",
        "subnets": "subnet-1",
        "queue_profiles": json.dumps(
            {
                "big": {
                    "cpu": 2048,
                    "memory": 8192,
                    "ephemeral_storage": 40,
                    "image": "acme/big:1",
                    "environment": {"SIZE": "big", "TIER": "profile"},
                },
                "gpu": {"launch_type": "EC2", "task_definition": "gpu-td", "gpu": 1, "memory": 30000},
                "arm": {"runtime_platform": {"cpu_architecture": "ARM64"}},
            }
        ),
    }
)


def _ours(kwargs):
    (ours,) = [c for c in kwargs["overrides"]["containerOverrides"] if c["name"] == "w"]
    return ours


@pytest.mark.parametrize(
    ("executor_config", "overrides"),
    [
        ({"cpu": 1024, "memory": 4096}, {"cpu": "1024", "memory": "4096"}),
        ({"cpu": 16384, "memory": 122880}, {"cpu": "16384", "memory": "122880"}),
        ({"ephemeral_storage": 50}, {"ephemeralStorage": {"sizeInGiB": 50}}),
        ({"image": "acme/other:2"}, {}),
        ({"runtime_platform": {"cpu_architecture": "ARM64"}}, {}),
    ],
)
def test_each_typed_key_in_the_run_task_request(executor_config, overrides) -> None:
    builder = RunTaskBuilder(TYPED)
    kwargs = builder.build(IDENT, CMD, executor_config, launch_id=LID)
    extra = {k: v for k, v in kwargs["overrides"].items() if k != "containerOverrides"}
    assert extra == overrides
    for key in executor_config:  # the typed keys never appear as RunTask keys
        assert key not in kwargs
    assert kwargs["taskDefinition"] == "td:3"  # the engine swaps in a derived definition
    assert builder.build(IDENT, CMD, {"overrides": {}, **executor_config}, launch_id=LID) == kwargs


def test_typed_environment_joins_our_containers_environment() -> None:
    kwargs = RunTaskBuilder(TYPED, extra_env={"V": "1"}).build(
        IDENT,
        CMD,
        {
            "environment": {"BATCH": "large"},
            "overrides": {
                "containerOverrides": [{"name": "w", "environment": [{"name": "X", "value": "1"}]}]
            },
        },
        launch_id=LID,
    )
    names = [e["name"] for e in _ours(kwargs)["environment"]]
    assert names == ["X", "BATCH", "AIRFLOW_IS_EXECUTOR_CONTAINER", "V"]
    assert _ours(kwargs)["command"] == CMD


def test_typed_gpu_on_ec2_builds_and_derives() -> None:
    builder = RunTaskBuilder(TYPED)
    kwargs = builder.build(IDENT, CMD, {"gpu": 2, "launchType": "EC2"}, launch_id=LID)
    assert "gpu" not in kwargs and "resourceRequirements" not in _ours(kwargs)
    assert builder.derivation({"gpu": 2, "launchType": "EC2"}, None) == Derivation(gpu=2)


def test_derivation_is_none_without_image_platform_or_gpu() -> None:
    builder = RunTaskBuilder(TYPED)
    assert builder.derivation(None, None) is None
    assert builder.derivation({}, "default") is None
    assert builder.derivation({"cpu": 1024, "memory": 2048, "environment": {"A": "1"}}, None) is None
    assert builder.derivation({"overrides": {"cpu": "1024"}}, None) is None


def test_derivation_layers_the_tasks_keys_over_its_profiles() -> None:
    builder = RunTaskBuilder(TYPED)
    assert builder.derivation(None, "big") == Derivation(image="acme/big:1")
    assert builder.derivation({"image": "acme/mine:3"}, "big") == Derivation(image="acme/mine:3")
    assert builder.derivation(
        {"runtime_platform": {"operating_system_family": "LINUX"}}, "arm"
    ) == Derivation(cpu_architecture="ARM64", operating_system_family="LINUX")
    assert builder.derivation(None, "gpu") == Derivation(gpu=1)
    assert builder.derivation({"gpu": 4}, "gpu") == Derivation(gpu=4)


@pytest.mark.parametrize(
    ("executor_config", "queue", "text"),
    [
        ({"gpu": 0}, None, "executor_config gpu = 0: gpu must be a whole number of GPUs, at least 1"),
        ({"image": "no spaces"}, None, "executor_config image = 'no spaces'"),
        ({"cpu": 1024, "overrides": {"cpu": "2048"}}, None, "cpu = 1024 contradicts overrides.cpu"),
        ({}, "nope", "queue 'nope' has no entry in queue_profiles"),
        ("not a dict", None, "must be a dict"),
    ],
)
def test_derivation_refuses_what_build_refuses(executor_config, queue, text) -> None:
    builder = RunTaskBuilder(TYPED)
    with pytest.raises(InvalidTaskConfig) as derivation_err:
        builder.derivation(executor_config, queue)
    with pytest.raises(InvalidTaskConfig) as build_err:
        builder.build(IDENT, CMD, executor_config, launch_id=LID, queue=queue)
    assert text in str(derivation_err.value) and text in str(build_err.value)


def test_a_profiles_typed_keys_apply_and_the_tasks_win() -> None:
    builder = RunTaskBuilder(TYPED)
    big = builder.build(IDENT, CMD, launch_id=LID, queue="big")
    assert big["overrides"]["cpu"] == "2048" and big["overrides"]["memory"] == "8192"
    assert big["overrides"]["ephemeralStorage"] == {"sizeInGiB": 40}
    assert {"name": "SIZE", "value": "big"} in _ours(big)["environment"]
    mine = builder.build(
        IDENT,
        CMD,
        {"memory": 16384, "ephemeral_storage": 100, "environment": {"TIER": "task"}},
        launch_id=LID,
        queue="big",
    )
    assert (mine["overrides"]["cpu"], mine["overrides"]["memory"]) == ("2048", "16384")
    assert mine["overrides"]["ephemeralStorage"] == {"sizeInGiB": 100}
    environment = {e["name"]: e["value"] for e in _ours(mine)["environment"]}
    assert (environment["SIZE"], environment["TIER"]) == ("big", "task")
    # The profile's cpu/memory are task-level now; its EC2 launch type lets memory stand alone.
    gpu = builder.build(IDENT, CMD, launch_id=LID, queue="gpu")
    assert gpu["overrides"]["memory"] == "30000" and "memory" not in _ours(gpu)


@pytest.mark.parametrize(
    ("executor_config", "queue", "text"),
    [
        ({"memory": 3000}, None, "executor_config: memory = 3000 needs cpu too on Fargate"),
        ({"cpu": 1024, "memory": 3000}, None, "is not a Fargate size; with cpu 1024 Fargate takes memory"),
        ({"memory": 100000}, "big", "cpu = 2048, memory = 100000 is not a Fargate size"),
        ({"gpu": 1}, None, "gpu = 1: Fargate has no GPUs"),
        ({"gpu": 1, "launchType": "FARGATE"}, "gpu", "Fargate has no GPUs"),  # the task's target wins
        (
            {"launchType": "EC2"},
            "big",
            "queue_profiles['big']: ephemeral_storage = 40 applies only to Fargate",
        ),
        (
            {"launchType": "EC2", "environment": {"X": "1"}},
            "big",
            "executor_config over queue_profiles['big']: ephemeral_storage = 40 applies only to Fargate",
        ),
        (
            {"ephemeral_storage": 30, "launchType": "EC2"},
            None,
            "ephemeral_storage = 30 applies only to Fargate",
        ),
        (
            {
                "gpu": 2,
                "overrides": {
                    "containerOverrides": [
                        {"name": "w", "resourceRequirements": [{"type": "GPU", "value": "1"}]}
                    ]
                },
            },
            "gpu",
            "gpu = 2 contradicts the GPU resourceRequirements = '1'",
        ),
        (
            {
                "environment": {"A": "1"},
                "overrides": {
                    "containerOverrides": [{"name": "w", "environment": [{"name": "A", "value": "2"}]}]
                },
            },
            None,
            "environment['A'] = '1' contradicts",
        ),
        (
            {"ephemeral_storage": 30, "overrides": {"ephemeralStorage": {"sizeInGiB": 31}}},
            None,
            "contradicts overrides.ephemeralStorage",
        ),
        ({"imgae": "x"}, None, "or one of the executor's own keys: image, cpu, memory, ephemeral_storage"),
        ({"environment": {"AIRFLOW_IS_EXECUTOR_CONTAINER": "false"}}, None, "is set by the executor itself"),
        (
            {"environment": {"BIG": "x" * 8200}},
            None,
            "over ECS's limit of 8192",
        ),
    ],
)
def test_typed_keys_are_checked_against_the_layered_request(executor_config, queue, text) -> None:
    with pytest.raises(InvalidTaskConfig) as err:
        RunTaskBuilder(TYPED).build(IDENT, CMD, executor_config, launch_id=LID, queue=queue)
    assert text in str(err.value)


def test_when_the_cluster_default_decides_only_target_free_rules_apply() -> None:
    # No launch type anywhere: the cluster's default capacity provider strategy (or our Fargate fallback)
    # decides later, so Fargate-only pairs and GPU rules are left to ECS; ranges are still checked.
    builder = RunTaskBuilder(SETTINGS)
    kwargs = builder.build(IDENT, CMD, {"memory": 3000, "gpu": 1, "ephemeral_storage": 30}, launch_id=LID)
    assert kwargs["overrides"]["memory"] == "3000" and "launchType" not in kwargs
    with pytest.raises(InvalidTaskConfig, match="ephemeral storage must be 21-200 GiB"):
        builder.build(IDENT, CMD, {"ephemeral_storage": 300}, launch_id=LID)


def test_check_target_applies_the_rules_once_the_cluster_default_is_known() -> None:
    builder = RunTaskBuilder(SETTINGS)
    kwargs = builder.build(IDENT, CMD, {"gpu": 1}, launch_id=LID)
    builder.check_target(kwargs, {"gpu": 1}, None, [{"capacityProvider": "ec2-asg"}])
    with pytest.raises(InvalidTaskConfig, match="Fargate has no GPUs"):
        builder.check_target(kwargs, {"gpu": 1}, None, [{"capacityProvider": "FARGATE_SPOT"}])
    with pytest.raises(InvalidTaskConfig, match="Fargate has no GPUs"):  # what fill_launch_target sends
        builder.check_target({**kwargs, "launchType": "FARGATE"}, {"gpu": 1}, None, None)
    windows = {"runtime_platform": {"operating_system_family": "WINDOWS_SERVER_2022_CORE"}}
    with pytest.raises(InvalidTaskConfig, match="FARGATE_SPOT runs only Linux tasks"):
        builder.check_target(kwargs, windows, None, [{"capacityProvider": "FARGATE_SPOT"}])
    builder.check_target(kwargs, None, None, [{"capacityProvider": "FARGATE"}])  # nothing typed
