"""Pure: how RunTask arguments are layered, and which launch target wins."""

from __future__ import annotations

from ecs_executor.request.layering import deep_merge, fill_launch_target, overlay, targets_fargate

SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
ASG = [{"capacityProvider": "my-asg", "weight": 1}]


def test_a_strategy_above_replaces_the_launch_type_below_and_vice_versa() -> None:
    base = {"cluster": "c", "launchType": "FARGATE", "platformVersion": "LATEST"}
    on_spot = overlay(base, {"capacityProviderStrategy": SPOT})
    assert on_spot == {"cluster": "c", "capacityProviderStrategy": SPOT, "platformVersion": "LATEST"}
    on_ec2 = overlay(
        {"cluster": "c", "capacityProviderStrategy": SPOT, "platformVersion": "LATEST"}, {"launchType": "EC2"}
    )
    # EC2 has no platform version: ECS would refuse it.
    assert on_ec2 == {"cluster": "c", "launchType": "EC2"}
    on_asg = overlay(base, {"capacityProviderStrategy": ASG})
    assert "launchType" not in on_asg and "platformVersion" not in on_asg


def test_a_layer_that_sets_both_keeps_both_for_validation_to_refuse() -> None:
    both = overlay({"launchType": "EC2"}, {"launchType": "FARGATE", "capacityProviderStrategy": SPOT})
    assert both["launchType"] == "FARGATE" and both["capacityProviderStrategy"] == SPOT


def test_an_explicit_platform_version_above_is_kept() -> None:
    kept = overlay({"launchType": "FARGATE"}, {"platformVersion": "1.4.0"})
    assert kept["platformVersion"] == "1.4.0"


def test_container_overrides_merge_by_name_and_lists_elsewhere_are_replaced() -> None:
    base = {
        "overrides": {"containerOverrides": [{"name": "w", "environment": [{"name": "A", "value": "1"}]}]},
        "tags": [{"key": "a", "value": "1"}],
    }
    top = {
        "overrides": {"containerOverrides": [{"name": "w", "environment": [{"name": "B", "value": "2"}]}]},
        "tags": [{"key": "b", "value": "2"}],
    }
    merged = deep_merge(base, top)
    assert merged["overrides"]["containerOverrides"] == [
        {"name": "w", "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    ]
    assert merged["tags"] == [{"key": "b", "value": "2"}]


def test_the_cluster_default_decides_unless_the_request_does() -> None:
    bare = {"cluster": "c"}
    assert fill_launch_target(bare, SPOT) == bare  # ECS applies the cluster's default strategy
    assert fill_launch_target(bare, None) == {
        "cluster": "c",
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
    }
    assert fill_launch_target({"launchType": "EC2"}, None) == {"launchType": "EC2"}
    assert targets_fargate({"launchType": "EC2"}) is False
    assert targets_fargate({"capacityProviderStrategy": SPOT}) is True
    assert targets_fargate({"capacityProviderStrategy": SPOT + ASG}) is False
    assert targets_fargate({}) is None
