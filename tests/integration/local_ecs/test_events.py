"""Task state change events: tasks run through the endpoint land in moto's SQS as EventBridge delivers
them, one per task version, with the fault switches doing what they say.

The expected shape comes from AWS's "Amazon ECS task state change events" reference (its example) and
a STOPPED event captured from a real task (see ``local_ecs/event_shape.py``); field names are also checked
against botocore's ECS ``Task``/``Container`` shapes, whose timestamps the events write as ISO strings.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from ecs_executor.local_ecs import LocalEcs
from ecs_executor.local_ecs.event_shape import event_time, iso_time
from ecs_executor.local_ecs.knobs import KnobError, Knobs
from ecs_executor.local_ecs.sqs_client import queue_region
from tests.integration.local_ecs.helpers import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    PY,
    describe,
    make_client,
    register,
    run,
    wait_for,
    wait_status,
)
from tests.support.sqs_server import SqsQueue

Event = dict[str, Any]

ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
# Every detail field seen in the reference example or the captured STOPPED event.
DETAIL_FIELDS = {
    "attachments",
    "attributes",
    "availabilityZone",
    "clusterArn",
    "connectivity",
    "connectivityAt",
    "containerInstanceArn",
    "containers",
    "cpu",
    "createdAt",
    "desiredStatus",
    "enableExecuteCommand",
    "ephemeralStorage",
    "executionStoppedAt",
    "group",
    "launchType",
    "lastStatus",
    "memory",
    "overrides",
    "platformVersion",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "startedBy",
    "stoppingAt",
    "stoppedAt",
    "stoppedReason",
    "stopCode",
    "taskArn",
    "taskDefinitionArn",
    "updatedAt",
    "version",
}
ALWAYS = {
    "attachments",
    "availabilityZone",
    "clusterArn",
    "containers",
    "createdAt",
    "desiredStatus",
    "group",
    "launchType",
    "lastStatus",
    "overrides",
    "taskArn",
    "taskDefinitionArn",
    "updatedAt",
    "version",
}
CONTAINER_FIELDS = {
    "containerArn",
    "exitCode",
    "lastStatus",
    "name",
    "image",
    "imageDigest",
    "runtimeId",
    "taskArn",
    "networkInterfaces",
    "cpu",
    "memory",
    "reason",
    "managedAgents",
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,2}[1-9])?Z$")
WHOLE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
STAMPS = (
    "createdAt",
    "connectivityAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppingAt",
    "executionStoppedAt",
    "stoppedAt",
)
FAST = {"provisioning_seconds": 0.05, "deprovisioning_seconds": 0.01}


@functools.cache
def _ecs_shapes() -> tuple[Any, Any]:
    model = botocore.session.get_session().get_service_model("ecs")
    return model.shape_for("Task"), model.shape_for("Container")


def check_value(value: Any, shape: Any, path: str) -> None:
    """botocore's type for the field, except that timestamps are ISO strings in events."""
    kind = shape.type_name
    if kind == "timestamp":
        assert isinstance(value, str) and ISO.match(value), f"{path}: {value!r} is not an event timestamp"
    elif kind == "structure":
        assert isinstance(value, dict), path
        for key, item in value.items():
            assert key in shape.members, f"{path}.{key} is not a member of {shape.name}"
            check_value(item, shape.members[key], f"{path}.{key}")
    elif kind == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            check_value(item, shape.member, f"{path}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif kind == "boolean":
        assert isinstance(value, bool), path


def check_event(event: Event) -> None:
    """The envelope and detail as EventBridge delivers an ECS task state change event."""
    assert set(event) == ENVELOPE
    assert event["version"] == "0" and event["detail-type"] == "ECS Task State Change"
    assert event["source"] == "aws.ecs" and event["account"] == "123456789012"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", event["id"])
    assert WHOLE_SECONDS.match(event["time"])
    detail = event["detail"]
    assert event["resources"] == [detail["taskArn"]]
    assert event["region"] == detail["taskArn"].split(":")[3]
    assert ALWAYS <= set(detail) <= DETAIL_FIELDS, set(detail) ^ DETAIL_FIELDS
    assert event["time"] == detail["updatedAt"][:19] + "Z"  # the change, in whole seconds
    task_shape, _ = _ecs_shapes()
    assert ISO.match(detail["updatedAt"])  # the one field the Task object does not have
    check_value({k: v for k, v in detail.items() if k != "updatedAt"}, task_shape, "detail")
    for container in detail["containers"]:
        assert set(container) <= CONTAINER_FIELDS
        assert container["taskArn"] == detail["taskArn"]
    assert "healthStatus" not in detail and "tags" not in detail


def by_task(events: list[Event]) -> dict[str, list[Event]]:
    tasks: dict[str, list[Event]] = {}
    for event in events:
        tasks.setdefault(event["detail"]["taskArn"], []).append(event)
    return tasks


def versions(events: list[Event]) -> list[int]:
    return [event["detail"]["version"] for event in events]


def stopped(count: int) -> Callable[[list[Event]], bool]:
    """``bodies`` condition: ``count`` tasks have delivered their STOPPED event."""
    return lambda events: sum(e["detail"]["lastStatus"] == "STOPPED" for e in events) >= count


def epoch(stamp: str) -> float:
    """Seconds since the epoch (Python 3.10's ``fromisoformat`` cannot read ``...46.71Z``)."""
    import datetime

    whole, _, fraction = stamp.rstrip("Z").partition(".")
    parsed = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp() + (int(fraction.ljust(3, "0")) / 1000 if fraction else 0.0)


@pytest.fixture
def publishing(sqs_queue: SqsQueue, tmp_path: Path) -> Iterator[Callable[..., tuple[LocalEcs, Any]]]:
    """Start an endpoint publishing to ``sqs_queue`` (plus knobs); returns it and a client with a cluster."""
    made: list[LocalEcs] = []

    def start(**knobs: Any) -> tuple[LocalEcs, Any]:
        base = {
            **FAST,
            "log_dir": str(tmp_path / "logs"),
            "events_queue_url": sqs_queue.queue_url,
            "events_endpoint_url": sqs_queue.endpoint_url,
        }
        ecs = LocalEcs(**{**base, **knobs})
        made.append(ecs)
        ecs.start()
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        return ecs, client

    yield start
    for ecs in made:
        ecs.stop()


# ---- shape and content -------------------------------------------------------------------------------


def test_pretend_task_publishes_one_event_per_version(publishing: Any, sqs_queue: SqsQueue) -> None:
    ecs, client = publishing(pretend_seconds=0.1, pretend_exit_code=0)
    register(client, ["true"])
    arn = run(client, startedBy="airflow-test", overrides={"containerOverrides": [{"name": CONTAINER}]})
    final = wait_status(client, arn, "STOPPED")
    assert ecs.wait_for_events()
    messages = []
    while batch := sqs_queue.receive():
        messages.extend(batch)
    assert not any(m.get("MessageAttributes") for m in messages)
    events = [json.loads(m["Body"]) for m in messages]  # the body is the event itself, no wrapper

    for event in events:
        check_event(event)
    assert versions(events) == list(range(1, final["version"] + 1))  # one per version, in order here
    assert len({e["id"] for e in events}) == len(events)
    steps = [(e["detail"]["lastStatus"], e["detail"]["desiredStatus"]) for e in events]
    assert steps == [
        ("PROVISIONING", "RUNNING"),
        ("PENDING", "RUNNING"),
        ("RUNNING", "RUNNING"),
        ("RUNNING", "RUNNING"),  # the container exited
        ("RUNNING", "STOPPED"),
        ("DEPROVISIONING", "STOPPED"),
        ("STOPPED", "STOPPED"),
    ]
    assert [e["detail"]["containers"][0].get("exitCode") for e in events] == [None] * 3 + [0] * 4
    assert "stopCode" not in events[3]["detail"]
    last = events[-1]["detail"]
    assert last["stopCode"] == "EssentialContainerExited"
    assert last["stoppedReason"] == "Essential container in task exited"
    assert last["startedBy"] == "airflow-test" and last["group"] == "family:worker"
    assert last["overrides"]["containerOverrides"] == [{"name": CONTAINER}]
    assert last["connectivity"] == "CONNECTED"
    # The same task DescribeTasks reports, timestamps as ISO strings instead of epoch seconds.
    for name in ("clusterArn", "taskArn", "taskDefinitionArn", "launchType", "lastStatus", "version"):
        assert last[name] == final[name], name
    for name in STAMPS:
        assert abs(epoch(last[name]) - final[name].timestamp()) < 0.002, name
    (container,) = last["containers"]
    assert container["containerArn"] == final["containers"][0]["containerArn"]
    assert container["exitCode"] == 0 and container["lastStatus"] == "STOPPED"
    assert epoch(last["updatedAt"]) == epoch(last["stoppedAt"])
    updated = [epoch(e["detail"]["updatedAt"]) for e in events]
    assert updated == sorted(updated)
    assert ecs.stats()["events"] == {
        "published": 7,
        "duplicated": 0,
        "dropped": 0,
        "delayed": 0,
        "send_failed": 0,
        "filtered": 0,
        "pending": 0,
    }


def test_real_process_exit_code_and_user_stop(publishing: Any, sqs_queue: SqsQueue) -> None:
    _, client = publishing(stop_timeout_seconds=5)
    register(client, [PY, "-c", "import sys; sys.exit(3)"])
    exits = run(client)
    register(client, [PY, "-c", "import time; time.sleep(60)"], family="sleeper")
    sleeps = run(client, taskDefinition="sleeper")
    wait_status(client, sleeps, "RUNNING")
    client.stop_task(cluster=CLUSTER, task=sleeps, reason="revoked by test")
    wait_status(client, sleeps, "STOPPED")
    wait_status(client, exits, "STOPPED")
    tasks = by_task(sqs_queue.bodies(until=stopped(2)))
    for events in tasks.values():
        for event in events:
            check_event(event)
        assert versions(events) == list(range(1, len(events) + 1))
    last = tasks[exits][-1]["detail"]
    assert last["lastStatus"] == "STOPPED" and last["stopCode"] == "EssentialContainerExited"
    assert last["containers"][0]["exitCode"] == 3
    assert tasks[exits][-1]["detail"]["version"] == describe(client, exits)["version"]
    last = tasks[sleeps][-1]["detail"]
    assert last["stopCode"] == "UserInitiated" and last["stoppedReason"] == "revoked by test"
    assert last["containers"][0]["exitCode"] == 143  # SIGTERM, as Docker reports it
    # desiredStatus turned STOPPED (with the stop code) before the process was gone.
    first_stop = next(e["detail"] for e in tasks[sleeps] if e["detail"]["desiredStatus"] == "STOPPED")
    assert first_stop["lastStatus"] == "RUNNING" and first_stop["stopCode"] == "UserInitiated"
    assert "exitCode" not in first_stop["containers"][0]


def test_failed_start_carries_the_reason(publishing: Any, sqs_queue: SqsQueue) -> None:
    _, client = publishing(image_missing=True)
    register(client, ["true"])
    arn = run(client)
    wait_status(client, arn, "STOPPED")
    events = by_task(sqs_queue.bodies(until=stopped(1)))[arn]
    assert [e["detail"]["lastStatus"] for e in events] == [
        "PROVISIONING",
        "PENDING",
        "PENDING",  # desiredStatus STOPPED, stopCode TaskFailedToStart
        "DEPROVISIONING",
        "STOPPED",
    ]
    last = events[-1]["detail"]
    assert last["stopCode"] == "TaskFailedToStart"
    assert last["stoppedReason"].startswith("CannotPullContainerError")
    (container,) = last["containers"]
    assert container["reason"] == last["stoppedReason"] and "exitCode" not in container
    assert "startedAt" not in last


def test_fargate_task_fields(publishing: Any, sqs_queue: SqsQueue) -> None:
    from tests.integration.local_ecs.helpers import NETWORK, fargate_definition

    _, client = publishing(pretend_seconds=0.05)
    fargate_definition(client)
    arn = run(client, taskDefinition="fg", launchType="FARGATE", networkConfiguration=NETWORK)
    wait_status(client, arn, "STOPPED")
    last = by_task(sqs_queue.bodies(until=stopped(1)))[arn][-1]
    check_event(last)
    detail = last["detail"]
    assert detail["launchType"] == "FARGATE" and detail["platformVersion"] == "1.4.0"
    assert detail["cpu"] == "256" and detail["memory"] == "512"
    assert detail["ephemeralStorage"] == {"sizeInGiB": 20}


# ---- switches ----------------------------------------------------------------------------------------


def test_nothing_is_published_without_a_queue(publishing: Any, sqs_queue: SqsQueue) -> None:
    ecs, client = publishing(events_queue_url=None, pretend_seconds=0.05)
    register(client, ["true"])
    wait_status(client, run(client), "STOPPED")
    assert ecs.stats()["events"]["pending"] == 0 and ecs.server.events.accepted == 0
    assert ecs.server.events._senders == []  # no thread, no client
    assert sqs_queue.receive(wait_seconds=1) == []
    # Set at run time, it starts with the next change; cleared, it stops.
    ecs.configure(events_queue_url=sqs_queue.queue_url)
    wait_status(client, run(client), "STOPPED")
    assert len(sqs_queue.bodies(until=stopped(1))) == 7
    ecs.configure(events_queue_url=None)
    wait_status(client, run(client), "STOPPED")
    assert ecs.wait_for_events() and sqs_queue.receive(wait_seconds=1) == []


def test_cluster_filter(publishing: Any, sqs_queue: SqsQueue) -> None:
    ecs, client = publishing(events_clusters="other, arn:aws:ecs:us-east-1:123456789012:cluster/third")
    for name in ("other", "third"):
        client.create_cluster(clusterName=name)
    register(client, ["true"])
    ecs.configure(pretend_seconds=0.05)
    arns = {}
    for cluster in (CLUSTER, "other", "third"):
        arns[cluster] = client.run_task(cluster=cluster, taskDefinition=FAMILY)["tasks"][0]["taskArn"]
    for cluster, arn in arns.items():
        wait_for_stopped(client, cluster, arn)
    tasks = by_task(sqs_queue.bodies(until=stopped(2)))
    assert set(tasks) == {arns["other"], arns["third"]}  # by name and by ARN; CLUSTER's are filtered
    assert ecs.stats()["events"]["filtered"] == 7


def wait_for_stopped(client: Any, cluster: str, arn: str) -> None:
    wait_for(
        lambda: client.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["lastStatus"] == "STOPPED"
    )


def test_duplicates_are_the_same_message_twice(publishing: Any, sqs_queue: SqsQueue) -> None:
    ecs, client = publishing(pretend_seconds=0.05, events_duplicate_rate=1.0)
    register(client, ["true"])
    wait_status(client, run(client), "STOPPED")
    assert ecs.wait_for_events()
    events = sqs_queue.bodies(until=lambda got: len(got) >= 14)
    assert len(events) == 14
    ids: dict[str, list[Event]] = {}
    for event in events:
        ids.setdefault(event["id"], []).append(event)
    assert len(ids) == 7 and all(len(copies) == 2 and copies[0] == copies[1] for copies in ids.values())
    assert sorted(versions(events)) == sorted(list(range(1, 8)) * 2)
    stats = ecs.stats()["events"]
    assert stats["duplicated"] == 7 and stats["published"] == 14


def test_drop_rate(publishing: Any, sqs_queue: SqsQueue) -> None:
    ecs, client = publishing(pretend_seconds=0.05, events_drop_rate=1.0)
    register(client, ["true"])
    wait_status(client, run(client), "STOPPED")
    assert ecs.wait_for_events()
    assert sqs_queue.receive(wait_seconds=1) == []
    assert ecs.stats()["events"]["dropped"] == 7 and ecs.stats()["events"]["published"] == 0

    ecs.configure(events_drop_rate=0.5, seed=7)
    arns = [run(client) for _ in range(6)]
    for arn in arns:
        wait_status(client, arn, "STOPPED")
    assert ecs.wait_for_events()
    events = sqs_queue.bodies()
    stats = ecs.stats()["events"]
    assert len(events) == stats["published"] and stats["dropped"] - 7 == 6 * 7 - len(events)
    assert 0 < len(events) < 6 * 7
    gaps = [v for v in by_task(events).values() if versions(v) != list(range(1, len(v) + 1))]
    assert gaps  # some task's stream has a hole a consumer must notice


def test_delay_reorders_events(publishing: Any, sqs_queue: SqsQueue) -> None:
    ecs, client = publishing(pretend_seconds=0.05, events_max_delay_seconds=1.0, seed=3)
    register(client, ["true"])
    arns = [run(client) for _ in range(4)]
    for arn in arns:
        wait_status(client, arn, "STOPPED")
    assert ecs.stats()["events"]["pending"] > 0  # some are still on their way when the tasks have stopped
    events = sqs_queue.bodies(until=lambda got: len(got) >= 4 * 7, timeout=20)
    assert len(events) == 28 and set(by_task(events)) == set(arns)  # late, but every one arrives
    out_of_order = [v for v in by_task(events).values() if versions(v) != sorted(versions(v))]
    assert out_of_order
    for stream in by_task(events).values():
        assert sorted(versions(stream)) == list(range(1, 8))
    assert ecs.stats()["events"]["delayed"] == 28


def test_close_delivers_what_is_still_delayed(sqs_queue: SqsQueue, tmp_path: Path) -> None:
    ecs = LocalEcs(
        **FAST,
        pretend_seconds=0.05,
        events_queue_url=sqs_queue.queue_url,
        events_endpoint_url=sqs_queue.endpoint_url,
        events_max_delay_seconds=3600,
    )
    with ecs:
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        register(client, ["true"])
        wait_status(client, run(client), "STOPPED")
        assert ecs.stats()["events"]["pending"] > 0  # each waits a random 0..3600 s
    assert len(sqs_queue.bodies(until=stopped(1))) == 7


def test_unreachable_queue_never_breaks_the_endpoint(publishing: Any) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{free.getsockname()[1]}"
    ecs, client = publishing(pretend_seconds=0.05, events_endpoint_url=dead)
    register(client, ["true"])
    wait_status(client, run(client), "STOPPED")
    assert ecs.wait_for_events(timeout=60)
    stats = ecs.stats()["events"]
    assert stats["send_failed"] == 7 and stats["published"] == 0


def test_an_sqs_error_is_counted_not_raised(publishing: Any, sqs_queue: SqsQueue) -> None:
    missing = sqs_queue.queue_url.rpartition("/")[0] + "/no-such-queue"
    ecs, client = publishing(pretend_seconds=0.05, events_queue_url=missing)
    register(client, ["true"])
    wait_status(client, run(client), "STOPPED")
    assert ecs.wait_for_events()
    stats = ecs.stats()["events"]
    assert stats["send_failed"] == 7 and stats["published"] == 0
    ecs.configure(events_queue_url=sqs_queue.queue_url)  # fixed at run time: the next changes go through
    wait_status(client, run(client), "STOPPED")
    assert len(sqs_queue.bodies(until=stopped(1))) == 7


# ---- pieces ------------------------------------------------------------------------------------------


def test_timestamps_as_ecs_writes_them() -> None:
    assert iso_time(1731533026.71) == "2024-11-13T21:23:46.71Z"
    assert iso_time(1731533026.0) == "2024-11-13T21:23:46Z"
    assert iso_time(1731533026.1004) == "2024-11-13T21:23:46.1Z"
    assert iso_time(1731533026.9996) == "2024-11-13T21:23:47Z"
    assert event_time(1731533026.984) == "2024-11-13T21:23:46Z"  # truncated, like the envelope's


def test_queue_region() -> None:
    assert queue_region("https://sqs.eu-west-1.amazonaws.com/123456789012/q", "us-east-1") == "eu-west-1"
    assert queue_region("https://ap-south-1.queue.amazonaws.com/123456789012/q", "x") == "ap-south-1"
    assert queue_region("http://127.0.0.1:5000/123456789012/q", "us-east-1") == "us-east-1"


def test_event_knobs_parse_and_validate() -> None:
    knobs = Knobs()
    knobs.update(
        {
            "events_queue_url": "http://h/1/q",
            "events_clusters": "a, arn:aws:ecs:us-east-1:1:cluster/b",
            "events_duplicate_rate": "0.25",
            "events_max_delay_seconds": "2",
        }
    )
    assert knobs.events_clusters == ["a", "arn:aws:ecs:us-east-1:1:cluster/b"]
    assert knobs.events_duplicate_rate == 0.25 and knobs.events_max_delay_seconds == 2.0
    knobs.update({"events_queue_url": "none", "events_clusters": None})
    assert knobs.events_queue_url is None and knobs.events_clusters is None
    for name, value in (("events_drop_rate", 1.5), ("events_max_delay_seconds", -1)):
        with pytest.raises(KnobError):
            knobs.update({name: value})


def test_cost_per_change_on_the_loop_is_small(tmp_path: Path) -> None:
    """The registry hook only snapshots the task: publishing must not slow the endpoint's loop."""
    from ecs_executor.local_ecs.event_publisher import EventPublisher
    from ecs_executor.local_ecs.event_shape import capture
    from ecs_executor.local_ecs.registry import Registry

    registry = Registry()
    cluster = registry.create_cluster("us-east-1", "c", {})
    definition = registry.register(
        "us-east-1", {"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 128}]}
    )
    task = registry.new_task(cluster, definition, {})
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        capture(task, "q", 0.0)
    per_capture = (time.perf_counter() - started) / rounds
    assert per_capture < 20e-6, per_capture  # ~2 µs measured; generous for a loaded CI machine
    publisher = EventPublisher(Knobs())
    started = time.perf_counter()
    for _ in range(rounds):
        publisher.on_change(task)  # no queue configured: a single attribute check
    assert (time.perf_counter() - started) / rounds < 5e-6
