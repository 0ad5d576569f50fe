"""The [aws_ecs_executor] model: precedence, parsing, and one clear message per bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecs_executor.config.settings import EcsExecutorConfigError, settings_from_mapping
from ecs_executor.config.values import env_var_name
from ecs_executor.request.ecs_rules import EC2_RUN_TASK_RATE, FARGATE_RUN_TASK_RATE
from ecs_executor.request.layering import deep_merge

BASE = {"cluster": "c", "container_name": "w", "region_name": "eu-west-1", "task_definition": "td"}


def settings(**overrides: Any) -> Any:
    values = {**BASE, **overrides}
    return settings_from_mapping({k: v for k, v in values.items() if v is not None})


# (options changed from BASE, option named in the message, text that must appear)
BAD_INPUTS: list[tuple[dict[str, Any], str, str]] = [
    ({"cluster": None}, "CLUSTER", "is required but not set"),
    ({"container_name": None}, "CONTAINER_NAME", "is required but not set"),
    ({"region_name": None}, "REGION_NAME", "is required but not set"),
    ({"cluster": "   "}, "CLUSTER", "at least 1 character"),
    ({"launch_type": "LAMBDA"}, "LAUNCH_TYPE", "must be one of FARGATE, EC2, EXTERNAL"),
    ({"capacity_provider_strategy": "[{"}, "CAPACITY_PROVIDER_STRATEGY", "line 1 column 3 (char 2)"),
    (
        {"capacity_provider_strategy": '{"capacityProvider": "X"}'},
        "CAPACITY_PROVIDER_STRATEGY",
        "must be a JSON list",
    ),
    ({"capacity_provider_strategy": '[{"weight": 1}]'}, "CAPACITY_PROVIDER_STRATEGY", "Field required"),
    (
        {"capacity_provider_strategy": '[{"capacityProvider": "A", "weight": 5000}]'},
        "CAPACITY_PROVIDER_STRATEGY",
        "less than or equal to 1000",
    ),
    (
        {"capacity_provider_strategy": '[{"capacityProvider": "A", "wieght": 1}]'},
        "CAPACITY_PROVIDER_STRATEGY",
        "Extra inputs are not permitted",
    ),
    ({"assign_public_ip": "maybe"}, "ASSIGN_PUBLIC_IP", "valid boolean"),
    ({"subnets": ",".join(f"subnet-{i}" for i in range(17))}, "SUBNETS", "at most 16 subnet IDs"),
    ({"subnets": "subnet-1,vpc-2"}, "SUBNETS", "must start with 'subnet-'"),
    ({"subnets": "subnet-1,subnet-1"}, "SUBNETS", "must not repeat"),
    ({"security_groups": "sg-1,sg-2,sg-3,sg-4,sg-5,sg-6"}, "SECURITY_GROUPS", "at most 5 security group IDs"),
    ({"security_groups": "default"}, "SECURITY_GROUPS", "must start with 'sg-'"),
    ({"run_task_kwargs": '{"cluster": "x",}'}, "RUN_TASK_KWARGS", "not valid JSON: Expecting property name"),
    ({"run_task_kwargs": "[1, 2]"}, "RUN_TASK_KWARGS", "must be a JSON object, got a JSON list"),
    ({"run_task_kwargs": '{"count": 2}'}, "RUN_TASK_KWARGS", "must not set count"),
    (
        {"run_task_kwargs": '{"lanchType": "EC2"}'},
        "RUN_TASK_KWARGS",
        'Unknown parameter in input: "lanchType"',
    ),
    (
        {"run_task_kwargs": '{"overrides": {"containerOverride": []}}'},
        "RUN_TASK_KWARGS",
        'Unknown parameter in overrides: "containerOverride"',
    ),
    (
        {"run_task_kwargs": '{"enableExecuteCommand": "yes"}'},
        "RUN_TASK_KWARGS",
        "Invalid type for parameter enableExecuteCommand",
    ),
    (
        {"run_task_kwargs": '{"taskDefinition": "other:1"}'},
        "TASK_DEFINITION",
        "conflicts with taskDefinition",
    ),
    (
        {
            "run_task_kwargs": json.dumps(
                {"overrides": {"containerOverrides": [{"name": "w", "command": ["x"]}]}}
            )
        },
        "RUN_TASK_KWARGS",
        "sets the command of container 'w'",
    ),
    ({"task_definition": None}, "TASK_DEFINITION", "is required but not set"),
    (
        {"launch_type": "EC2", "capacity_provider_strategy": '[{"capacityProvider": "A"}]'},
        "LAUNCH_TYPE",
        "cannot be combined with capacity_provider_strategy",
    ),
    (
        {
            "run_task_kwargs": '{"launchType": "EC2"}',
            "capacity_provider_strategy": '[{"capacityProvider": "A"}]',
        },
        "RUN_TASK_KWARGS",
        "run_task_kwargs.launchType",
    ),
    (
        {"launch_type": "EC2", "platform_version": "1.4.0"},
        "PLATFORM_VERSION",
        "applies only to Fargate tasks",
    ),
    (
        {"launch_type": "EXTERNAL", "assign_public_ip": "True", "subnets": "subnet-1"},
        "ASSIGN_PUBLIC_IP",
        "applies only to Fargate tasks",
    ),
    ({"assign_public_ip": "True"}, "ASSIGN_PUBLIC_IP", "needs subnets"),
    ({"max_run_task_attempts": "0"}, "MAX_RUN_TASK_ATTEMPTS", "greater than 0"),
    ({"max_run_task_attempts": "three"}, "MAX_RUN_TASK_ATTEMPTS", "valid integer"),
    ({"max_concurrent_calls": "-1"}, "MAX_CONCURRENT_CALLS", "greater than 0"),
    ({"max_concurrent_calls": "5000"}, "MAX_CONCURRENT_CALLS", "less than or equal to 1000"),
    ({"run_task_rate": "0"}, "RUN_TASK_RATE", "greater than 0"),
    ({"run_task_burst": "-5"}, "RUN_TASK_BURST", "greater than 0"),
    ({"schedulers_sharing_budget": "0"}, "SCHEDULERS_SHARING_BUDGET", "greater than or equal to 1"),
    ({"schedulers_sharing_budget": "two"}, "SCHEDULERS_SHARING_BUDGET", "integer"),
    ({"poll_interval": "0"}, "POLL_INTERVAL", "greater than 0"),
    ({"poll_interval": "soon"}, "POLL_INTERVAL", "valid number"),
    ({"shutdown_timeout": "-1"}, "SHUTDOWN_TIMEOUT", "greater than 0"),
    ({"check_health_on_startup": "perhaps"}, "CHECK_HEALTH_ON_STARTUP", "valid boolean"),
    ({"freeze_gc_on_start": "maybe"}, "FREEZE_GC_ON_START", "valid boolean"),
    ({"capacity_wait_seconds": "-1"}, "CAPACITY_WAIT_SECONDS", "greater than or equal to 0"),
    ({"relaunch_on_spot_interruption": "sometimes"}, "RELAUNCH_ON_SPOT_INTERRUPTION", "valid boolean"),
    ({"queue_profiles": '["gpu"]'}, "QUEUE_PROFILES", "must be a JSON object"),
    ({"queue_profiles": '{"gpu": {"clustr": "x"}}'}, "QUEUE_PROFILES", "Extra inputs are not permitted"),
    ({"queue_profiles": '{"gpu": {"launch_type": "GPU"}}'}, "QUEUE_PROFILES", "must be one of FARGATE"),
    ({"queue_profiles": '{"gpu": {"subnets": "vpc-1"}}'}, "QUEUE_PROFILES", "must start with 'subnet-'"),
    ({"queue_profiles": '{"gpu": {"memory": 0}}'}, "QUEUE_PROFILES", "task memory must be a positive number"),
    # The typed keys (request/task_settings.py): one row per key, the profile and key named.
    ({"queue_profiles": '{"gpu": {"image": "a b"}}'}, "QUEUE_PROFILES", "an image is 1-255 letters"),
    ({"queue_profiles": '{"gpu": {"cpu": 64}}'}, "QUEUE_PROFILES", "task cpu must be 128-196608 CPU units"),
    (
        {"queue_profiles": '{"gpu": {"cpu": "1024"}}'},
        "QUEUE_PROFILES",
        "valid integer (at queue_profiles.gpu.cpu)",
    ),
    (
        {"queue_profiles": '{"big": {"ephemeral_storage": 10}}'},
        "QUEUE_PROFILES",
        "ephemeral storage must be 21-200 GiB (Fargate only) (at queue_profiles.big.ephemeral_storage)",
    ),
    (
        {"queue_profiles": '{"arm": {"runtime_platform": {"cpu_architecture": "ARM"}}}'},
        "QUEUE_PROFILES",
        "must be one of X86_64, ARM64 (at queue_profiles.arm.runtime_platform.cpu_architecture)",
    ),
    (
        {"queue_profiles": '{"arm": {"runtime_platform": {"operating_system_family": "MACOS"}}}'},
        "QUEUE_PROFILES",
        "must be one of LINUX, WINDOWS_SERVER_2019_FULL",
    ),
    (
        {"queue_profiles": '{"gpu": {"gpu": 0}}'},
        "QUEUE_PROFILES",
        "gpu must be a whole number of GPUs, at least 1",
    ),
    (
        {"queue_profiles": '{"gpu": {"environment": {"AIRFLOW_IS_EXECUTOR_CONTAINER": "x"}}}'},
        "QUEUE_PROFILES",
        "is set by the executor itself",
    ),
    ({"queue_profiles": '{"gpu": {"environment": {"A": 1}}}'}, "QUEUE_PROFILES", "valid string"),
    (
        {
            "queue_profiles": json.dumps(
                {"gpu": {"launch_type": "EC2", "capacity_provider_strategy": [{"capacityProvider": "A"}]}}
            )
        },
        "QUEUE_PROFILES",
        "sets both launch_type and capacity_provider_strategy",
    ),
    (
        {"queue_profiles": '{"gpu": {"run_task_kwargs": {"enableExecuteCommand": "yes"}}}'},
        "QUEUE_PROFILES",
        "Invalid type for parameter enableExecuteCommand",
    ),
    (
        {"queue_profiles": '{"gpu": {"run_task_kwargs": {"count": 3}}}'},
        "QUEUE_PROFILES",
        "must not set count",
    ),
    ({"tracking_mode": "events"}, "TRACKING_MODE", "needs events_queue"),
    ({"tracking_mode": "push"}, "TRACKING_MODE", "'polling' or 'events'"),
    ({"events_queue": "my queue"}, "EVENTS_QUEUE", "neither an SQS queue URL nor a queue name"),
    ({"events_queue": "https://sqs.example/q"}, "EVENTS_QUEUE", "is not an SQS queue URL"),
    ({"events_receivers": "0"}, "EVENTS_RECEIVERS", "greater than or equal to 1"),
    ({"reconcile_interval": "2"}, "RECONCILE_INTERVAL", "greater than or equal to 5"),
    ({"orphan_sweep": "sometimes"}, "ORPHAN_SWEEP", "valid boolean"),
    ({"orphan_grace_seconds": "30"}, "ORPHAN_GRACE_SECONDS", "greater than or equal to 60"),
    ({"orphan_grace_seconds": "100000"}, "ORPHAN_GRACE_SECONDS", "less than or equal to 86400"),
    ({"orphan_grace_seconds": "ten minutes"}, "ORPHAN_GRACE_SECONDS", "valid number"),
    ({"orphan_sweep_interval": "1"}, "ORPHAN_SWEEP_INTERVAL", "greater than or equal to 5"),
    ({"orphan_sweep_interval": "7200"}, "ORPHAN_SWEEP_INTERVAL", "less than or equal to 3600"),
    ({"derived_definition_retention": "59"}, "DERIVED_DEFINITION_RETENTION", "greater than or equal to 60"),
    (
        {"derived_definition_retention": "31536001"},
        "DERIVED_DEFINITION_RETENTION",
        "less than or equal to 31536000",
    ),
    ({"derived_definition_retention": "a week"}, "DERIVED_DEFINITION_RETENTION", "valid number"),
    ({"derived_definition_keep": "-1"}, "DERIVED_DEFINITION_KEEP", "greater than or equal to 0"),
    ({"derived_definition_keep": "101"}, "DERIVED_DEFINITION_KEEP", "less than or equal to 100"),
    ({"derived_definition_keep": "1.5"}, "DERIVED_DEFINITION_KEEP", "valid integer"),
    (
        {"derived_definition_cleanup_interval": "30"},
        "DERIVED_DEFINITION_CLEANUP_INTERVAL",
        "greater than or equal to 60",
    ),
    (
        {"derived_definition_cleanup_interval": "86401"},
        "DERIVED_DEFINITION_CLEANUP_INTERVAL",
        "less than or equal to 86400",
    ),
    ({"workload_kms_key": "my-key"}, "WORKLOAD_KMS_KEY", "is not a KMS key identifier; expected a key ID"),
    ({"workload_kms_key": "alias/"}, "WORKLOAD_KMS_KEY", "an alias name (alias/NAME) or an alias ARN"),
    ({"workload_kms_key": "alias/bad name"}, "WORKLOAD_KMS_KEY", "is not a KMS key identifier"),
    (
        {"workload_kms_key": "arn:aws:kms:eu-west-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
        "WORKLOAD_KMS_KEY",
        "a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)",
    ),
    ({"workload_kms_key": "arn:aws:s3:::bucket"}, "WORKLOAD_KMS_KEY", "is not a KMS key identifier"),
    ({"workload_kms_key": "alias/aws/ebs"}, "WORKLOAD_KMS_KEY", "names an AWS managed key"),
    ({"workload_data_key_seconds": "59"}, "WORKLOAD_DATA_KEY_SECONDS", "greater than or equal to 60"),
    ({"workload_data_key_seconds": "3601"}, "WORKLOAD_DATA_KEY_SECONDS", "less than or equal to 3600"),
    ({"workload_data_key_seconds": "5 minutes"}, "WORKLOAD_DATA_KEY_SECONDS", "valid number"),
]


@pytest.mark.parametrize(
    ("changes", "option", "text"), BAD_INPUTS, ids=[f"{o}-{t[:30]}" for _, o, t in BAD_INPUTS]
)
def test_bad_input_gives_one_clear_message(changes: dict[str, Any], option: str, text: str) -> None:
    with pytest.raises(EcsExecutorConfigError) as err:
        settings(**changes)
    message = str(err.value)
    assert f"AIRFLOW__AWS_ECS_EXECUTOR__{option}" in message
    assert text in message
    assert "Traceback" not in message
    # The bad value itself is shown when there is one.
    for value in changes.values():
        if isinstance(value, str) and value.strip() and "is required" not in text and len(value) < 60:
            assert value.strip()[:20] in message or option in (
                "TASK_DEFINITION",
                "LAUNCH_TYPE",
                "ASSIGN_PUBLIC_IP",
                "PLATFORM_VERSION",
                "RUN_TASK_KWARGS",
            )


# A profile's typed keys judged in its layered request (launch target, the same layer's RunTask
# arguments): (options changed from BASE, text naming the profile, the key and its value).
BAD_PROFILE_LAYERING: list[tuple[dict[str, Any], str]] = [
    (
        {"launch_type": "FARGATE", "queue_profiles": '{"gpu": {"gpu": 1}}'},
        "['gpu']: gpu = 1: Fargate has no GPUs",
    ),
    (
        {"launch_type": "FARGATE", "queue_profiles": '{"big": {"memory": 3000}}'},
        "['big']: memory = 3000 needs cpu too on Fargate",
    ),
    (
        {"launch_type": "FARGATE", "queue_profiles": '{"big": {"cpu": 4096, "memory": 4096}}'},
        "['big']: cpu = 4096, memory = 4096 is not a Fargate size; with cpu 4096 Fargate takes memory "
        "8192-30720",
    ),
    (
        {"queue_profiles": '{"big": {"launch_type": "EC2", "ephemeral_storage": 50}}'},
        "['big']: ephemeral_storage = 50 applies only to Fargate tasks",
    ),
    (
        {"queue_profiles": '{"big": {"cpu": 1024, "run_task_kwargs": {"overrides": {"cpu": "512"}}}}'},
        "['big']: cpu = 1024 contradicts overrides.cpu = '512'; set one of them",
    ),
    (
        {
            "launch_type": "EC2",
            "run_task_kwargs": json.dumps(
                {
                    "overrides": {
                        "containerOverrides": [
                            {"name": "w", "resourceRequirements": [{"type": "GPU", "value": "1"}]}
                        ]
                    }
                }
            ),
            "queue_profiles": '{"gpu": {"gpu": 4}}',
        },
        "['gpu']: gpu = 4 contradicts the GPU resourceRequirements = '1' of container 'w'",
    ),
]


@pytest.mark.parametrize(
    ("changes", "text"), BAD_PROFILE_LAYERING, ids=[t[:40] for _, t in BAD_PROFILE_LAYERING]
)
def test_a_profiles_typed_keys_are_checked_layered_at_start_up(changes: dict[str, Any], text: str) -> None:
    with pytest.raises(EcsExecutorConfigError) as err:
        settings(**changes)
    (problem,) = err.value.problems
    assert problem.startswith("queue_profiles (AIRFLOW__AWS_ECS_EXECUTOR__QUEUE_PROFILES)[")
    assert text in problem


def test_a_profiles_typed_keys_that_fit_its_target_start() -> None:
    s = settings(
        launch_type="FARGATE",
        queue_profiles=json.dumps(
            {
                "big": {"cpu": 4096, "memory": 30720, "ephemeral_storage": 200, "image": "acme/big:1"},
                "gpu": {"launch_type": "EC2", "gpu": 2, "memory": 60000},
                "arm": {"runtime_platform": {"cpu_architecture": "ARM64"}, "environment": {"A": "1"}},
            }
        ),
    )
    profiles = s.profile_run_task_kwargs()
    assert profiles["big"]["overrides"] == {
        "cpu": "4096",
        "memory": "30720",
        "ephemeralStorage": {"sizeInGiB": 200},
    }
    assert profiles["gpu"]["overrides"] == {"memory": "60000"}
    assert profiles["arm"]["overrides"] == {
        "containerOverrides": [{"name": "w", "environment": [{"name": "A", "value": "1"}]}]
    }
    assert s.queue_profiles["big"].image == "acme/big:1" and "image" not in profiles["big"]


def test_bad_input_table_is_large_enough() -> None:
    assert len(BAD_INPUTS) >= 25


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(EcsExecutorConfigError) as err:
        settings(cluster=None, poll_interval="0", subnets="x")
    assert len(err.value.problems) == 3


def test_team_scoped_env_var_names() -> None:
    assert env_var_name("cluster") == "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"
    assert env_var_name("cluster", "teamA") == "AIRFLOW__TEAMA___AWS_ECS_EXECUTOR__CLUSTER"
    with pytest.raises(EcsExecutorConfigError) as err:
        settings_from_mapping({"cluster": "c"}, team_name="blue")
    assert "AIRFLOW__BLUE___AWS_ECS_EXECUTOR__CONTAINER_NAME" in str(err.value)


def test_region_alias_is_accepted() -> None:
    s = settings_from_mapping(
        {"cluster": "c", "container_name": "w", "region": "ap-south-1", "task_definition": "t"}
    )
    assert s.region_name == "ap-south-1"


def test_defaults_leave_the_launch_target_to_the_cluster_and_use_the_fargate_rate() -> None:
    s = settings()
    # Neither launch_type nor a strategy: the cluster's default strategy applies, else Fargate
    # (layering.fill_launch_target, decided by the engine once it has read the cluster).
    assert s.base_run_task_kwargs() == {"cluster": "c", "taskDefinition": "td"}
    assert s.is_fargate and s.effective_run_task_rate == FARGATE_RUN_TASK_RATE
    assert s.effective_run_task_burst == 100
    assert s.conn_id == "aws_default" and s.max_run_task_attempts == 3 and s.check_health_on_startup


def test_ec2_gets_ec2_rate_and_no_platform_version() -> None:
    s = settings(launch_type="ec2")
    base = s.base_run_task_kwargs()
    assert base["launchType"] == "EC2" and "platformVersion" not in base
    assert s.effective_run_task_rate == EC2_RUN_TASK_RATE
    assert settings(launch_type="EC2", run_task_rate="7").effective_run_task_rate == 7


def test_schedulers_sharing_budget_split_ecs_buckets_between_them() -> None:
    three = settings(launch_type="EC2", schedulers_sharing_budget="3")
    assert three.effective_run_task_rate == EC2_RUN_TASK_RATE / 3
    assert three.effective_run_task_burst == 33  # 3 x 33 stays within ECS's burst of 100
    fargate = settings(schedulers_sharing_budget="2", run_task_burst="1")
    assert fargate.effective_run_task_rate == FARGATE_RUN_TASK_RATE / 2
    assert fargate.effective_run_task_burst == 1  # never zero


def test_capacity_provider_strategy_is_parsed_and_replaces_launch_type() -> None:
    s = settings(capacity_provider_strategy='[{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 1}]')
    base = s.base_run_task_kwargs()
    assert base["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 1}]
    assert "launchType" not in base and "platformVersion" not in base
    assert s.is_fargate
    ec2 = settings(capacity_provider_strategy='[{"capacityProvider": "my-asg"}]')
    assert not ec2.is_fargate


def test_precedence_defaults_then_run_task_kwargs_then_explicit_options() -> None:
    rtk = {
        "launchType": "EC2",
        "cluster": "from-kwargs",
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": ["subnet-k"], "securityGroups": ["sg-k"]}
        },
        "propagateTags": "TASK_DEFINITION",
    }
    # run_task_kwargs beats the FARGATE default...
    s = settings(run_task_kwargs=json.dumps(rtk))
    base = s.base_run_task_kwargs()
    assert base["launchType"] == "EC2" and "platformVersion" not in base
    assert base["propagateTags"] == "TASK_DEFINITION"
    # ...explicit options beat run_task_kwargs (cluster is always explicit), nested keys merge.
    assert base["cluster"] == "c"
    s2 = settings(run_task_kwargs=json.dumps(rtk), subnets="subnet-x", launch_type="FARGATE")
    vpc = s2.base_run_task_kwargs()["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc == {"subnets": ["subnet-x"], "securityGroups": ["sg-k"], "assignPublicIp": "DISABLED"}
    assert s2.base_run_task_kwargs()["launchType"] == "FARGATE"


def test_assign_public_ip_and_network_configuration() -> None:
    s = settings(subnets="subnet-1, subnet-2", security_groups="sg-1", assign_public_ip="true")
    vpc = s.base_run_task_kwargs()["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc == {
        "subnets": ["subnet-1", "subnet-2"],
        "securityGroups": ["sg-1"],
        "assignPublicIp": "ENABLED",
    }


def test_task_definition_may_come_from_run_task_kwargs() -> None:
    s = settings(task_definition=None, run_task_kwargs='{"taskDefinition": "fam:3"}')
    assert s.base_run_task_kwargs()["taskDefinition"] == "fam:3"
    same = settings(run_task_kwargs='{"taskDefinition": "td"}')
    assert same.base_run_task_kwargs()["taskDefinition"] == "td"


def test_deep_merge_merges_container_overrides_by_name() -> None:
    base = {
        "overrides": {
            "containerOverrides": [
                {"name": "a", "environment": [{"name": "X", "value": "1"}, {"name": "Y", "value": "1"}]},
                {"name": "b", "cpu": 1},
            ]
        },
        "tags": [{"key": "k", "value": "v"}],
    }
    top = {
        "overrides": {
            "containerOverrides": [
                {"name": "a", "environment": [{"name": "Y", "value": "2"}], "memory": 5},
                {"name": "c", "cpu": 2},
            ]
        },
        "tags": [{"key": "z", "value": "z"}],
    }
    merged = deep_merge(base, top)
    a, b, c = merged["overrides"]["containerOverrides"]
    assert a == {
        "name": "a",
        "environment": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
        "memory": 5,
    }
    assert b == {"name": "b", "cpu": 1} and c == {"name": "c", "cpu": 2}
    assert merged["tags"] == [{"key": "z", "value": "z"}]  # other lists are replaced
    assert base["overrides"]["containerOverrides"][0]["environment"][1]["value"] == "1"  # inputs untouched


def test_run_task_kwargs_are_validated_after_layering_not_alone() -> None:
    """Alone, this awsvpcConfiguration lacks its required subnets; layered with the subnets option it is a
    valid request (it was refused before), and it must be accepted."""
    s = settings(
        subnets="subnet-1",
        run_task_kwargs=json.dumps(
            {"networkConfiguration": {"awsvpcConfiguration": {"assignPublicIp": "ENABLED"}}}
        ),
    )
    vpc = s.base_run_task_kwargs()["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc == {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}
    # ...and a request that is invalid only once layered is refused, naming the option.
    with pytest.raises(EcsExecutorConfigError) as err:
        settings(run_task_kwargs=json.dumps({"networkConfiguration": {"awsvpcConfiguration": {}}}))
    assert "RUN_TASK_KWARGS" in str(err.value) and "subnets" in str(err.value)


def test_queue_profiles_layer_over_the_base_options() -> None:
    s = settings(
        launch_type="FARGATE",
        subnets="subnet-1",
        security_groups="sg-1",
        queue_profiles=json.dumps(
            {
                "gpu": {"cluster": "gpu", "task_definition": "gpu-td", "launch_type": "EC2", "memory": 4096},
                "spot": {"capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]},
                "other-net": {"subnets": "subnet-9", "run_task_kwargs": {"propagateTags": "TASK_DEFINITION"}},
            }
        ),
    )
    profiles = s.profile_run_task_kwargs()
    gpu = profiles["gpu"]
    assert gpu["cluster"] == "gpu" and gpu["taskDefinition"] == "gpu-td"
    # The profile's launch type replaces the base one, and Fargate's platform version goes with it.
    assert gpu["launchType"] == "EC2" and "platformVersion" not in gpu
    # A profile's cpu/memory are task-level (they were container-level before issue 24).
    assert gpu["overrides"] == {"memory": "4096"}
    spot = profiles["spot"]
    assert (
        "launchType" not in spot and spot["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"
    )
    assert spot["platformVersion"] == "LATEST"  # still Fargate
    net = profiles["other-net"]
    assert net["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-9"]
    assert net["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == ["sg-1"]
    assert net["propagateTags"] == "TASK_DEFINITION" and net["cluster"] == "c"


def test_capacity_and_spot_defaults() -> None:
    s = settings()
    assert (
        s.capacity_wait_seconds >= 300 and s.relaunch_on_spot_interruption is False and s.queue_profiles == {}
    )


def test_tracking_mode_follows_the_events_queue_unless_set() -> None:
    assert settings().effective_tracking_mode == "polling"
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/ecs-events"
    assert settings(events_queue=queue).effective_tracking_mode == "events"
    assert settings(events_queue="ecs-events", tracking_mode="POLLING").effective_tracking_mode == ("polling")


def test_the_orphan_sweep_is_off_by_default_and_reads_its_options() -> None:
    default = settings()
    assert (default.orphan_sweep, default.orphan_grace_seconds, default.orphan_sweep_interval) == (
        False,
        600.0,
        60.0,
    )
    on = settings(orphan_sweep="True", orphan_grace_seconds="120", orphan_sweep_interval="30")
    assert (on.orphan_sweep, on.orphan_grace_seconds, on.orphan_sweep_interval) == (True, 120.0, 30.0)


def test_the_definition_clean_up_has_defaults_and_reads_its_options() -> None:
    default = settings()
    assert (
        default.derived_definition_retention,
        default.derived_definition_keep,
        default.derived_definition_cleanup_interval,
    ) == (604800.0, 1, 3600.0)
    set_ = settings(
        derived_definition_retention="60",
        derived_definition_keep="0",
        derived_definition_cleanup_interval="86400",
    )
    assert (
        set_.derived_definition_retention,
        set_.derived_definition_keep,
        set_.derived_definition_cleanup_interval,
    ) == (60.0, 0, 86400.0)


@pytest.mark.parametrize(
    "key",
    [
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/airflow-workloads",
        "alias/team_a/workloads",
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:eu-west-1:111122223333:alias/airflow-workloads",
        "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/airflow-workloads",
        "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
)
def test_every_kms_key_identifier_is_accepted(key: str) -> None:
    assert settings(workload_kms_key=f"  {key} ").workload_kms_key == key


def test_sealing_is_off_by_default_and_blank_means_off() -> None:
    default = settings()
    assert (default.workload_kms_key, default.workload_data_key_seconds) == (None, 300.0)
    assert settings(workload_kms_key="  ").workload_kms_key is None
    assert settings(workload_data_key_seconds="60").workload_data_key_seconds == 60.0


def test_a_teams_bad_kms_key_names_the_teams_env_var() -> None:
    with pytest.raises(EcsExecutorConfigError) as err:
        settings_from_mapping({**BASE, "workload_kms_key": "nope"}, team_name="teamA")
    assert "AIRFLOW__TEAMA___AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY" in str(err.value)
