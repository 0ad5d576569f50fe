"""Where a task's container logs land: the awslogs stream from a task definition and a task ARN."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor.request.log_location import LogLocation, awslogs_location, awslogs_problem

CONTAINER = "airflow-worker"
ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
OLD_ARN = "arn:aws:ecs:us-east-1:123456789012:task/0123456789abcdef0123456789abcdef"


def _td(log_configuration: dict[str, Any] | None, name: str = CONTAINER) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": "img", "memory": 512}
    if log_configuration is not None:
        container["logConfiguration"] = log_configuration
    return {"containerDefinitions": [{"name": "sidecar", "image": "x"}, container]}


def _awslogs(**options: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": options}


@pytest.mark.parametrize(
    ("task_definition", "task_arn", "expected"),
    [
        (
            _td(_awslogs(**{"awslogs-group": "/ecs/af", "awslogs-stream-prefix": "ecs"})),
            ARN,
            LogLocation("/ecs/af", f"ecs/{CONTAINER}/0123456789abcdef0123456789abcdef"),
        ),
        (
            _td(
                _awslogs(
                    **{"awslogs-group": "g", "awslogs-stream-prefix": "p", "awslogs-region": "eu-west-1"}
                )
            ),
            OLD_ARN,
            LogLocation("g", f"p/{CONTAINER}/0123456789abcdef0123456789abcdef", "eu-west-1"),
        ),
        (_td(_awslogs(**{"awslogs-group": "g"})), ARN, None),  # no prefix: stream name unpredictable
        (_td(_awslogs(**{"awslogs-stream-prefix": "p"})), ARN, None),  # no group
        (_td({"logDriver": "json-file", "options": {}}), ARN, None),
        (_td({"logDriver": "awsfirelens", "options": {"Name": "cloudwatch"}}), ARN, None),
        (_td(None), ARN, None),
        (_td(_awslogs(**{"awslogs-group": "g", "awslogs-stream-prefix": "p"}), name="other"), ARN, None),
        ({}, ARN, None),
    ],
)
def test_awslogs_location(task_definition: dict[str, Any], task_arn: str, expected: LogLocation | None):
    assert awslogs_location(task_definition, CONTAINER, task_arn) == expected


def test_location_source_names_group_and_stream():
    assert LogLocation("g", "p/c/id").source == "CloudWatch Logs g/p/c/id"


@pytest.mark.parametrize(
    ("task_definition", "fragment"),
    [
        (_td(None), "default (json-file) log driver"),
        (_td({"logDriver": "splunk"}), "splunk log driver"),
        (_td(_awslogs(**{"awslogs-group": "g"})), "no awslogs-stream-prefix"),
        (_td(_awslogs(**{"awslogs-stream-prefix": "p"})), "no awslogs-group"),
        (_td(None, name="web"), "no container named 'airflow-worker' (it has: sidecar, web)"),
    ],
)
def test_awslogs_problem_explains(task_definition: dict[str, Any], fragment: str):
    assert fragment in (awslogs_problem(task_definition, CONTAINER) or "")


def test_awslogs_problem_none_when_locatable():
    td = _td(_awslogs(**{"awslogs-group": "g", "awslogs-stream-prefix": "p"}))
    assert awslogs_problem(td, CONTAINER) is None
