"""ECS "Task State Change" events, delivered to an SQS queue the way an EventBridge rule would.

The shape follows AWS's reference, "Amazon ECS task state change events" (Amazon ECS Developer Guide,
``ecs_task_events``; before that page was split out, the "Task state change events" section of
``ecs_cwe_events``), checked against a STOPPED event captured from a real Fargate task in 2024:

* The EventBridge envelope: ``version`` "0", ``id`` (a UUID, the same on every delivery of one event),
  ``detail-type`` "ECS Task State Change", ``source`` "aws.ecs", ``account``, ``time`` (the change, in
  whole seconds, ``2020-01-23T17:57:58Z``), ``region``, ``resources`` [the task ARN] and ``detail``.
* ``detail`` resembles DescribeTasks' Task object, with these differences the reference states or the
  captured event shows: timestamps (``createdAt``, ``connectivityAt``, ``pullStartedAt``,
  ``pullStoppedAt``, ``startedAt``, ``stoppingAt``, ``executionStoppedAt``, ``stoppedAt``, ``updatedAt``)
  are ISO-8601 UTC strings with milliseconds and trailing zeros dropped (``2024-11-13T21:22:46.71Z``),
  not epoch numbers; ``updatedAt`` is the time of the change; there is no ``healthStatus`` (the
  reference: "the health status of the task is not provided in the task state change event"), no
  ``tags``, no ``platformFamily`` and no ``capacityProviderName``; ``overrides.containerOverrides``
  names every container (``{"name": ...}`` plus the RunTask override, command and environment
  included, as ECS sends them); containers carry ``containerArn``, ``exitCode`` (once exited),
  ``lastStatus``, ``name``, ``image``, ``taskArn``, ``cpu``, ``memory`` and ``reason`` (when ECS
  gives one), with no ``healthStatus``, ``networkBindings`` or ``networkInterfaces`` (we have no ENIs).
* ``detail.version`` is the task's version: it grows by one with each change, and duplicate deliveries
  carry the same one (ECS docs: "Duplicate events have the same version in the detail object").

One event per change: a new task (version 1, PROVISIONING), then every version bump of the registry (a
lastStatus change, a desiredStatus change, a container exit). An EventBridge rule whose target is an
SQS queue, with no ``Input``, ``InputPath`` or ``InputTransformer``, delivers "the entire event ... to
the target in JSON format" (EventBridge PutTargets API reference): the message body is the event JSON
itself, no wrapper, and no message attributes.

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

import functools
import heapq
import http.client
import json
import logging
import os
import queue
import random
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from ecs_executor.local_ecs.knobs import Knobs
from ecs_executor.local_ecs.model import ACCOUNT_ID, Task

log = logging.getLogger(__name__)

DETAIL_TYPE = "ECS Task State Change"
SOURCE = "aws.ecs"
#: Sender threads; a task's events always go through the same one.
SENDERS = 2
#: A ready event waits up to this long for others to share its SendMessageBatch call: one call costs
#: more CPU than building several events, and EventBridge itself takes longer than this to deliver.
BATCH_WINDOW = 0.05
#: SendMessageBatch limits: 10 entries, 262,144 bytes of bodies in all.
BATCH_ENTRIES = 10
BATCH_BYTES = 256 * 1024
COUNT_KEYS = ("published", "duplicated", "dropped", "delayed", "send_failed")

_SQS_REGION = re.compile(
    r"^https?://(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)"
)
_STOP = object()


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """``2024-11-13T21:23:46``: one strftime per second of events, not one per timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_time(timestamp: float) -> str:
    """ISO-8601 UTC with milliseconds, trailing zeros dropped, as ECS writes event timestamps."""
    seconds, millis = divmod(int(timestamp * 1000 + 0.5), 1000)
    if millis:
        return f"{_second(seconds)}.{millis:03d}".rstrip("0") + "Z"
    return _second(seconds) + "Z"


def event_time(timestamp: float) -> str:
    """The envelope's ``time``: the same instant in whole seconds."""
    return _second(int(timestamp * 1000 + 0.5) // 1000) + "Z"


class Change(NamedTuple):
    """What changes in a task between versions, taken when the registry announces the change."""

    queue_url: str
    updated_at: float
    version: int
    last_status: str
    desired_status: str
    pull_started_at: float | None
    pull_stopped_at: float | None
    started_at: float | None
    stopping_at: float | None
    execution_stopped_at: float | None
    stopped_at: float | None
    stop_code: str | None
    stopped_reason: str | None
    containers: tuple[tuple[str, int | None, str | None], ...]


def capture(task: Task, queue_url: str, now: float) -> Change:
    return Change(
        queue_url,
        now,
        task.version,
        task.last_status,
        task.desired_status,
        task.pull_started_at,
        task.pull_stopped_at,
        task.started_at,
        task.stopping_at,
        task.execution_stopped_at,
        task.stopped_at,
        task.stop_code,
        task.stopped_reason,
        tuple([(c.last_status, c.exit_code, c.reason) for c in task.containers]),
    )


def _stamps(change: Change, task: Task) -> dict[str, str]:
    pairs = (
        ("createdAt", task.created_at),
        ("connectivityAt", change.pull_started_at),
        ("pullStartedAt", change.pull_started_at),
        ("pullStoppedAt", change.pull_stopped_at),
        ("startedAt", change.started_at),
        ("stoppingAt", change.stopping_at),
        ("executionStoppedAt", change.execution_stopped_at),
        ("stoppedAt", change.stopped_at),
        ("updatedAt", change.updated_at),
    )
    return {name: iso_time(value) for name, value in pairs if value is not None}


def task_event(task: Task, change: Change, event_id: str | None = None) -> dict[str, Any]:
    """The EventBridge event for ``task`` as it was at ``change`` (see the module doc for the shape)."""
    definition = task.definition
    region = task.cluster.region
    overrides = task.overrides or {}
    containers = []
    for container, (status, exit_code, reason) in zip(task.containers, change.containers, strict=True):
        spec = definition.containers[container.name]
        item: dict[str, Any] = {"containerArn": task.container_arn(container.name)}
        if exit_code is not None:
            item["exitCode"] = exit_code
        item.update(lastStatus=status, name=container.name, image=spec.get("image"), taskArn=task.arn)
        item["cpu"] = str(spec.get("cpu", 0))
        if "memory" in spec:
            item["memory"] = str(spec["memory"])
        if reason is not None:
            item["reason"] = reason
        containers.append(item)
    container_overrides = [{"name": name, **task.container_override(name)} for name in definition.containers]
    stamps = _stamps(change, task)
    detail: dict[str, Any] = {
        "attachments": [],
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "availabilityZone": f"{region}a",
        "clusterArn": task.cluster.arn,
    }
    if change.pull_started_at is not None:
        detail["connectivity"] = "CONNECTED"
        detail["connectivityAt"] = stamps["connectivityAt"]
    detail["containers"] = containers
    cpu = overrides.get("cpu") or definition.spec.get("cpu")
    if cpu:
        detail["cpu"] = str(cpu)
    detail["createdAt"] = stamps["createdAt"]
    detail["desiredStatus"] = change.desired_status
    detail["enableExecuteCommand"] = False
    if task.launch_type == "FARGATE":
        detail["ephemeralStorage"] = {"sizeInGiB": 20}
    if "executionStoppedAt" in stamps:
        detail["executionStoppedAt"] = stamps["executionStoppedAt"]
    detail["group"] = task.group
    detail["launchType"] = task.launch_type
    detail["lastStatus"] = change.last_status
    memory = overrides.get("memory") or definition.spec.get("memory")
    if memory:
        detail["memory"] = str(memory)
    detail["overrides"] = {
        **{key: value for key, value in overrides.items() if key != "containerOverrides"},
        "containerOverrides": container_overrides,
    }
    if task.platform_version is not None:
        detail["platformVersion"] = task.platform_version
    for name in ("pullStartedAt", "pullStoppedAt", "startedAt"):
        if name in stamps:
            detail[name] = stamps[name]
    if task.started_by is not None:
        detail["startedBy"] = task.started_by
    for name in ("stoppingAt", "stoppedAt"):
        if name in stamps:
            detail[name] = stamps[name]
    if change.stopped_reason is not None:
        detail["stoppedReason"] = change.stopped_reason
    if change.stop_code is not None:
        detail["stopCode"] = change.stop_code
    detail["taskArn"] = task.arn
    detail["taskDefinitionArn"] = definition.arn
    detail["updatedAt"] = stamps["updatedAt"]
    detail["version"] = change.version
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": ACCOUNT_ID,
        "time": event_time(change.updated_at),
        "region": region,
        "resources": [task.arn],
        "detail": detail,
    }


def message_body(task: Task, change: Change) -> str:
    """The SQS message body EventBridge would deliver: the event as compact JSON."""
    return json.dumps(task_event(task, change), separators=(",", ":"))


def queue_region(queue_url: str, default: str) -> str:
    """The Region of an AWS queue URL (either form); ``default`` for any other host, e.g. moto's."""
    match = _SQS_REGION.match(queue_url)
    return (match.group(1) or match.group(2)) if match else default


class SqsError(Exception):
    """SQS answered an error (the ``__type`` and message of its JSON body)."""


class SqsConnection:
    """SendMessageBatch over one kept-alive HTTP connection, signed with botocore's SigV4.

    Not a boto3 client: one of those spends about 1 ms of CPU per call, this about a third of it, and
    the CPU is taken from the endpoint's own event loop (same interpreter). Connection errors, HTTP 5xx
    and throttling are retried twice. One per sender thread: not thread-safe.
    """

    TARGET = "AmazonSQS.SendMessageBatch"
    CONTENT_TYPE = "application/x-amz-json-1.0"
    RETRIED = frozenset({"ThrottlingException", "RequestThrottled", "ServiceUnavailable", "InternalFailure"})

    def __init__(self, endpoint: str, region: str, credentials: Any, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        self.url = endpoint
        self.path = parts.path or "/"
        self.host = parts.hostname or "localhost"
        self.port = parts.port
        self.https = parts.scheme == "https"
        self.region = region
        self.credentials = credentials
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def send_message_batch(self, queue_url: str, bodies: list[str]) -> list[dict[str, Any]]:
        """Send ``bodies`` (ids "0", "1", ...); return the entries SQS refused (``Failed``)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        payload = json.dumps({"QueueUrl": queue_url, "Entries": entries}).encode()
        request = AWSRequest(
            "POST",
            self.url,
            data=payload,
            headers={"X-Amz-Target": self.TARGET, "Content-Type": self.CONTENT_TYPE},
        )
        SigV4Auth(self.credentials.get_frozen_credentials(), "sqs", self.region).add_auth(request)
        headers = dict(request.headers.items())
        error: Exception = SqsError("not sent")
        for attempt in range(3):
            # A first connection error is often a kept-alive connection the server had closed: retry
            # on a new one at once; after anything else, wait a little.
            if attempt and not (attempt == 1 and isinstance(error, (OSError, http.client.HTTPException))):
                time.sleep(0.3 * attempt)
            try:
                conn = self._connection()
                conn.request("POST", self.path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                error = exc
                continue
            try:
                answer = json.loads(data or b"{}")
            except ValueError:
                answer = {"message": data[:200].decode(errors="replace")}
            if response.status == 200:
                return list(answer.get("Failed") or [])
            code = str(answer.get("__type", "")).rpartition("#")[2]
            error = SqsError(f"HTTP {response.status} {code}: {answer.get('message', '')}")
            if response.status < 500 and code not in self.RETRIED:
                raise error
        raise error

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            factory = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = factory(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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
