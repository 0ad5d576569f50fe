"""Every ECS call the engine makes goes through here: one client, one semaphore, two paced buckets.

Also the client's life: built on first use, rebuilt when credentials are rejected, and the verdict that a
refresh does not help (then launches fail within about a minute instead of retrying until the token
expires).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ecs_executor import messages as m
from ecs_executor.aws.clients import is_throttle, throttled_response
from ecs_executor.core.pacing import TokenBucket
from ecs_executor.engine.context import Context
from ecs_executor.request.ecs_rules import DESCRIBE_BURST, DESCRIBE_RATE

ClientFactory = Callable[[], Awaitable[tuple[Any, contextlib.AsyncExitStack]]]

# A replaced client (credential refresh) stays open this long for the calls still using it.
CLIENT_RETIRE_SECONDS = 90.0
# How long a cluster-modify call that must happen (settle, stop) keeps trying.
INSIST_SECONDS = 300.0
# Credentials still rejected this long after a refresh: nothing will heal by waiting.
CREDENTIALS_HOPELESS_SECONDS = 60.0
# Tell the operator when throttling has lowered the RunTask rate this much, at most this often.
SLOWED_NOTE_SHARE = 0.75
SLOWED_NOTE_SECONDS = 60.0


class EcsCalls:
    def __init__(self, ctx: Context, client_factory: ClientFactory):
        s = ctx.settings
        self.ctx = ctx
        self._factory = client_factory
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self.generation = 0
        self._lock = asyncio.Lock()
        self._sem = asyncio.Semaphore(s.max_concurrent_calls)
        self.run_bucket = TokenBucket(s.effective_run_task_rate, s.effective_run_task_burst)
        share = s.schedulers_sharing_budget  # the account's read bucket is shared too
        self.describe_bucket = TokenBucket(DESCRIBE_RATE / share, max(1, DESCRIBE_BURST // share))
        self._slowed_noted_at = float("-inf")
        # More needs-retry hooks for every client built (engine/definitions.py paces its own buckets).
        self.on_client: list[Callable[[Any], None]] = []
        self._credentials_failing_since: float | None = None
        self._refreshed_while_failing = False

    # ---- client ----------------------------------------------------------------------------------

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    await self._build()
        return self._client

    async def _build(self) -> None:
        self._client, self._stack = await self._factory()
        self.generation += 1
        self._watch_throttles(self._client)

    async def refresh(self, generation: int) -> None:
        """Rebuild the client once per failed generation (many calls may fail together)."""
        async with self._lock:
            if generation != self.generation:
                return
            old = self._stack
            self._client, self._stack = None, None
            self.ctx.counters["credential_refreshes"] += 1
            if self._credentials_failing_since is not None:
                self._refreshed_while_failing = True
            if old is not None:
                # Calls may still be in flight on the old client: close it only after they could end.
                self.ctx.spawn(_close_later(old, CLIENT_RETIRE_SECONDS))
            await self._build()

    async def close(self) -> None:
        if self._stack is not None:
            with contextlib.suppress(Exception):
                await self._stack.aclose()

    # ---- credentials -------------------------------------------------------------------------------

    def credentials_rejected(self) -> None:
        if self._credentials_failing_since is None:
            self._credentials_failing_since = time.monotonic()
            self._refreshed_while_failing = False

    def credentials_hopeless(self) -> bool:
        """A refresh happened and the rejections went on: fail what waits rather than retry for minutes."""
        since = self._credentials_failing_since
        return (
            since is not None
            and self._refreshed_while_failing
            and time.monotonic() - since >= CREDENTIALS_HOPELESS_SECONDS
        )

    # ---- calls -------------------------------------------------------------------------------------

    async def call(self, method: str, **kwargs: Any) -> Any:
        client = await self.client()
        async with self._sem:
            try:
                answer = await getattr(client, method)(**kwargs)
            except Exception as exc:
                if is_throttle(exc):
                    self.ctx.counters["throttled"] += 1
                raise
        self._credentials_failing_since = None  # any answer means the credentials work
        return answer

    async def insist(self, method: str, give_up: Callable[[BaseException], bool], **kwargs: Any) -> Any:
        """A cluster-modify call (RunTask, StopTask) that must not give up on throttling: paced by the RunTask
        bucket (the same ECS budget), throttles are waits, not failures; other errors get five attempts
        within INSIST_SECONDS. Raises what ``give_up`` accepts; None when the attempts ran out."""
        failures, give_up_at = 0, time.monotonic() + INSIST_SECONDS
        while failures < 5 and time.monotonic() < give_up_at:
            await self.run_bucket.acquire()
            try:
                return await self.call(method, **kwargs)
            except Exception as exc:
                if give_up(exc):
                    raise
                if not is_throttle(exc):
                    failures += 1
                    await asyncio.sleep(self.ctx.policy.retry_delay(failures + 1, self.ctx.rng))
        return None

    # ---- throttling feedback -----------------------------------------------------------------------

    def _watch_throttles(self, client: Any) -> None:
        """Every throttled attempt slows its bucket, including those botocore would retry unseen."""
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is None:
            return
        events.register_first("needs-retry.ecs.RunTask", self.on_cluster_modify_attempt)
        events.register_first("needs-retry.ecs.StopTask", self.on_cluster_modify_attempt)  # same ECS bucket
        events.register_first("needs-retry.ecs.DescribeTasks", self.on_describe_attempt)
        for hook in self.on_client:
            hook(events)

    def on_cluster_modify_attempt(self, response: Any = None, **_: Any) -> bool | None:
        if throttled_response(response):
            self.run_bucket.throttled()
            self._note_if_slowed()
            # Not retried by botocore, whose retry would bypass the bucket: the launcher retries it through
            # the bucket at the lowered rate.
            return False
        # Not throttled, even if it failed otherwise: a 5xx or a lost reply is no sign of the rate limit, and
        # counting only clean answers would read random faults as a lower limit (docs/benchmarks.md).
        self.run_bucket.accepted()
        return None

    def on_describe_attempt(self, response: Any = None, **_: Any) -> None:
        if throttled_response(response):
            self.describe_bucket.throttled()  # botocore retries it; the next calls wait longer
        else:
            self.describe_bucket.accepted()

    def _note_if_slowed(self) -> None:
        bucket, now = self.run_bucket, time.monotonic()
        if (
            bucket.rate < SLOWED_NOTE_SHARE * bucket.max_rate
            and now - self._slowed_noted_at > SLOWED_NOTE_SECONDS
        ):
            self._slowed_noted_at = now
            self.ctx.emit(
                m.EngineNote(
                    "warning",
                    f"ECS is throttling RunTask: launching at {bucket.rate:.1f}/s instead of "
                    f"{bucket.max_rate:g}/s (run_task_rate) until it stops; something else is using "
                    "this account's ECS API budget",
                )
            )


async def _close_later(stack: contextlib.AsyncExitStack, delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:
        with contextlib.suppress(Exception):
            await stack.aclose()
