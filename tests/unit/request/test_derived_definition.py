"""Derived task definitions: the RegisterTaskDefinition request, its hash, family and tags."""

from __future__ import annotations

import datetime
import re

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from ecs_executor.request.derived_definition import (
    BASE_TAG,
    HASH_TAG,
    MANAGED_TAG,
    NotDerivable,
    definition_hash,
    derived_family,
    register_request,
    tag_value,
)
from ecs_executor.request.task_settings import Derivation

_MODEL = get_session().get_service_model("ecs")


def described(**changes: object) -> dict:
    """A task definition as DescribeTaskDefinition returns it (read-only fields included)."""
    base = {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/airflow:7",
        "family": "airflow",
        "revision": 7,
        "status": "ACTIVE",
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
        "compatibilities": ["EC2", "FARGATE"],
        "registeredAt": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        "registeredBy": "arn:aws:iam::123456789012:root",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "containerDefinitions": [
            {
                "name": "base",
                "image": "apache/airflow:3",
                "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
                "essential": True,
            },
            {"name": "sidecar", "image": "busybox", "essential": False},
        ],
    }
    base.update(changes)
    return base


def test_request_is_the_base_without_read_only_fields_and_valid_for_botocore() -> None:
    request = register_request(described(), "base", Derivation(image="my/image:1"))
    for key in ("taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities"):
        assert key not in request
    assert "registeredAt" not in request and "registeredBy" not in request
    shape = _MODEL.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert request["containerDefinitions"][0]["image"] == "my/image:1"
    assert request["containerDefinitions"][1]["image"] == "busybox"  # only our container changes
    assert request["cpu"] == "256" and request["executionRoleArn"].endswith("role/exec")


def test_base_is_not_modified() -> None:
    base = described()
    register_request(base, "base", Derivation(image="x", gpu=1))
    assert base == described()


def test_runtime_platform_and_gpu_applied() -> None:
    base = described(runtimePlatform={"operatingSystemFamily": "LINUX"})
    base["containerDefinitions"][0]["resourceRequirements"] = [
        {"type": "GPU", "value": "1"},
        {"type": "InferenceAccelerator", "value": "dev"},
    ]
    request = register_request(base, "base", Derivation(cpu_architecture="ARM64", gpu=2))
    assert request["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}
    assert request["containerDefinitions"][0]["resourceRequirements"] == [
        {"type": "InferenceAccelerator", "value": "dev"},
        {"type": "GPU", "value": "2"},
    ]


def test_family_is_per_hash_and_fits_ecs() -> None:
    request = register_request(described(), "base", Derivation(image="a"))
    digest = tag_value(request["tags"], HASH_TAG)
    assert digest is not None and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert request["family"] == f"airflow-x{digest[:16]}"
    other = register_request(described(), "base", Derivation(image="b"))
    assert other["family"] != request["family"]
    long = register_request(described(family="f" * 255), "base", Derivation(image="a"))
    assert len(long["family"]) == 255 and re.fullmatch(r"[A-Za-z0-9_-]+", long["family"])
    assert derived_family("f" * 255, digest).endswith(digest[:16])


def test_hash_is_the_content_canonical() -> None:
    request = register_request(described(), "base", Derivation(image="a"))
    digest = tag_value(request["tags"], HASH_TAG)
    assert definition_hash(request) == digest  # family and tags are not content
    reordered = described()
    reordered["containerDefinitions"][0]["environment"].reverse()
    assert tag_value(register_request(reordered, "base", Derivation(image="a"))["tags"], HASH_TAG) == digest
    # Another base revision with the same content derives the same definition ...
    assert definition_hash(register_request(described(revision=8), "base", Derivation(image="a"))) == digest
    # ... and any content difference another one.
    assert definition_hash(register_request(described(cpu="512"), "base", Derivation(image="a"))) != digest
    assert definition_hash(register_request(described(), "base", Derivation(gpu=1))) != digest


def test_tags_ours_then_the_bases_within_ecs_limits() -> None:
    base_tags = [{"key": "team", "value": "data"}, {"key": "aws:cloudformation:stack-name", "value": "s"}]
    request = register_request(described(), "base", Derivation(image="a"), base_tags)
    tags = {t["key"]: t["value"] for t in request["tags"]}
    assert tags[MANAGED_TAG] == "true"
    assert tags[BASE_TAG] == "airflow:7"
    assert tags["team"] == "data"
    assert "aws:cloudformation:stack-name" not in tags  # AWS reserves aws: tags
    many = [{"key": f"k{i}", "value": "v"} for i in range(60)]
    crowded = register_request(described(), "base", Derivation(image="a"), many)
    assert len(crowded["tags"]) == 50 - 1  # room left for the engine's last-used tag
    long_family = register_request(described(family="f" * 255), "base", Derivation(image="a"))
    assert len(tag_value(long_family["tags"], BASE_TAG) or "") == 256


def test_base_without_our_container_is_refused_naming_it() -> None:
    with pytest.raises(NotDerivable, match=r"no container named 'worker'.*container_name"):
        register_request(described(), "worker", Derivation(image="a"))


def test_derivation_to_dict_only_set_fields() -> None:
    assert Derivation().to_dict() == {}
    assert list(Derivation(gpu=1, image="i").to_dict()) == ["image", "gpu"]
