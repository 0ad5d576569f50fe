"""Fixtures for tests that need SQS: moto's server (``sqs_server``) and a fresh queue (``sqs_queue``).

``sqs_queue`` gives the endpoint URL and the queue URL; point the local ECS endpoint at it with
``events_queue_url=q.queue_url, events_endpoint_url=q.endpoint_url`` and an executor with
``AWS_ENDPOINT_URL_SQS=q.endpoint_url``. Each test gets its own queue, deleted afterwards, so tests
never see each other's messages. moto slows down as a queue fills (see ``local_ecs.local_sqs``): drain it.

conftest.py re-exports both fixtures, so any test under tests/ can ask for them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ecs_executor.local_ecs.local_sqs import REGION, LocalSqs


@dataclass
class SqsQueue:
    """One queue on the shared moto server, with helpers to read it."""

    endpoint_url: str
    queue_url: str
    region: str = REGION
    _client: Any = field(default=None, repr=False)

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "sqs",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._client

    def receive(self, wait_seconds: int = 0, delete: bool = True) -> list[dict[str, Any]]:
        """One ReceiveMessage of up to 10 messages (long poll ``wait_seconds``), deleted unless told."""
        answer = self.client().receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
        )
        messages = list(answer.get("Messages") or [])
        if messages and delete:
            self.client().delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return messages

    def bodies(
        self,
        until: Callable[[list[dict[str, Any]]], bool] | None = None,
        timeout: float = 15.0,
        quiet: float = 0.3,
    ) -> list[dict[str, Any]]:
        """Parsed JSON bodies of everything received, in arrival order, deleting as it goes.

        Returns once ``until(bodies)`` holds (then also what arrives within ``quiet`` seconds, so
        stragglers such as duplicates are not left behind), or, with no ``until``, once the queue stays
        empty for ``quiet`` seconds. Fails after ``timeout``.
        """
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while True:
            messages = self.receive()
            bodies.extend(json.loads(m["Body"]) for m in messages)
            now = time.monotonic()
            if messages:
                quiet_since = None
            elif until is None or until(bodies):
                quiet_since = quiet_since or now
                if now - quiet_since >= quiet:
                    return bodies
            if now > deadline:
                raise AssertionError(f"SQS: condition not met within {timeout}s; got {len(bodies)} messages")
            if not messages:
                time.sleep(0.05)

    def approximate_count(self) -> int:
        attributes = self.client().get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[LocalSqs]:
    """moto in server mode on a thread, for the whole session (``.url`` is the endpoint URL)."""
    with LocalSqs(region=REGION) as server:
        yield server


@pytest.fixture
def sqs_queue(sqs_server: LocalSqs) -> Iterator[SqsQueue]:
    """A fresh standard queue on ``sqs_server``, deleted after the test."""
    assert sqs_server.url is not None
    name = f"events-{uuid.uuid4().hex[:12]}"
    queue = SqsQueue(sqs_server.url, sqs_server.create_queue(name))
    yield queue
    queue.client().delete_queue(QueueUrl=queue.queue_url)
