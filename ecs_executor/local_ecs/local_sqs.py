"""``LocalSqs``: moto's SQS in server mode on a thread of this process, for the demo and the tests.

Where the local ECS endpoint publishes its task state change events (``events_queue_url``). moto 5.2.5
speaks the JSON protocol (``X-Amz-Target: AmazonSQS.<Operation>``) that botocore uses for SQS.

Mind moto's cost model: every SendMessage computes the queue's attributes, which counts all messages
held (visible and in flight), so sending gets slower as a queue grows (about 0.2 ms per message on an
empty queue, tens of ms with a thousand waiting). A consumer that deletes what it received keeps it fast.
"""

from __future__ import annotations

import logging
from typing import Any

REGION = "us-east-1"
#: Queue name -> the lists ``LocalSqs.record`` fills with that queue's accepted message bodies.
_RECORDERS: dict[str, list[list[str]]] = {}


class LocalSqs:
    """``with LocalSqs() as sqs: url = sqs.create_queue("events")`` (moto serves every service there)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = REGION) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.url: str | None = None
        self._server: Any = None
        self._recorders: list[tuple[str, list[str]]] = []

    def start(self) -> str:
        if self.url is not None:
            return self.url
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request at INFO; the demo and tests have no use for it.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "sqs",
            endpoint_url=self.start(),
            region_name=self.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def create_queue(self, name: str) -> str:
        """Create a standard queue (or find the existing one) and return its URL."""
        return str(self.client().create_queue(QueueName=name)["QueueUrl"])

    def record(self, queue_name: str) -> list[str]:
        """Every message body the named queue accepts from now on, whoever sends it and however (a list
        that fills as messages arrive; reading it removes nothing from the queue).

        For audits that must see what went through a queue its consumer deletes from (the workload-token
        search of ``demo/token_audit.py``). It wraps moto's ``Queue.add_message``, where SendMessage and
        SendMessageBatch both end, once per process; moto runs on a thread of this process.
        """
        bodies: list[str] = []
        _RECORDERS.setdefault(queue_name, []).append(bodies)
        self._recorders.append((queue_name, bodies))
        from moto.sqs.models import Queue

        if not getattr(Queue.add_message, "_recording", False):
            original = Queue.add_message

            def add_message(queue: Any, message: Any) -> None:
                for recorded in _RECORDERS.get(queue.name, ()):
                    recorded.append(message.body)
                original(queue, message)

            add_message._recording = True  # type: ignore[attr-defined]
            Queue.add_message = add_message  # type: ignore[method-assign,assignment]
        return bodies

    def stop(self) -> None:
        for name, bodies in self._recorders:  # the lists stay with their holders
            _RECORDERS[name] = [b for b in _RECORDERS.get(name, []) if b is not bodies]
        self._recorders.clear()
        if self._server is not None:
            self._server.stop()
            self._server = None
            self.url = None

    def __enter__(self) -> LocalSqs:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
