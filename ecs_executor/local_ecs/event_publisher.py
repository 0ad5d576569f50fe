"""Publishes the endpoint's task state changes to an SQS queue, the way an EventBridge rule would.

One event per change: a new task (version 1, PROVISIONING), then every version bump of the registry (a
lastStatus change, a desiredStatus change, a container exit). Each is one SQS message whose body is the
event JSON (``event_shape.py``), with no message attributes.

Delivery is off the request path: the registry's hook only snapshots the task's changing fields (about
3 µs) and hands them to one of two sender threads; each builds the JSON (about 40 µs for a 3 KB event)
and sends up to 10 messages per SendMessageBatch call (botocore's SigV4 signing over a kept-alive HTTP
connection, a third of a boto3 client's CPU), after waiting up to 50 ms for a batch to fill. Tasks are
spread over the senders by their sequence number, so, with no delay configured, one task's events
arrive in order. No coroutine, timer or thread is added per task.

Faults, per event, decided by one seeded RNG per sender: ``events_drop_rate`` (never delivered),
``events_duplicate_rate`` (delivered twice: same ``id``, same body, each copy with its own delay) and
``events_max_delay_seconds`` (each delivery waits a random 0..max seconds, which reorders events).
``events_clusters`` publishes only the named clusters' events, like a rule's ``detail.clusterArn`` filter.
"""

from __future__ import annotations

import heapq
import logging
import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ecs_executor.local_ecs.event_shape import Change, capture, message_body
from ecs_executor.local_ecs.knobs import Knobs
from ecs_executor.local_ecs.model import Task
from ecs_executor.local_ecs.sqs_client import BATCH_BYTES, BATCH_ENTRIES, SqsConnection, queue_region

log = logging.getLogger(__name__)

#: Sender threads; a task's events always go through the same one.
SENDERS = 2
#: A ready event waits up to this long for others to share its SendMessageBatch call: one call costs
#: more CPU than building several events, and EventBridge itself takes longer than this to deliver.
BATCH_WINDOW = 0.05
COUNT_KEYS = ("published", "duplicated", "dropped", "delayed", "send_failed")

_STOP = object()


class _Delivery:
    """One event's body, shared by its copies (a duplicate is the very same message)."""

    __slots__ = ("body", "copies", "queue_url")

    def __init__(self, queue_url: str, body: str, copies: int) -> None:
        self.queue_url = queue_url
        self.body = body
        self.copies = copies


class _Sender(threading.Thread):
    """Owns the events of a share of the tasks: applies the faults, builds the JSON, sends batches."""

    def __init__(self, publisher: EventPublisher, index: int) -> None:
        super().__init__(name=f"local-ecs-events-{index}", daemon=True)
        self.publisher = publisher
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.index = index
        self.rng = random.Random()
        self.reseed()
        self.counts: Counter[str] = Counter(dict.fromkeys(COUNT_KEYS, 0))
        self.settled = 0  # events delivered (each copy), dropped or given up on
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._order = 0
        self._connections: dict[tuple[str, str], SqsConnection] = {}

    def reseed(self) -> None:
        seed = self.publisher.knobs.seed
        self.rng.seed(None if seed is None else f"{seed}:events:{self.index}")

    def run(self) -> None:
        stopping = False
        ready: list[_Delivery] = []
        ready_since = 0.0  # when the oldest ready delivery became due
        while not (stopping and not self._heap and not ready):
            if not stopping:
                wake = [self._heap[0][0]] if self._heap else []
                if ready:
                    wake.append(ready_since + BATCH_WINDOW)
                timeout = max(0.0, min(wake) - time.monotonic()) if wake else None
                items = []
                try:
                    items.append(self.inbox.get(timeout=timeout))
                    while True:
                        items.append(self.inbox.get_nowait())
                except queue.Empty:
                    pass
                for item in items:
                    if item is _STOP:
                        stopping = True
                    else:
                        self._schedule(*item)
            now = time.monotonic()
            while self._heap and (stopping or self._heap[0][0] <= now):
                due, _, delivery = heapq.heappop(self._heap)
                if not ready:
                    ready_since = min(due, now)
                ready.append(delivery)
            if ready and (stopping or len(ready) >= BATCH_ENTRIES or now >= ready_since + BATCH_WINDOW):
                self._deliver(ready)
                ready = []

    def _schedule(self, task: Task, change: Change) -> None:
        knobs = self.publisher.knobs
        roll = self.rng.random
        if knobs.events_drop_rate > 0 and roll() < knobs.events_drop_rate:
            self.counts["dropped"] += 1
            self.settled += 1
            return
        copies = 1
        if knobs.events_duplicate_rate > 0 and roll() < knobs.events_duplicate_rate:
            copies = 2
            self.counts["duplicated"] += 1
        delivery = _Delivery(change.queue_url, message_body(task, change), copies)
        now = time.monotonic()
        longest = knobs.events_max_delay_seconds
        for _ in range(copies):
            delay = self.rng.uniform(0, longest) if longest > 0 else 0.0
            if delay:
                self.counts["delayed"] += 1
            self._order += 1
            heapq.heappush(self._heap, (now + delay, self._order, delivery))

    def _deliver(self, ready: list[_Delivery]) -> None:
        by_queue: dict[str, list[_Delivery]] = {}
        for delivery in ready:
            by_queue.setdefault(delivery.queue_url, []).append(delivery)
        for queue_url, deliveries in by_queue.items():
            batch: list[_Delivery] = []
            size = 0
            for delivery in deliveries:
                length = len(delivery.body.encode())
                if batch and (len(batch) == BATCH_ENTRIES or size + length > BATCH_BYTES):
                    self._send(queue_url, batch)
                    batch, size = [], 0
                batch.append(delivery)
                size += length
            if batch:
                self._send(queue_url, batch)

    def _send(self, queue_url: str, batch: list[_Delivery]) -> None:
        failed: set[int]
        try:
            endpoint, region = self.publisher.endpoint(queue_url)
            connection = self._connections.get((endpoint, region))
            if connection is None:
                connection = SqsConnection(endpoint, region, self.publisher.credentials(endpoint))
                self._connections[(endpoint, region)] = connection
            refused = connection.send_message_batch(queue_url, [delivery.body for delivery in batch])
            failed = {int(entry["Id"]) for entry in refused}
            if refused:
                self._warn(f"SendMessageBatch refused {len(refused)} event(s): {refused[0]}")
        except Exception as exc:  # the endpoint must go on even when the queue is unreachable
            failed = set(range(len(batch)))
            self._warn(f"SendMessageBatch to {queue_url} failed: {exc}")
        for i, delivery in enumerate(batch):
            self.counts["send_failed" if i in failed else "published"] += 1
            delivery.copies -= 1
            if delivery.copies == 0:
                self.settled += 1

    def _warn(self, message: str) -> None:
        warned = self.publisher.warned
        if message not in warned and len(warned) < 20:  # each distinct problem once, not per batch
            warned.add(message)
            log.warning("task state change events: %s", message)


class EventPublisher:
    """Registry hook (``on_change``) that publishes each announced change as an SQS message.

    ``on_change`` runs on the endpoint's event loop; it does nothing unless ``events_queue_url`` is set.
    """

    def __init__(self, knobs: Knobs, clock: Callable[[], float] = time.time) -> None:
        self.knobs = knobs
        self.clock = clock
        self.accepted = 0
        self.filtered = 0
        self._senders: list[_Sender] = []
        self._closed = False
        self._credentials: Any = None
        self._credentials_lock = threading.Lock()
        self.warned: set[str] = set()

    def on_change(self, task: Task) -> None:
        queue_url = self.knobs.events_queue_url
        if queue_url is None or self._closed:
            return
        clusters = self.knobs.events_clusters
        if clusters is not None and task.cluster.name not in clusters and task.cluster.arn not in clusters:
            self.filtered += 1
            return
        senders = self._senders or self._start()
        self.accepted += 1
        senders[task.seq % len(senders)].inbox.put((task, capture(task, queue_url, self.clock())))

    def reconfigure(self, changed: list[str]) -> None:
        """A new ``seed`` restarts the senders' random sequences, as it does for the ECS faults."""
        if "seed" in changed:
            for sender in self._senders:
                sender.reseed()

    def _start(self) -> list[_Sender]:
        self._senders = [_Sender(self, index) for index in range(SENDERS)]
        for sender in self._senders:
            sender.start()
        return self._senders

    def endpoint(self, queue_url: str) -> tuple[str, str]:
        """The SQS endpoint URL and Region for ``queue_url``, resolved as botocore would."""
        region = queue_region(queue_url, self.knobs.default_region)
        endpoint = (
            self.knobs.events_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_SQS")
            or os.environ.get("AWS_ENDPOINT_URL")
            or f"https://sqs.{region}.amazonaws.com"
        )
        return endpoint, region

    def credentials(self, endpoint: str) -> Any:
        """botocore's credentials (refreshed as they expire); any will do for a local SQS."""
        with self._credentials_lock:
            if self._credentials is None:
                import botocore.session
                from botocore.credentials import Credentials

                local = not endpoint.endswith(".amazonaws.com")
                if local and not os.environ.get("AWS_ACCESS_KEY_ID"):
                    self._credentials = Credentials("local", "local")  # moto takes any; look no further
                else:
                    self._credentials = botocore.session.Session().get_credentials()
                if self._credentials is None:
                    raise RuntimeError("no AWS credentials found for SQS")
            return self._credentials

    def stats(self) -> dict[str, int]:
        counts: Counter[str] = Counter(dict.fromkeys(COUNT_KEYS, 0))
        for sender in self._senders:
            counts.update(dict(sender.counts))
        return {**counts, "filtered": self.filtered, "pending": self.pending}

    @property
    def pending(self) -> int:
        """Events announced but not yet delivered, dropped or given up on (delayed ones included)."""
        return self.accepted - sum(sender.settled for sender in self._senders)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every announced event was delivered, dropped or given up on; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued now (delays cut short), then stop the sender threads."""
        self._closed = True
        for sender in self._senders:
            sender.inbox.put(_STOP)
        deadline = time.monotonic() + timeout
        for sender in self._senders:
            sender.join(max(0.0, deadline - time.monotonic()))
