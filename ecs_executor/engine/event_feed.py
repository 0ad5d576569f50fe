"""Events mode: ECS task state changes from SQS (an EventBridge rule fills the queue), fed to the tracker.

Several receivers long-poll the queue; each message is parsed once (``core.state_change``), ordered
against what is known of its task (duplicates and stale events never move a task backwards; a gap makes
the reconciler describe the task at once), then deleted in one batch per receive. Messages that are not
usable events (not JSON, other event types, other clusters) are deleted too, with a debug line: they can
never become usable, and left in place they would come back every visibility timeout.

An event can overtake the RunTask answer that tells us its task's ARN: such events wait here, briefly,
for the launcher to claim the ARN (``observe_launched``). Events of tasks we do not track (another
scheduler's, or tasks that already ended) expire from that buffer unused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ecs_executor.aws.clients import classify_exception, describe_error
from ecs_executor.config.values import is_queue_url
from ecs_executor.core.lifecycle import Tracked
from ecs_executor.core.state_change import Dropped, Order, TaskEvent, order, parse_message
from ecs_executor.core.triage import Verdict
from ecs_executor.engine.context import Context
from ecs_executor.engine.tracker import Tracker

log = logging.getLogger(__name__)

SqsFactory = Callable[[], Awaitable[tuple[Any, contextlib.AsyncExitStack]]]

RECEIVE_BATCH = 10  # SQS ReceiveMessage maximum
LONG_POLL_SECONDS = 20  # SQS maximum WaitTimeSeconds
# Events for ARNs not (yet) tracked: kept this long for a RunTask answer still on its way, at most this many.
EARLY_EVENT_SECONDS = 120.0
EARLY_EVENT_LIMIT = 50_000
# After a failed receive: back off from 1 s to this, and warn at most once per this many seconds.
MAX_BACKOFF_SECONDS = 30.0
WARN_EVERY_SECONDS = 60.0


class EventFeed:
    def __init__(self, ctx: Context, tracker: Tracker, factory: SqsFactory, clusters: Iterable[str]):
        self.ctx = ctx
        self.tracker = tracker
        self._factory = factory
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()
        self.queue_url: str | None = None
        self._early: dict[str, tuple[TaskEvent, float]] = {}
        # Names and ARNs of every cluster our tasks may run on (RunTaskBuilder.clusters), as configured.
        self._clusters = frozenset(clusters) | {name.split(":cluster/", 1)[-1] for name in clusters}
        self._warned_at = float("-inf")

    # ---- wiring ------------------------------------------------------------------------------------

    def observe_launched(self, tracked: Tracked, task: Mapping[str, Any]) -> None:
        """The launcher's observe: the RunTask answer, then any event that arrived before it."""
        self.tracker.observe(tracked, task)
        early = self._early.pop(tracked.arn or "", None)
        if early is not None:
            self.apply(early[0])

    async def run(self) -> None:
        receivers = [
            asyncio.create_task(self._receive_forever()) for _ in range(self.ctx.settings.events_receivers)
        ]
        try:
            await asyncio.gather(*receivers)
        finally:
            for receiver in receivers:
                receiver.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
            if self._stack is not None:
                with contextlib.suppress(Exception):
                    await self._stack.aclose()

    # ---- receiving ---------------------------------------------------------------------------------

    async def _receive_forever(self) -> None:
        failures = 0
        while True:
            try:
                client, url = await self._ready()
                answer = await client.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=RECEIVE_BATCH, WaitTimeSeconds=LONG_POLL_SECONDS
                )
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                await self._after_failure(exc, failures)
                continue
            messages = answer.get("Messages") or []
            if messages:
                self.handle(messages)
                self.ctx.spawn(self._delete(client, url, [msg["ReceiptHandle"] for msg in messages]))

    def handle(self, messages: list[Mapping[str, Any]]) -> None:
        """Parse and apply one receive's messages, in version order per task."""
        counters = self.ctx.counters
        counters["events_received"] += len(messages)
        events = []
        for message in messages:
            parsed = parse_message(message.get("Body") or "")
            if isinstance(parsed, Dropped):
                counters["events_dropped"] += 1
                log.debug("Dropped SQS message %s: %s", message.get("MessageId"), parsed.reason)
            else:
                events.append(parsed)
        events.sort(key=lambda event: event.version)
        for event in events:
            self.apply(event)

    def apply(self, event: TaskEvent) -> None:
        counters = self.ctx.counters
        tracked = self.ctx.registry.by_arn.get(event.task_arn)
        if tracked is None:
            if event.cluster_name in self._clusters or event.cluster_arn in self._clusters:
                self._keep_early(event)
            else:
                counters["events_dropped"] += 1
                log.debug("Dropped event of %s: cluster %s is not ours", event.task_arn, event.cluster_arn)
            return
        place = order(tracked.version, event.version)
        if place is Order.DUPLICATE or place is Order.STALE:
            counters["events_" + place.value] += 1
            return
        if place is Order.GAP:
            counters["events_gap"] += 1
            self.tracker.suspect(tracked)
        counters["events_applied"] += 1
        self.tracker.observe(tracked, event.detail)
        if event.changed_at is not None:
            self.ctx.event_lags.append(max(0.0, time.time() - event.changed_at))

    def _keep_early(self, event: TaskEvent) -> None:
        now = time.monotonic()
        known = self._early.get(event.task_arn)
        if known is not None and known[0].version >= event.version:
            return
        if known is None:
            self.ctx.counters["events_unknown"] += 1
            if len(self._early) >= EARLY_EVENT_LIMIT:
                self.prune_early(now)
        if len(self._early) < EARLY_EVENT_LIMIT:
            self._early[event.task_arn] = (event, now)

    def prune_early(self, now: float | None = None) -> None:
        """Forget early events nobody claimed (the reconciler calls this every tick)."""
        cutoff = (now or time.monotonic()) - EARLY_EVENT_SECONDS
        if self._early and next(iter(self._early.values()))[1] <= cutoff:
            self._early = {arn: kept for arn, kept in self._early.items() if kept[1] > cutoff}

    async def _delete(self, client: Any, url: str, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles)]
        try:
            answer = await client.delete_message_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:  # they come back after the visibility timeout, as duplicates
            log.debug("DeleteMessageBatch of %d messages failed: %s", len(entries), describe_error(exc))
            return
        for failed in answer.get("Failed") or []:
            log.debug("Could not delete an SQS message: %s", failed.get("Message") or failed.get("Code"))

    # ---- client --------------------------------------------------------------------------------

    async def _ready(self) -> tuple[Any, str]:
        if self._client is None or self.queue_url is None:
            async with self._client_lock:
                if self._client is None:
                    self._client, self._stack = await self._factory()
                if self.queue_url is None:
                    self.queue_url = await queue_url(self._client, self.ctx.settings.events_queue or "")
        return self._client, self.queue_url

    async def _after_failure(self, exc: BaseException, failures: int) -> None:
        decision = classify_exception(exc)
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "Cannot receive ECS events from SQS queue %s: %s. Tasks are still described every "
                "reconcile_interval; check with `airflow ecs-executor check`.",
                self.queue_url or self.ctx.settings.events_queue,
                decision.reason,
            )
        if decision.verdict == Verdict.REFRESH_CREDENTIALS:
            async with self._client_lock:
                stack, self._client, self._stack = self._stack, None, None
            if stack is not None:
                self.ctx.spawn(_close_later(stack))
        await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 2.0 ** min(failures - 1, 5)))


async def queue_url(client: Any, queue: str) -> str:
    """The queue's URL: as configured, or looked up by name."""
    if is_queue_url(queue):
        return queue
    answer = await client.get_queue_url(QueueName=queue)
    return str(answer["QueueUrl"])


async def _close_later(stack: contextlib.AsyncExitStack) -> None:
    await asyncio.sleep(LONG_POLL_SECONDS + 5)  # receives may still be waiting on the old client
    with contextlib.suppress(Exception):
        await stack.aclose()
