"""Events mode against a real SQS (moto's server) and the fake ECS: events end tasks without DescribeTasks;
duplicates, reordering, lost and foreign events are handled; every message is deleted."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session

from ecs_executor import messages as m
from ecs_executor.core.task_status import Phase
from ecs_executor.engine import Engine
from tests.support.fake_ecs import ACCOUNT, REGION, FakeEcs, launch, of, results_until, running_engine


@pytest.fixture
def queue(moto_url: str) -> Iterator[tuple[Any, str]]:
    sqs = boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = sqs.create_queue(QueueName=f"ecs-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


def sqs_factory(moto_url: str) -> Any:
    async def factory() -> tuple[Any, contextlib.AsyncExitStack]:
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "sqs",
                region_name=REGION,
                endpoint_url=moto_url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        )
        return client, stack

    return factory


def event(task: dict[str, Any], version: int, status: str, exit_code: int | None = None) -> str:
    """An EventBridge "ECS Task State Change" event as SQS delivers it (the event JSON is the body)."""
    detail = {**task, "lastStatus": status, "version": version, "updatedAt": _iso(time.time())}
    if status == "STOPPED":
        detail.update(
            desiredStatus="STOPPED",
            stopCode="EssentialContainerExited",
            stoppedReason="Essential container in task exited",
            containers=[{"name": "w", "lastStatus": "STOPPED", "exitCode": exit_code}],
        )
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": ACCOUNT,
            "time": _iso(time.time()).split(".")[0] + "Z",
            "region": REGION,
            "resources": [task["taskArn"]],
            "detail": detail,
        }
    )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def final(key: str) -> Any:
    return lambda seen: any(
        isinstance(r, m.StateChanged) and r.key == key and r.status.phase.is_terminal for r in seen
    )


def changes(seen: list[m.Result], key: str) -> list[Phase]:
    return [r.status.phase for r in seen if isinstance(r, m.StateChanged) and r.key == key]


def events_engine(fake: FakeEcs, moto_url: str, url: str, **options: Any) -> Any:
    return running_engine(
        fake, sqs_factory=sqs_factory(moto_url), events_queue=url, events_receivers=2, **options
    )


def queue_empty(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def launched(engine: Engine, fake: FakeEcs, key: str) -> dict[str, Any]:
    seen = results_until(engine, of(m.Launched, key))
    arn = next(r.task_arn for r in seen if isinstance(r, m.Launched) and r.key == key)
    return fake.tasks[arn]


def test_events_end_tasks_without_describing_them(moto_url: str, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    fake = FakeEcs()
    with events_engine(fake, moto_url, url) as engine:
        launch(engine, "ok")
        launch(engine, "bad")
        ok, bad = launched(engine, fake, "ok"), launched(engine, fake, "bad")
        for task, code in ((ok, 0), (bad, 3)):
            sqs.send_message(QueueUrl=url, MessageBody=event(task, 2, "RUNNING"))
            sqs.send_message(QueueUrl=url, MessageBody=event(task, 3, "STOPPED", code))
        seen = results_until(engine, lambda s: final("ok")(s) and final("bad")(s))
        wait_for(lambda: queue_empty(sqs, url))
        counters = dict(engine.counters)
    assert changes(seen, "ok")[-1] == Phase.SUCCESS
    assert changes(seen, "bad")[-1] == Phase.FAILED
    assert fake.requests("describe_tasks") == []  # events alone, no sweep
    assert counters["events_applied"] == 4 and counters["reconcile_describes"] == 0


def test_duplicates_and_reordering_never_move_a_task_back(moto_url: str, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    fake = FakeEcs()
    with events_engine(fake, moto_url, url) as engine:
        launch(engine, "a")
        task = launched(engine, fake, "a")
        running, stopped = event(task, 3, "RUNNING"), event(task, 4, "STOPPED", 0)
        # RUNNING overtakes PENDING, and is delivered twice (at-least-once).
        for body in (running, event(task, 2, "PENDING"), running):
            sqs.send_message(QueueUrl=url, MessageBody=body)
            wait_for(lambda: queue_empty(sqs, url))
        sqs.send_message(QueueUrl=url, MessageBody=stopped)
        seen = results_until(engine, final("a"))
        sqs.send_message(QueueUrl=url, MessageBody=stopped)  # the final event again
        wait_for(lambda: engine.counters["events_received"] == 5 and queue_empty(sqs, url))
        seen += results_until(engine, lambda s: True, timeout=0.5)
        counters = dict(engine.counters)
    assert changes(seen, "a") == [Phase.RUNNING, Phase.SUCCESS]  # each once, never back to PENDING
    assert counters["events_stale"] == 1 and counters["events_duplicate"] == 1


def test_a_gap_is_described_at_once(moto_url: str, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    fake = FakeEcs()
    with events_engine(fake, moto_url, url) as engine:
        launch(engine, "a")
        task = launched(engine, fake, "a")
        sqs.send_message(QueueUrl=url, MessageBody=event(task, 2, "PENDING"))
        wait_for(lambda: engine.counters["events_applied"] == 1)
        # Version 3 (RUNNING) was lost; 4 arrives: the task is described within a reconcile tick.
        fake.set_status(task["taskArn"], "RUNNING")
        sqs.send_message(QueueUrl=url, MessageBody=event(task, 4, "RUNNING"))
        wait_for(lambda: len(fake.requests("describe_tasks")) >= 1, timeout=5)
        assert engine.counters["events_gap"] == 1


def test_a_lost_final_event_ends_the_task_within_the_reconcile_interval(
    moto_url: str, queue: tuple[Any, str]
) -> None:
    _, url = queue
    fake = FakeEcs()
    with events_engine(fake, moto_url, url, reconcile_interval=5) as engine:
        launch(engine, "a")
        task = launched(engine, fake, "a")
        started = time.monotonic()
        fake.set_status(task["taskArn"], "STOPPED", exit_code=0)  # and no event at all
        seen = results_until(engine, final("a"), timeout=15)
        took = time.monotonic() - started
        counters = dict(engine.counters)
    assert changes(seen, "a") == [Phase.SUCCESS]
    assert counters["reconcile_describes"] >= 1 and took < 15


def test_an_event_before_the_run_task_answer_is_kept(moto_url: str, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    fake = FakeEcs()
    fake.run_task_delay = 1.5
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/main/{1:032x}"  # the fake's first ARN
    with events_engine(fake, moto_url, url) as engine:
        launch(engine, "fast")
        wait_for(lambda: fake.requests("run_task"))
        sqs.send_message(
            QueueUrl=url, MessageBody=event({"taskArn": arn, "clusterArn": "main"}, 3, "STOPPED", 0)
        )
        wait_for(lambda: engine.counters["events_unknown"] == 1)
        seen = results_until(engine, final("fast"))
    assert changes(seen, "fast") == [Phase.SUCCESS]
    assert fake.requests("describe_tasks") == []


def test_bad_and_foreign_messages_are_dropped_and_deleted(moto_url: str, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    fake = FakeEcs()
    foreign = {"taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/elsewhere/abc", "clusterArn": "elsewhere"}
    other_type = json.dumps(
        {"source": "aws.ecs", "detail-type": "ECS Container Instance State Change", "detail": {}}
    )
    with events_engine(fake, moto_url, url) as engine:
        for body in ("not json", "[1, 2]", other_type, event(foreign, 2, "RUNNING")):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        wait_for(lambda: engine.counters["events_dropped"] == 4 and queue_empty(sqs, url))
        # The consumer is still alive: a real event after the junk is applied.
        launch(engine, "a")
        task = launched(engine, fake, "a")
        sqs.send_message(QueueUrl=url, MessageBody=event(task, 2, "STOPPED", 0))
        seen = results_until(engine, final("a"))
    assert changes(seen, "a") == [Phase.SUCCESS]


def test_queue_given_by_name_is_looked_up(moto_url: str, queue: tuple[Any, str]) -> None:
    sqs, url = queue
    fake = FakeEcs()
    with events_engine(fake, moto_url, url.rsplit("/", 1)[-1]) as engine:
        launch(engine, "a")
        task = launched(engine, fake, "a")
        sqs.send_message(QueueUrl=url, MessageBody=event(task, 2, "STOPPED", 0))
        seen = results_until(engine, final("a"))
        assert engine.event_feed is not None and engine.event_feed.queue_url == url
    assert changes(seen, "a") == [Phase.SUCCESS]


def test_restart_adopts_and_reads_the_events_sent_while_down(moto_url: str, queue: tuple[Any, str]) -> None:
    """One engine launches and goes away (tasks keep running); events arrive while no one listens; the next
    engine adopts the tasks and ends each exactly once, from the queued events or a describe."""
    sqs, url = queue
    fake = FakeEcs()
    with events_engine(fake, moto_url, url) as first:
        for key in ("a", "b"):
            launch(first, key)
        tasks = {key: launched(first, fake, key) for key in ("a", "b")}
    # While down: "a" runs and succeeds (its events wait in the queue); "b" fails and its event is lost.
    sqs.send_message(QueueUrl=url, MessageBody=event(tasks["a"], 2, "RUNNING"))
    sqs.send_message(QueueUrl=url, MessageBody=event(tasks["a"], 3, "STOPPED", 0))
    fake.set_status(tasks["a"]["taskArn"], "STOPPED", exit_code=0)
    fake.set_status(tasks["b"]["taskArn"], "STOPPED", exit_code=1)
    with events_engine(fake, moto_url, url) as second:
        for key, task in tasks.items():
            second.channel.send(m.Adopt(key, task["taskArn"], "main"))
        seen = results_until(second, lambda s: final("a")(s) and final("b")(s))
        # Not "queue empty": the first engine's cancelled long poll may still have taken the messages at
        # SQS; they come back after the visibility timeout (as duplicates), which must change nothing.
        seen += results_until(second, lambda s: True, timeout=1.0)
    # "a" may be reported RUNNING first (its queued events tell its history); each ends exactly once.
    assert changes(seen, "a")[-1] == Phase.SUCCESS and Phase.SUCCESS not in changes(seen, "a")[:-1]
    assert changes(seen, "b") == [Phase.FAILED]


def test_tasks_due_together_are_reconciled_over_several_ticks(
    moto_url: str, queue: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ecs_executor.engine.tracker.RECONCILE_PER_TICK", 2)
    _, url = queue
    fake = FakeEcs()
    with events_engine(fake, moto_url, url, reconcile_interval=5) as engine:
        for key in "abcde":
            launch(engine, key)
        for key in "abcde":
            launched(engine, fake, key)
        wait_for(lambda: engine.counters["reconcile_describes"] >= 5, timeout=15)
        described = [len(request["tasks"]) for request in fake.requests("describe_tasks")]  # before shutdown
    assert described and max(described) <= 2, described


def test_workload_tokens_in_event_bodies_never_reach_the_logs(
    moto_url: str, queue: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    """ECS events carry the RunTask overrides, so the command with the workload JWT (as real events do)."""
    import logging

    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0aSJ9.c2lnbmF0dXJl"
    sqs, url = queue
    fake = FakeEcs()
    caplog.set_level(logging.DEBUG)
    with events_engine(fake, moto_url, url) as engine:
        launch(engine, "a")
        task = launched(engine, fake, "a")
        body = json.loads(event(task, 2, "STOPPED", 0))
        body["detail"]["overrides"] = {"containerOverrides": [{"name": "w", "command": ["run", jwt]}]}
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
        sqs.send_message(QueueUrl=url, MessageBody=f"not json {jwt}")
        results_until(engine, final("a"))
        wait_for(lambda: engine.counters["events_dropped"] == 1)
    assert "ReceiveMessage" in caplog.text or "receive_message" in caplog.text  # botocore did log at DEBUG
    assert jwt not in caplog.text
