"""``check``'s rows for derived task definitions against the local ECS endpoint, which answers a denied
listing as ECS does (its ``deny_actions`` knob): the clean-up's listing rights are probed and a denial
names the permission; what cannot be probed stays a SKIP that names it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecs_executor.check.derived import CLEANUP_ROW, REGISTER_ROW
from ecs_executor.check.rows import CheckResult
from ecs_executor.check.run import collect_checks
from ecs_executor.local_ecs import LocalEcs
from tests.conftest import CONTAINER, executor_settings
from tests.integration.local_ecs.helpers import make_client

CLUSTER = "checked"
ROLE = "arn:aws:iam::123456789012:role/airflow-task"


class LocalClients:
    """The check's clients: ECS at the local endpoint (nothing else is asked by these rows)."""

    def __init__(self, url: str) -> None:
        self.ecs = make_client(url)

    def client(self, service: str, region_name: str | None = None) -> Any:
        if service != "ecs":
            raise RuntimeError(f"no {service} at the local ECS endpoint")
        return self.ecs

    def describe_connection(self) -> str:
        return "the local ECS endpoint"


@pytest.fixture
def lecs() -> Iterator[LocalEcs]:
    with LocalEcs() as endpoint:
        assert endpoint.url is not None
        ecs = make_client(endpoint.url)
        ecs.create_cluster(clusterName=CLUSTER)
        ecs.register_task_definition(
            family=CLUSTER,
            taskRoleArn=ROLE,
            containerDefinitions=[{"name": CONTAINER, "image": "airflow:3", "memory": 512}],
        )
        yield endpoint


def _rows(lecs: LocalEcs) -> dict[str, CheckResult]:
    assert lecs.url is not None
    results = collect_checks(executor_settings(CLUSTER, launch_type="EC2"), clients=LocalClients(lecs.url))
    return {r.name: r for r in results}


def test_allowed_listings_pass_and_the_unprobed_rights_are_named(lecs: LocalEcs) -> None:
    rows = _rows(lecs)
    assert rows[CLEANUP_ROW].status == "PASS", rows[CLEANUP_ROW]
    assert "ecs:ListTaskDefinitionFamilies, ecs:ListTaskDefinitions" in rows[CLEANUP_ROW].detail
    register = rows[REGISTER_ROW]
    assert register.status == "SKIP"
    for right in (
        "ecs:RegisterTaskDefinition",
        "ecs:TagResource",
        f"iam:PassRole on {ROLE}",
        "ecs:DeregisterTaskDefinition",
        "ecs:DeleteTaskDefinitions",
    ):
        assert right in register.detail, right


@pytest.mark.parametrize("action", ["ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions"])
def test_a_denied_listing_fails_naming_the_permission(lecs: LocalEcs, action: str) -> None:
    lecs.configure(deny_actions=action)
    row = _rows(lecs)[CLEANUP_ROW]
    assert row.status == "FAIL"
    assert row.detail.startswith(f"{action} denied: AccessDeniedException")
    assert f"Allow {action} to the scheduler's role" in row.fix
    lecs.configure(deny_actions="")
    assert _rows(lecs)[CLEANUP_ROW].status == "PASS"


def test_another_failure_of_the_listing_is_a_fail_with_the_error(lecs: LocalEcs) -> None:
    lecs.configure(server_error_rate=1.0, fault_operations="ListTaskDefinitionFamilies")
    row = _rows(lecs)[CLEANUP_ROW]
    assert row.status == "FAIL" and row.detail.startswith("ecs:ListTaskDefinitionFamilies failed:"), row
