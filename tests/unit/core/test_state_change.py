"""Reading ECS task state change events (pure): what is an event, what is dropped, and version order."""

from __future__ import annotations

import json

import pytest

from ecs_executor.core.state_change import Dropped, Order, TaskEvent, order, parse_message

ARN = "arn:aws:ecs:us-east-1:123456789012:task/main/0123456789abcdef"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/main"


def body(**detail_changes: object) -> str:
    # Shape and timestamp format as in AWS's "Amazon ECS task state change events" example.
    detail = {
        "clusterArn": CLUSTER,
        "taskArn": ARN,
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "updatedAt": "2026-11-29T07:00:01.500Z",
        "version": 3,
        "containers": [{"name": "base", "lastStatus": "RUNNING"}],
        **detail_changes,
    }
    return json.dumps(
        {
            "version": "0",
            "id": "9bcdac79-b31f-4d3d-9410-fbd727c29fab",
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": "123456789012",
            "time": "2026-11-29T07:00:02Z",
            "region": "us-east-1",
            "resources": [ARN],
            "detail": {k: v for k, v in detail.items() if v is not None},
        }
    )


def test_an_event_is_read_with_its_version_and_change_time() -> None:
    event = parse_message(body())
    assert isinstance(event, TaskEvent)
    assert (event.task_arn, event.cluster_name, event.version) == (ARN, "main", 3)
    assert event.changed_at == pytest.approx(1795935601.5)
    assert event.detail["lastStatus"] == "RUNNING"


def test_without_updated_at_the_event_time_is_used() -> None:
    event = parse_message(body(updatedAt=None))
    assert isinstance(event, TaskEvent) and event.changed_at == pytest.approx(1795935602.0)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        (
            json.dumps({"source": "aws.ecs", "detail-type": "ECS Service Action", "detail": {}}),
            "not an ECS task",
        ),
        (json.dumps({"source": "aws.ec2", "detail-type": "ECS Task State Change"}), "not an ECS task"),
        (body(version=None), "version None"),
        (body(version=True), "version True"),
        (body(taskArn=None), "without taskArn"),
    ],
)
def test_anything_else_is_dropped_with_a_reason(raw: str, why: str) -> None:
    dropped = parse_message(raw)
    assert isinstance(dropped, Dropped) and why in dropped.reason


@pytest.mark.parametrize(
    ("known", "version", "expected"),
    [
        (0, 1, Order.NEXT),
        (0, 5, Order.NEXT),  # nothing known yet: no gap to speak of
        (2, 3, Order.NEXT),
        (2, 4, Order.GAP),
        (3, 3, Order.DUPLICATE),
        (3, 2, Order.STALE),
    ],
)
def test_version_order(known: int, version: int, expected: Order) -> None:
    assert order(known, version) is expected


@pytest.mark.parametrize(
    ("stamp", "epoch"),
    [
        ("2024-11-13T21:22:46.71Z", 1731532966.71),  # ECS drops trailing zeros of the milliseconds
        ("2024-11-13T21:22:46Z", 1731532966.0),
        ("2024-11-13T21:22:46.123456+00:00", 1731532966.123456),
        ("yesterday", None),
        ("2024-11-13T21:22:46.71+02:00", None),  # ECS writes UTC; anything else is not trusted
    ],
)
def test_change_times_as_ecs_writes_them(stamp: str, epoch: float | None) -> None:
    event = parse_message(body(updatedAt=stamp))
    assert isinstance(event, TaskEvent)
    if epoch is None:
        assert event.changed_at == pytest.approx(1795935602.0)  # falls back to the envelope's time
    else:
        assert event.changed_at == pytest.approx(epoch)
