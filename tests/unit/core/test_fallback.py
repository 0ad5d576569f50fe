"""The fallback decision: which target, when it falls due, and the RunTask arguments there."""

from __future__ import annotations

from typing import Any

from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.core.fallback import (
    Fallback,
    capacity_switch_reason,
    fallback_for,
    launched_on,
    seconds_until_due,
    switch,
    target_label,
)

BASE = {"cluster": "c", "container_name": "w", "region_name": "eu-west-1", "task_definition": "td"}
SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
ON_DEMAND = Fallback({"launchType": "FARGATE"}, 120.0)


def settings(**options: Any) -> Any:
    return settings_from_mapping({**BASE, **options})


def test_no_fallback_option_means_no_fallback() -> None:
    s = settings(capacity_provider_strategy=SPOT, queue_profiles={"q": {"cpu": 256, "memory": 512}})
    assert fallback_for(s) is None and fallback_for(s, s.queue_profiles["q"]) is None


def test_the_base_fallback_and_its_wait_layer_into_profiles() -> None:
    s = settings(
        capacity_provider_strategy=SPOT,
        fallback_launch_type="fargate",
        fallback_after_seconds="30",
        queue_profiles={
            "inherits": {"cpu": 256, "memory": 512},
            "sooner": {"fallback_after_seconds": 5},
            "own": {"fallback_capacity_provider_strategy": [{"capacityProvider": "FARGATE", "weight": 1}]},
            "ec2": {"launch_type": "EC2"},  # its own target and no fallback of its own: none
        },
    )
    profiles = s.queue_profiles
    assert fallback_for(s) == Fallback({"launchType": "FARGATE"}, 30.0)
    assert fallback_for(s, profiles["inherits"]) == Fallback({"launchType": "FARGATE"}, 30.0)
    assert fallback_for(s, profiles["sooner"]) == Fallback({"launchType": "FARGATE"}, 5.0)
    own = fallback_for(s, profiles["own"])
    assert own is not None and own.target == {
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]
    }
    assert fallback_for(s, profiles["ec2"]) is None


def test_default_wait_is_120_seconds() -> None:
    fallback = fallback_for(settings(fallback_launch_type="FARGATE"))
    assert fallback is not None and fallback.after_seconds == 120.0


def test_switch_replaces_the_target_and_keeps_platform_version_valid() -> None:
    spot = {"capacityProviderStrategy": SPOT, "platformVersion": "1.4.0", "cluster": "c"}
    assert switch(spot, ON_DEMAND) == {"cluster": "c", "launchType": "FARGATE", "platformVersion": "1.4.0"}
    on_default = {"cluster": "c"}  # the cluster's default strategy decided: Fargate needs a platform version
    assert switch(on_default, ON_DEMAND) == {
        "cluster": "c",
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
    }
    to_ec2 = switch(spot, Fallback({"launchType": "EC2"}, 0))
    assert to_ec2 == {"cluster": "c", "launchType": "EC2"}  # ECS refuses a platform version on EC2
    strategy = Fallback({"capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]}, 0)
    moved = switch({"launchType": "EC2"}, strategy)
    assert moved == {
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}],
        "platformVersion": "LATEST",
    }


def test_capacity_fallback_falls_due_after_the_wait_only() -> None:
    preferred = {"capacityProviderStrategy": SPOT}
    assert capacity_switch_reason(ON_DEMAND, preferred, now=100.0, capacity_since=None) is None
    assert capacity_switch_reason(ON_DEMAND, preferred, now=219.0, capacity_since=100.0) is None
    why = capacity_switch_reason(ON_DEMAND, preferred, now=220.0, capacity_since=100.0)
    assert why == "no FARGATE_SPOT capacity for 120 s"
    at_once = Fallback({"launchType": "FARGATE"}, 0.0)
    assert capacity_switch_reason(at_once, {}, now=5.0, capacity_since=5.0) == (
        "no capacity on the cluster's default capacity provider strategy for 0 s"
    )
    assert seconds_until_due(ON_DEMAND, now=150.0, capacity_since=100.0) == 70.0
    assert seconds_until_due(ON_DEMAND, now=250.0, capacity_since=100.0) == 0.0
    assert seconds_until_due(ON_DEMAND, now=150.0, capacity_since=None) is None


def test_labels_name_the_target_ecs_ran() -> None:
    assert (
        target_label({"capacityProviderStrategy": [*SPOT, {"capacityProvider": "FARGATE"}]})
        == "FARGATE_SPOT+FARGATE"
    )
    assert launched_on({"launchType": "FARGATE"}, "why") == "FARGATE (fallback: why)"
    assert (
        launched_on({"launchType": "FARGATE", "capacityProviderName": "FARGATE"}, "w")
        == "FARGATE (fallback: w)"
    )
