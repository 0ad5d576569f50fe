"""ecs_rules: every ECS API rule with a case ECS accepts and one it refuses (pure, no endpoint)."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor.request import ecs_rules as rules


def test_constants() -> None:
    assert (rules.MAX_OVERRIDES_CHARS, rules.MAX_TAGS, rules.MAX_TAG_KEY, rules.MAX_TAG_VALUE) == (
        8192,
        50,
        128,
        256,
    )
    assert (rules.MAX_CLIENT_TOKEN, rules.MAX_STARTED_BY, rules.MAX_DESCRIBE_TASKS) == (64, 128, 100)
    assert (rules.MAX_RUN_COUNT, rules.MAX_SUBNETS, rules.MAX_SECURITY_GROUPS) == (10, 16, 5)
    assert frozenset({"FARGATE", "FARGATE_SPOT"}) == rules.FARGATE_CAPACITY_PROVIDERS


# request_problems ----------------------------------------------------------------------------------


def test_request_problems_accepts_a_valid_request() -> None:
    params = {
        "cluster": "c",
        "taskDefinition": "td",
        "count": 1,
        "tags": [{"key": "k", "value": "v"}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    }
    assert rules.request_problems("RunTask", params) is None
    assert rules.request_problems("DescribeTasks", {"tasks": ["a"]}) is None


@pytest.mark.parametrize(
    ("operation", "params", "fragment"),
    [
        ("RunTask", {}, 'Missing required parameter in input: "taskDefinition"'),
        ("RunTask", {"taskDefinition": 1}, "Invalid type for parameter taskDefinition"),
        ("RunTask", {"taskDefinition": "td", "count": "2"}, "Invalid type for parameter count"),
        ("RunTask", {"taskDefinition": "td", "bogus": 1}, 'Unknown parameter in input: "bogus"'),
        ("DescribeTasks", {"cluster": "c"}, 'Missing required parameter in input: "tasks"'),
        ("StopTask", {"task": ["a"]}, "Invalid type for parameter task"),
        ("NoSuchOperation", {}, "Unknown operation NoSuchOperation."),
    ],
)
def test_request_problems_rejects(operation: str, params: dict[str, Any], fragment: str) -> None:
    problem = rules.request_problems(operation, params)
    assert problem is not None and fragment in problem
    assert "\n" not in problem


def test_is_type_problem() -> None:
    problem = rules.request_problems("RunTask", {"taskDefinition": 1})
    assert problem is not None and rules.is_type_problem(problem)
    missing = rules.request_problems("RunTask", {})
    assert missing is not None and not rules.is_type_problem(missing)


# Tags ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zürich", "Zürich"),
        ("データ", "データ"),
        ("٣", "٣"),  # an Arabic-Indic digit is a Unicode number
        ("a\u00a0b", "a\u00a0b"),  # a non-breaking space is a Unicode separator
        ("dag_1.x:y/z=+-@ ok", "dag_1.x:y/z=+-@ ok"),
        ("rocket🚀", "rocket_"),
        ("a<b>c,d", "a_b_c_d"),
        ("tab\there", "tab_here"),  # a control character, not a separator
        ("a#b$c é", "a_b_c é"),
        ("Zürich データ ٣ 🚀", "Zürich データ ٣ _"),
    ],
)
def test_sanitize_tag_text(text: str, expected: str) -> None:
    assert rules.sanitize_tag_text(text, 128) == expected
    assert rules.tag_problems([{"key": "k", "value": expected}]) is None


def test_sanitize_tag_text_truncates() -> None:
    assert rules.sanitize_tag_text("é" * 300, rules.MAX_TAG_VALUE) == "é" * 256
    assert rules.sanitize_tag_text("", 10) == ""


def test_tag_problems_accepts() -> None:
    assert rules.tag_problems(None) is None
    assert rules.tag_problems([]) is None
    tags = [{"key": f"k{i}", "value": "v"} for i in range(50)]
    assert rules.tag_problems(tags) is None
    assert rules.tag_problems([{"key": "k" * 128, "value": "v" * 256}]) is None
    assert rules.tag_problems([{"key": "Zürich データ ٣", "value": ""}]) is None
    assert rules.tag_problems([{"key": "awsome", "value": "aws:fine-in-a-value"}]) is None


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ({"key": "k"}, "list"),
        ([{"key": f"k{i}", "value": "v"} for i in range(51)], "more than 50"),
        ([{"key": "", "value": "v"}], "1-128"),
        ([{"key": "k" * 129, "value": "v"}], "1-128"),
        ([{"value": "v"}], "1-128"),
        ([{"key": "k", "value": "v" * 257}], "at most 256"),
        ([{"key": "bad<key>", "value": "v"}], "Tag key"),
        ([{"key": "k", "value": "emoji🚀"}], "Tag value"),
        ([{"key": "aws:owner", "value": "v"}], "reserved"),
        ([{"key": "AwS:owner", "value": "v"}], "reserved"),
        (["k=v"], "object"),
    ],
)
def test_tag_problems_rejects(tags: Any, fragment: str) -> None:
    problem = rules.tag_problems(tags)
    assert problem is not None and fragment in problem


# Launch target ------------------------------------------------------------------------------------


def test_launch_target_problems() -> None:
    assert rules.launch_target_problems({"launchType": "FARGATE", "platformVersion": "1.4.0"}) is None
    assert rules.launch_target_problems({"capacityProviderStrategy": [{"capacityProvider": "X"}]}) is None
    assert rules.launch_target_problems({}) is None
    both = {"launchType": "EC2", "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]}
    assert rules.launch_target_problems(both) == rules.BOTH_LAUNCH_TARGETS
    assert rules.launch_target_problems({"launchType": "EC2", "platformVersion": "LATEST"}) == (
        "The platform version must be null when specifying an EC2 launch type."
    )
    assert "EXTERNAL" in str(rules.launch_target_problems({"launchType": "EXTERNAL", "platformVersion": "1"}))


def test_resolve_launch_target() -> None:
    spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert rules.resolve_launch_target({"launchType": "FARGATE"}, spot) == ("FARGATE", None)
    assert rules.resolve_launch_target({"capacityProviderStrategy": spot}) == ("FARGATE", "FARGATE_SPOT")
    assert rules.resolve_launch_target({}, spot) == ("FARGATE", "FARGATE_SPOT")
    assert rules.resolve_launch_target({}, [{"capacityProvider": "my-asg"}]) == ("EC2", "my-asg")
    assert rules.resolve_launch_target({}, []) == ("EC2", None)
    assert rules.resolve_launch_target({}) == ("EC2", None)


# Sizes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        ("256", "512"),
        (256, 2048),
        ("512", "4096"),
        ("1024", "2 GB"),
        ("1 vCPU", "8GB"),
        (".25 vcpu", "0.5 GB"),
        ("2048", "16384"),
        ("4096", "30720"),
        ("8192", "16384"),
        ("8192", "61440"),
        ("16384", "32768"),
        ("16384", str(120 * 1024)),
    ],
)
def test_fargate_size_accepts(cpu: Any, memory: Any) -> None:
    assert rules.fargate_size_problem(cpu, memory) is None


@pytest.mark.parametrize(
    ("cpu", "memory", "message"),
    [
        ("256", "4096", "No Fargate configuration exists for given values."),
        ("512", "512", "No Fargate configuration exists for given values."),
        ("1024", "1536", "No Fargate configuration exists for given values."),
        ("4096", "31744", "No Fargate configuration exists for given values."),
        ("8192", "18432", "No Fargate configuration exists for given values."),  # 18 GB: not a 4 GB step
        ("16384", "36864", "No Fargate configuration exists for given values."),  # 36 GB: not an 8 GB step
        ("300", "512", "Invalid 'cpu' setting for task."),
        (None, "512", "Invalid 'cpu' setting for task."),
        ("lots", "512", "Invalid 'cpu' setting for task."),
        ("256", None, "Invalid 'memory' setting for task."),
        ("256", "half a gig", "Invalid 'memory' setting for task."),
    ],
)
def test_fargate_size_rejects(cpu: Any, memory: Any, message: str) -> None:
    assert rules.fargate_size_problem(cpu, memory) == message


def test_size_parsing() -> None:
    assert rules.cpu_units("2 vCPU") == 2048 and rules.cpu_units(".5 vCPU") == 512
    assert rules.cpu_units("1.5") is None and rules.cpu_units(True) is None
    assert rules.memory_mib("1GB") == 1024 and rules.memory_mib("512") == 512
    assert rules.memory_mib("1 TB") is None


def test_container_memory_problem() -> None:
    assert rules.container_memory_problem("2048", {"name": "c", "memory": 2048}) is None
    assert rules.container_memory_problem(None, {"name": "c", "memory": 99999}) is None
    assert rules.container_memory_problem("2 GB", {"name": "c", "memoryReservation": 512}) is None
    assert rules.container_memory_problem("2048", {"name": "c", "memory": 4096}) == (
        "The 'memory' setting for container 'c' is greater than for the task."
    )
    assert rules.container_memory_problem(1024, {"name": "c", "memoryReservation": 2048}) == (
        "The 'memoryReservation' setting for container 'c' is greater than for the task."
    )


# Overrides and ARNs -------------------------------------------------------------------------------


def test_overrides_size_counts_compact_characters() -> None:
    overrides = {"containerOverrides": [{"name": "c", "command": ["é"]}]}
    assert rules.overrides_size(overrides) == len('{"containerOverrides":[{"name":"c","command":["é"]}]}')
    big = {"containerOverrides": [{"name": "c", "command": ["x" * 8200]}]}
    assert rules.overrides_size(big) > rules.MAX_OVERRIDES_CHARS


def test_cluster_of_task_arn() -> None:
    assert rules.cluster_of_task_arn("arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd") == "prod"
    assert rules.cluster_of_task_arn("arn:aws-cn:ecs:cn-north-1:123456789012:task/c-1/abc") == "c-1"
    assert rules.cluster_of_task_arn("arn:aws:ecs:us-east-1:123456789012:task/0123abcd") is None
    assert rules.cluster_of_task_arn("0123abcd") is None
    assert rules.cluster_of_task_arn("arn:aws:ecs:us-east-1:123456789012:cluster/prod") is None


# Task settings: ranges, enums, images ----------------------------------------------------------------


def test_task_setting_constants_match_ecs_and_botocores_model() -> None:
    assert (rules.MIN_TASK_CPU, rules.MAX_TASK_CPU) == (128, 196608)
    assert (rules.MIN_EPHEMERAL_GIB, rules.MAX_EPHEMERAL_GIB) == (21, 200)
    model = rules._service_model()
    platform = model.shape_for("RuntimePlatform")
    assert tuple(platform.members["cpuArchitecture"].enum) == rules.CPU_ARCHITECTURES
    assert set(platform.members["operatingSystemFamily"].enum) == set(rules.OS_FAMILIES)
    assert frozenset({8192, 16384}) == rules.FARGATE_CPU_NEEDS_1_4


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:3.1", True),
        ("acme/airflow@sha256:" + "0" * 64, True),
        ("airflow", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("", False),
        ("acme/airflow 3", False),
        ("acme/airflow:3;rm", False),
    ],
)
def test_image_problem(image: str, ok: bool) -> None:
    assert (rules.image_problem(image) is None) is ok


def test_fargate_sizes_text_lists_what_fargate_takes() -> None:
    assert rules.fargate_sizes_text() == "Fargate task cpu is one of 256, 512, 1024, 2048, 4096, 8192, 16384"
    assert rules.fargate_sizes_text(256) == "with cpu 256 Fargate takes memory 512, 1024, 2048 MiB"
    assert (
        rules.fargate_sizes_text(8192)
        == "with cpu 8192 Fargate takes memory 16384-61440 MiB in steps of 4096"
    )


def test_platform_versions_and_windows() -> None:
    assert rules.platform_before_1_4("1.3.0") and not rules.platform_before_1_4("1.4.0")
    assert not rules.platform_before_1_4("LATEST") and not rules.platform_before_1_4(None)
    assert rules.is_windows("WINDOWS_SERVER_2022_CORE") and not rules.is_windows("LINUX")
    assert not rules.is_windows(None)
