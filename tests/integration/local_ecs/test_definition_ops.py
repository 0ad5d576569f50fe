"""Deregistering, listing and deleting task definitions on the local endpoint, as ECS answers them."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor.local_ecs import LocalEcs
from tests.integration.local_ecs.helpers import CLUSTER, error_code, register, run, wait_for, wait_status

LONG = ["python", "-c", "import time; time.sleep(30)"]


def test_deregistered_definitions_keep_their_tasks_but_start_no_new_ones(client: Any) -> None:
    arn = register(client, LONG, family="dereg")
    task = run(client, taskDefinition=arn)
    wait_status(client, task, "RUNNING")
    answer = client.deregister_task_definition(taskDefinition=arn)["taskDefinition"]
    assert answer["status"] == "INACTIVE" and "deregisteredAt" in answer
    assert describe_status(client, task) == "RUNNING"
    with pytest.raises(client.exceptions.ClientException, match="inactive"):
        client.run_task(cluster=CLUSTER, taskDefinition=arn)
    # Again: harmless.
    assert client.deregister_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "INACTIVE"
    client.stop_task(cluster=CLUSTER, task=task)


def describe_status(client: Any, task: str) -> str:
    return str(client.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"][0]["lastStatus"])


def test_list_task_definitions_by_family_status_sort_and_pages(client: Any) -> None:
    a = [register(client, ["true"], family="alpha") for _ in range(3)]
    b = register(client, ["true"], family="alphabet")
    listed = client.list_task_definitions(familyPrefix="alpha")["taskDefinitionArns"]
    assert listed == a  # the full family name, not a prefix; ascending revisions
    assert client.list_task_definitions(familyPrefix="alpha", sort="DESC")["taskDefinitionArns"] == a[::-1]
    everything = client.list_task_definitions()["taskDefinitionArns"]
    assert everything == [*a, b]
    first = client.list_task_definitions(maxResults=2)
    second = client.list_task_definitions(maxResults=2, nextToken=first["nextToken"])
    assert first["taskDefinitionArns"] + second["taskDefinitionArns"] == everything
    assert "nextToken" not in second
    client.deregister_task_definition(taskDefinition=a[0])
    assert client.list_task_definitions(familyPrefix="alpha")["taskDefinitionArns"] == a[1:]
    # INACTIVE revisions are listed only while a task uses them (ECS's documented rule).
    assert client.list_task_definitions(familyPrefix="alpha", status="INACTIVE")["taskDefinitionArns"] == []
    with pytest.raises(client.exceptions.ClientError) as err:
        client.list_task_definitions(maxResults=101)
    assert error_code(err) == "InvalidParameterException"
    with pytest.raises(client.exceptions.ClientError) as err:
        client.list_task_definitions(status="GONE")
    assert "status" in str(err.value)


def test_inactive_revisions_a_task_uses_are_listed(client: Any) -> None:
    arn = register(client, LONG, family="busy")
    task = run(client, taskDefinition=arn)
    client.deregister_task_definition(taskDefinition=arn)
    assert client.list_task_definitions(familyPrefix="busy", status="INACTIVE")["taskDefinitionArns"] == [arn]
    client.stop_task(cluster=CLUSTER, task=task)
    wait_status(client, task, "STOPPED")
    assert client.list_task_definitions(familyPrefix="busy", status="INACTIVE")["taskDefinitionArns"] == []


def test_list_families_by_prefix_and_status(client: Any) -> None:
    register(client, ["true"], family="etl")
    old = register(client, ["true"], family="etl-x0123456789abcdef")
    register(client, ["true"], family="other")
    assert client.list_task_definition_families(familyPrefix="etl")["families"] == [
        "etl",
        "etl-x0123456789abcdef",
    ]
    client.deregister_task_definition(taskDefinition=old)
    listed = client.list_task_definition_families
    assert listed(familyPrefix="etl", status="ACTIVE")["families"] == ["etl"]
    assert listed(familyPrefix="etl", status="INACTIVE")["families"] == ["etl-x0123456789abcdef"]
    assert listed(familyPrefix="etl", status="ALL")["families"] == ["etl", "etl-x0123456789abcdef"]
    page = listed(maxResults=1)
    assert page["families"] == ["etl"] and page["nextToken"]
    client.delete_task_definitions(taskDefinitions=[old])
    # Every revision deleted and unused: the family disappears.
    assert listed(familyPrefix="etl", status="ALL")["families"] == ["etl"]


def test_delete_only_inactive_revisions_at_most_ten(client: Any) -> None:
    active = register(client, ["true"], family="del")
    inactive = register(client, ["true"], family="del")
    client.deregister_task_definition(taskDefinition=inactive)
    answer = client.delete_task_definitions(taskDefinitions=[active, "del:2", "del:9", "del"])
    assert [d["taskDefinitionArn"] for d in answer["taskDefinitions"]] == [inactive]
    assert answer["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    assert "deleteRequestedAt" in answer["taskDefinitions"][0]
    reasons = {f["arn"]: f["reason"] for f in answer["failures"]}
    assert "ACTIVE status" in reasons[active]
    assert "does not exist" in reasons["del:9"]
    assert "revision must be specified" in reasons["del"]
    # Unused: gone at once; describing, deleting or deregistering it again finds nothing.
    with pytest.raises(client.exceptions.ClientException):
        client.describe_task_definition(taskDefinition=inactive)
    again = client.delete_task_definitions(taskDefinitions=[inactive])
    assert again["taskDefinitions"] == [] and "does not exist" in again["failures"][0]["reason"]
    with pytest.raises(client.exceptions.ClientException):
        client.deregister_task_definition(taskDefinition=inactive)
    # Revision numbers are never reused.
    assert register(client, ["true"], family="del").endswith("del:3")
    with pytest.raises(client.exceptions.ClientError) as err:
        client.delete_task_definitions(taskDefinitions=[f"del:{i}" for i in range(1, 12)])
    assert error_code(err) == "InvalidParameterException"


def test_a_deleted_revision_a_task_uses_stays_until_the_task_stops(client: Any) -> None:
    arn = register(client, LONG, family="held")
    task = run(client, taskDefinition=arn)
    wait_status(client, task, "RUNNING")
    client.deregister_task_definition(taskDefinition=arn)
    assert client.delete_task_definitions(taskDefinitions=[arn])["failures"] == []
    described = client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert described["status"] == "DELETE_IN_PROGRESS" and describe_status(client, task) == "RUNNING"
    assert client.list_task_definitions(familyPrefix="held", status="DELETE_IN_PROGRESS")[
        "taskDefinitionArns"
    ] == [arn]
    # Deleting it again while in progress is harmless.
    assert client.delete_task_definitions(taskDefinitions=[arn])["failures"] == []
    client.stop_task(cluster=CLUSTER, task=task)
    wait_status(client, task, "STOPPED")
    wait_for(
        lambda: (
            not client.list_task_definitions(familyPrefix="held", status="DELETE_IN_PROGRESS")[
                "taskDefinitionArns"
            ]
        )
    )
    with pytest.raises(client.exceptions.ClientException):
        client.describe_task_definition(taskDefinition=arn)


def test_the_delete_and_read_buckets(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(throttle=True, throttle_overrides={"task_definition_delete": [2, 0.001]})
    arn = register(client, ["true"], family="thr")
    client.deregister_task_definition(taskDefinition=arn)
    for _ in range(2):
        client.delete_task_definitions(taskDefinitions=[arn])
    with pytest.raises(client.exceptions.ClientError) as err:
        client.delete_task_definitions(taskDefinitions=[arn])
    assert error_code(err) == "ThrottlingException"
    client.list_task_definitions()  # the read bucket is another one
    lecs.configure(throttle_overrides={"task_definition_read": [1, 0.001]})
    client.list_task_definition_families()
    with pytest.raises(client.exceptions.ClientError) as err:
        client.list_task_definitions()
    assert error_code(err) == "ThrottlingException"
    lecs.configure(throttle=False, throttle_overrides={})


@pytest.mark.parametrize(
    ("action", "listing"),
    [
        ("ecs:ListTaskDefinitionFamilies", lambda c: c.list_task_definition_families(maxResults=1)),
        ("ecs:ListTaskDefinitions", lambda c: c.list_task_definitions(familyPrefix="x", maxResults=1)),
    ],
)
def test_a_denied_listing_answers_as_ecs_on_no_resource(
    lecs: LocalEcs, client: Any, action: str, listing: Any
) -> None:
    lecs.configure(deny_actions=action)
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        listing(client)
    assert error_code(excinfo) == "AccessDeniedException"
    assert f"is not authorized to perform: {action} on resource: * because" in str(excinfo.value)
    lecs.configure(deny_actions="")
    listing(client)
