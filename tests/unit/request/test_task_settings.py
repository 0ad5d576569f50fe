"""Typed per-task settings: each key valid and invalid (with its message), layering, Derivation, the
RunTask overrides they make and the rules that depend on the launch target."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor.request.ecs_rules import FARGATE_SIZES, platform_before_1_4
from ecs_executor.request.task_settings import (
    TYPED_KEYS,
    Derivation,
    TaskSettings,
    conflicts,
    derivation_of,
    layer,
    parse,
    run_task_overrides,
    split_executor_config,
    target_problems,
)

VALID: list[dict[str, Any]] = [
    {"image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:3.1"},
    {"image": "acme/airflow@sha256:" + "a" * 64},
    {"image": "registry.local:5000/team_x/airflow#tag"},
    {"cpu": 128},
    {"cpu": 196608},
    {"memory": 1},
    {"memory": 122880},
    {"ephemeral_storage": 21},
    {"ephemeral_storage": 200},
    {"runtime_platform": {"cpu_architecture": "ARM64"}},
    {"runtime_platform": {"operating_system_family": "WINDOWS_SERVER_2022_CORE"}},
    {"runtime_platform": {"cpu_architecture": "X86_64", "operating_system_family": "LINUX"}},
    {"runtime_platform": {}},
    {"gpu": 1},
    {"gpu": 8},
    {"environment": {"BATCH": "large", "EMPTY": ""}},
    {"environment": {}},
]


@pytest.mark.parametrize("values", VALID, ids=[str(v)[:40] for v in VALID])
def test_valid_values_are_kept(values: dict[str, Any]) -> None:
    settings = parse(values, "executor_config")
    for key, value in values.items():
        kept = getattr(settings, key)
        assert (kept.model_dump(exclude_none=True) if key == "runtime_platform" else kept) == value


# (typed keys, text the message must contain); every message also names the key and shows the value.
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"image": ""}, "an image is 1-255 letters, digits and - _ : . / # @"),
    ({"image": "acme/airflow 3"}, "an image is 1-255 letters"),
    ({"image": "a" * 256}, "an image is 1-255 letters"),
    ({"image": 3}, "valid string"),
    ({"cpu": 64}, "task cpu must be 128-196608 CPU units (1024 = 1 vCPU); Fargate task cpu is one of 256"),
    ({"cpu": 196609}, "task cpu must be 128-196608 CPU units"),
    ({"cpu": "1024"}, "valid integer"),
    ({"cpu": True}, "valid integer"),
    ({"cpu": 1.5}, "valid integer"),
    ({"memory": 0}, "task memory must be a positive number of MiB"),
    ({"memory": "4 GB"}, "valid integer"),
    ({"ephemeral_storage": 20}, "ephemeral storage must be 21-200 GiB (Fargate only)"),
    ({"ephemeral_storage": 201}, "ephemeral storage must be 21-200 GiB"),
    ({"ephemeral_storage": "50"}, "valid integer"),
    ({"runtime_platform": {"cpu_architecture": "arm64"}}, "must be one of X86_64, ARM64"),
    ({"runtime_platform": {"operating_system_family": "WINDOWS"}}, "must be one of LINUX, WINDOWS_SERVER"),
    ({"runtime_platform": {"cpuArchitecture": "ARM64"}}, "is not a runtime_platform key; allowed: cpu_arch"),
    ({"runtime_platform": "ARM64"}, "valid dictionary"),
    ({"gpu": 0}, "gpu must be a whole number of GPUs, at least 1"),
    ({"gpu": "1"}, "valid integer"),
    ({"environment": {"A": 1}}, "valid string"),
    ({"environment": [{"name": "A", "value": "1"}]}, "valid dictionary"),
    ({"environment": {"": "x"}}, "must be non-empty and have no '='"),
    ({"environment": {"A=B": "x"}}, "must be non-empty and have no '='"),
    (
        {"environment": {"AIRFLOW_IS_EXECUTOR_CONTAINER": "false"}},
        "is set by the executor itself; the executor sets AIRFLOW_IS_EXECUTOR_CONTAINER, "
        "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION, ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION",
    ),
    ({"environment": {"ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": "3.9"}}, "is set by the executor itself"),
    ({"environment": {"AIRFLOW__API_AUTH__JWT_SECRET": "s"}}, "is Airflow's token-signing key"),
]


@pytest.mark.parametrize(("values", "text"), INVALID, ids=[f"{next(iter(v))}-{t[:25]}" for v, t in INVALID])
def test_invalid_values_are_refused_naming_the_key_and_value(values: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse(values, "executor_config")
    message = str(err.value)
    assert text in message
    key = next(iter(values))
    assert message.startswith(f"executor_config {key}")
    if "not a runtime_platform key" not in message:
        assert " = " in message  # the value follows the key


def test_every_typed_key_has_a_valid_and_an_invalid_case() -> None:
    assert {next(iter(v)) for v in VALID} == set(TYPED_KEYS)
    assert {next(iter(v)) for v, _ in INVALID} == set(TYPED_KEYS)


def test_several_bad_keys_are_reported_together() -> None:
    with pytest.raises(ValueError) as err:
        parse({"cpu": 1, "gpu": 0}, "executor_config")
    assert "executor_config cpu = 1" in str(err.value) and "executor_config gpu = 0" in str(err.value)


def test_split_keeps_run_task_arguments_apart_from_typed_keys() -> None:
    run_task, typed = split_executor_config({"cpu": 1024, "overrides": {"cpu": "1024"}, "image": "i"})
    assert run_task == {"overrides": {"cpu": "1024"}} and typed == {"cpu": 1024, "image": "i"}


def test_run_task_overrides_are_task_level_strings_and_our_containers_environment() -> None:
    settings = parse(
        {"cpu": 1024, "memory": 4096, "ephemeral_storage": 50, "environment": {"A": "1"}, "image": "i"}, "x"
    )
    assert run_task_overrides(settings, "w") == {
        "overrides": {
            "cpu": "1024",
            "memory": "4096",
            "ephemeralStorage": {"sizeInGiB": 50},
            "containerOverrides": [{"name": "w", "environment": [{"name": "A", "value": "1"}]}],
        }
    }
    assert run_task_overrides(parse({"image": "i", "gpu": 1}, "x"), "w") == {}


def test_derivation_holds_only_what_run_task_cannot_override() -> None:
    assert derivation_of(parse({"cpu": 1024, "memory": 2048, "environment": {"A": "1"}}, "x")) is None
    derivation = derivation_of(
        parse({"gpu": 2, "image": "i:1", "runtime_platform": {"cpu_architecture": "ARM64"}}, "x")
    )
    assert derivation == Derivation(image="i:1", cpu_architecture="ARM64", gpu=2)
    assert derivation is not None
    assert list(derivation.to_dict()) == ["image", "cpu_architecture", "gpu"]  # set fields, stable order
    assert Derivation(operating_system_family="LINUX").to_dict() == {"operating_system_family": "LINUX"}
    assert derivation_of(parse({"runtime_platform": {}}, "x")) is None


def test_a_tasks_keys_win_over_its_profiles_environment_and_platform_merge() -> None:
    profile = parse(
        {
            "image": "p:1",
            "cpu": 2048,
            "memory": 8192,
            "environment": {"A": "profile", "B": "profile"},
            "runtime_platform": {"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
        },
        "p",
    )
    task = parse(
        {
            "image": "t:1",
            "memory": 16384,
            "environment": {"B": "task"},
            "runtime_platform": {"cpu_architecture": "ARM64"},
        },
        "t",
    )
    layered = layer(profile, task)
    assert (layered.image, layered.cpu, layered.memory) == ("t:1", 2048, 16384)
    assert layered.environment == {"A": "profile", "B": "task"}
    assert layered.runtime_platform is not None
    assert layered.runtime_platform.model_dump() == {
        "cpu_architecture": "ARM64",
        "operating_system_family": "LINUX",
    }
    assert layer(profile, TaskSettings()) == profile and layer(TaskSettings(), task) == task
    # None means "not set": it never clears the profile's value.
    assert layer(profile, parse({"image": None}, "t")).image == "p:1"


@pytest.mark.parametrize(
    ("typed", "run_task", "text"),
    [
        ({"cpu": 1024}, {"overrides": {"cpu": "2048"}}, "cpu = 1024 contradicts overrides.cpu = '2048'"),
        ({"memory": 2048}, {"overrides": {"memory": "4 GB"}}, "memory = 2048 contradicts overrides.memory"),
        (
            {"ephemeral_storage": 30},
            {"overrides": {"ephemeralStorage": {"sizeInGiB": 40}}},
            "ephemeral_storage = 30 contradicts overrides.ephemeralStorage.sizeInGiB = 40",
        ),
        (
            {"environment": {"A": "1"}},
            {
                "overrides": {
                    "containerOverrides": [{"name": "w", "environment": [{"name": "A", "value": "2"}]}]
                }
            },
            "environment['A'] = '1' contradicts the containerOverrides environment A = '2'",
        ),
    ],
)
def test_same_layer_contradictions_are_refused(
    typed: dict[str, Any], run_task: dict[str, Any], text: str
) -> None:
    assert text in conflicts(run_task, parse(typed, "x"), "w")[0]


def test_agreeing_values_in_one_layer_are_fine() -> None:
    typed = parse({"cpu": 1024, "memory": 2048, "environment": {"A": "1"}}, "x")
    run_task = {
        "overrides": {
            "cpu": "1 vCPU",
            "memory": "2048",
            "containerOverrides": [
                {"name": "w", "environment": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "environment": [{"name": "A", "value": "other container"}]},
            ],
        }
    }
    assert conflicts(run_task, typed, "w") == []


def _kwargs(cpu: str | None = None, memory: str | None = None, **more: Any) -> dict[str, Any]:
    overrides = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"overrides": overrides, **more}


@pytest.mark.parametrize(
    ("typed", "kwargs", "fargate", "text"),
    [
        ({"gpu": 1}, {}, True, "gpu = 1: Fargate has no GPUs; run the task on EC2 or EXTERNAL capacity"),
        (
            {"gpu": 2},
            {
                "overrides": {
                    "containerOverrides": [
                        {"name": "w", "resourceRequirements": [{"type": "GPU", "value": "1"}]}
                    ]
                }
            },
            False,
            "gpu = 2 contradicts the GPU resourceRequirements = '1' of container 'w'",
        ),
        ({"ephemeral_storage": 30}, {}, False, "ephemeral_storage = 30 applies only to Fargate tasks"),
        ({"memory": 4096}, _kwargs(memory="4096"), True, "memory = 4096 needs cpu too on Fargate"),
        ({"cpu": 1024}, _kwargs(cpu="1024"), True, "cpu = 1024 needs memory too on Fargate"),
        (
            {"cpu": 1024, "memory": 1000},
            _kwargs("1024", "1000"),
            True,
            "cpu = 1024, memory = 1000 is not a Fargate size; with cpu 1024 Fargate takes memory "
            "2048-8192 MiB in steps of 1024",
        ),
        (
            {"cpu": 256, "memory": 4096},
            _kwargs("256", "4096"),
            True,
            "with cpu 256 Fargate takes memory 512, 1024, 2048 MiB",
        ),
        ({"cpu": 3000, "memory": 4096}, _kwargs("3000", "4096"), True, "Fargate task cpu is one of 256, 512"),
        (
            {"cpu": 8192, "memory": 16384},
            _kwargs("8192", "16384", platformVersion="1.3.0"),
            True,
            "cpu = 8192 needs Fargate platform version 1.4.0 or later, not 1.3.0",
        ),
        (
            {"ephemeral_storage": 50},
            _kwargs(platformVersion="1.3.0"),
            True,
            "ephemeral_storage needs Fargate platform version 1.4.0 or later",
        ),
        (
            {"runtime_platform": {"cpu_architecture": "ARM64"}},
            _kwargs(platformVersion="1.3.0", capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}]),
            True,
            "ARM64 on FARGATE_SPOT needs platform version 1.4.0 or later",
        ),
        (
            {"runtime_platform": {"operating_system_family": "WINDOWS_SERVER_2022_CORE"}},
            _kwargs(capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}]),
            True,
            "FARGATE_SPOT runs only Linux tasks",
        ),
        (
            {
                "ephemeral_storage": 50,
                "runtime_platform": {"operating_system_family": "WINDOWS_SERVER_2019_FULL"},
            },
            {},
            True,
            "ephemeral_storage is not supported for Windows containers on Fargate",
        ),
        (
            {
                "cpu": 512,
                "memory": 1024,
                "runtime_platform": {"operating_system_family": "WINDOWS_SERVER_2019_FULL"},
            },
            _kwargs("512", "1024"),
            True,
            "Windows containers on Fargate need at least 1 vCPU",
        ),
    ],
)
def test_rules_that_depend_on_the_launch_target(
    typed: dict[str, Any], kwargs: dict[str, Any], fargate: bool, text: str
) -> None:
    problems = target_problems(parse(typed, "x"), kwargs, "w", fargate)
    assert any(text in p for p in problems), problems


@pytest.mark.parametrize(
    ("typed", "kwargs", "fargate"),
    [
        ({"gpu": 1}, {}, False),
        ({"gpu": 1}, {}, None),  # the cluster's default strategy decides: checked by ECS
        ({"ephemeral_storage": 30}, {}, True),
        ({"ephemeral_storage": 30}, {}, None),
        ({"memory": 3000}, _kwargs(memory="3000"), False),  # EC2: memory alone is fine
        ({"memory": 3000}, _kwargs(memory="3000"), None),
        ({"cpu": 3000}, _kwargs(cpu="3000"), False),
        ({"cpu": 16384, "memory": 122880}, _kwargs("16384", "122880", platformVersion="LATEST"), True),
        ({"memory": 4096}, _kwargs("1024", "4096"), True),  # cpu from RunTask overrides completes the pair
        (
            {"gpu": 1},
            {
                "overrides": {
                    "containerOverrides": [
                        {"name": "w", "resourceRequirements": [{"type": "GPU", "value": "1"}]}
                    ]
                }
            },
            False,
        ),
    ],
)
def test_what_each_target_allows(typed: dict[str, Any], kwargs: dict[str, Any], fargate: bool | None) -> None:
    assert target_problems(parse(typed, "x"), kwargs, "w", fargate) == []


def test_fargate_pairs_all_pass_and_old_platforms_are_recognised() -> None:
    for cpu, memories in FARGATE_SIZES.items():
        for memory in memories:
            assert (
                target_problems(
                    parse({"cpu": cpu, "memory": memory}, "x"), _kwargs(str(cpu), str(memory)), "w", True
                )
                == []
            )
    assert platform_before_1_4("1.3.0") and platform_before_1_4("1.0.0")
    assert not any(platform_before_1_4(v) for v in ("1.4.0", "LATEST", None, "2.0.0"))


def test_typed_keys_never_clash_with_run_task_arguments() -> None:
    # They sit beside RunTask's arguments at the top of executor_config: a RunTask member of the same
    # name (a future botocore) would make a key ambiguous.
    from ecs_executor.request.ecs_rules import _service_model

    members = set(_service_model().operation_model("RunTask").input_shape.members)
    assert members and not members & set(TYPED_KEYS)
