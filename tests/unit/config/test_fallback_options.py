"""The fallback options: refused at start-up with one message naming the option and its env var."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor.config.settings import EcsExecutorConfigError, settings_from_mapping

BASE = {"cluster": "c", "container_name": "w", "region_name": "eu-west-1", "task_definition": "td"}
SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
ENV = "AIRFLOW__AWS_ECS_EXECUTOR__"


def problems(**options: Any) -> list[str]:
    with pytest.raises(EcsExecutorConfigError) as info:
        settings_from_mapping({**BASE, **options})
    return info.value.problems


def test_valid_fallback_options_are_read() -> None:
    s = settings_from_mapping(
        {
            **BASE,
            "capacity_provider_strategy": SPOT,
            "fallback_capacity_provider_strategy": [{"capacityProvider": "FARGATE", "weight": 1}],
            "fallback_after_seconds": "60",
            "queue_profiles": {"q": {"fallback_launch_type": "fargate", "fallback_after_seconds": 0}},
        }
    )
    assert s.fallback_after_seconds == 60.0 and s.fallback_launch_type is None
    assert s.queue_profiles["q"].fallback_launch_type == "FARGATE"


def test_without_a_fallback_the_default_wait_does_not_bind_capacity_wait_seconds() -> None:
    assert settings_from_mapping({**BASE, "capacity_wait_seconds": "4"}).fallback_after_seconds == 120.0


@pytest.mark.parametrize(
    ("options", "texts"),
    [
        (
            {"fallback_launch_type": "FARGATE", "fallback_capacity_provider_strategy": SPOT},
            [
                f"fallback_launch_type ({ENV}FALLBACK_LAUNCH_TYPE) = 'FARGATE'",
                "fallback_capacity_provider_strategy (",
            ],
        ),
        (
            {"fallback_launch_type": "FARGATE", "capacity_wait_seconds": "60"},
            [
                f"fallback_after_seconds ({ENV}FALLBACK_AFTER_SECONDS) = 120 must be at most",
                "capacity_wait_seconds",
            ],
        ),
        (
            {"fallback_after_seconds": "-1"},
            [f"fallback_after_seconds ({ENV}FALLBACK_AFTER_SECONDS) = '-1'", "greater than or equal to 0"],
        ),
        (
            {"fallback_launch_type": "SPOT"},
            [f"fallback_launch_type ({ENV}FALLBACK_LAUNCH_TYPE) = 'SPOT'", "FARGATE, EC2, EXTERNAL"],
        ),
        (
            {"fallback_capacity_provider_strategy": '[{"capacityProvider": ""}]'},
            [f"fallback_capacity_provider_strategy ({ENV}FALLBACK_CAPACITY_PROVIDER_STRATEGY)"],
        ),
        (
            {"launch_type": "FARGATE", "fallback_launch_type": "FARGATE"},
            [
                f"fallback_launch_type ({ENV}FALLBACK_LAUNCH_TYPE): the fallback target FARGATE",
                "is the launch target itself",
            ],
        ),
        (
            {
                "launch_type": "FARGATE",
                "fallback_launch_type": "EC2",
                "subnets": "subnet-1",
                "assign_public_ip": "true",
            },
            [
                f"fallback_launch_type ({ENV}FALLBACK_LAUNCH_TYPE): the fallback target EC2",
                "cannot take assign_public_ip",
            ],
        ),
        (
            {
                "queue_profiles": {
                    "q": {"fallback_launch_type": "EC2", "fallback_capacity_provider_strategy": SPOT}
                }
            },
            [
                f"queue_profiles ({ENV}QUEUE_PROFILES)['q']: fallback_launch_type = 'EC2' and",
                "fallback_capacity_provider_strategy are both set",
            ],
        ),
        (
            {
                "capacity_wait_seconds": "10",
                "queue_profiles": {"q": {"fallback_launch_type": "FARGATE", "fallback_after_seconds": 11}},
            },
            ["['q']: fallback_after_seconds = 11 must be at most capacity_wait_seconds"],
        ),
        (
            {"launch_type": "EC2", "fallback_launch_type": "FARGATE"},
            ["the fallback target FARGATE is Fargate, which needs subnets (awsvpc)"],
        ),
        (
            {"queue_profiles": {"q": {"fallback_after_seconds": -1}}},
            [f"queue_profiles ({ENV}QUEUE_PROFILES)", "fallback_after_seconds"],
        ),
    ],
)
def test_bad_fallback_options_give_one_clear_message(options: dict[str, Any], texts: list[str]) -> None:
    (problem,) = problems(**options)
    for text in texts:
        assert text in problem, problem
