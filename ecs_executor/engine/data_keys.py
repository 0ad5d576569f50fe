"""The engine's KMS data keys for sealing workloads (``workload_kms_key`` set; docs/security.md).

One ``kms:GenerateDataKey`` (AES-256, encryption context ``core.envelope.KMS_CONTEXT``) per
``workload_data_key_seconds``, not per launch: many launches wait on one request (single flight), the
next key is asked for while the current one still seals, and an expired key never seals. The decisions
(when to refresh, what a KMS error means) are ``core.data_key_policy``'s; this module makes the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ecs_executor import messages as m
from ecs_executor.aws.clients import classify_exception, error_code
from ecs_executor.config.values import option_label
from ecs_executor.core.data_key_policy import (
    REFUSAL_MEMORY_SECONDS,
    KeyUse,
    KmsVerdict,
    backoff,
    key_use,
    kms_verdict,
    refusal_reason,
)
from ecs_executor.core.envelope import KMS_CONTEXT, DataKey, seal, try_context
from ecs_executor.core.lifecycle import Tracked
from ecs_executor.core.triage import Verdict
from ecs_executor.engine.context import Context, wait_while_live
from ecs_executor.request.run_task import sealed_command

log = logging.getLogger(__name__)

KmsFactory = Callable[[], Awaitable[tuple[Any, contextlib.AsyncExitStack]]]
#: Tell the operator when KMS has not given a data key after this many attempts (and every 50th).
NOTE_AFTER_FAILURES = (3, 10)


class DataKeyUnavailable(Exception):
    """KMS refused a data key (key disabled, missing, pending deletion, access denied): the message is
    the failure reason of every launch waiting on it."""


class DataKeys:
    """The current data key of one engine (all on the engine's loop)."""

    def __init__(
        self,
        ctx: Context,
        client_factory: KmsFactory,
        *,
        team_name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        key_id = ctx.settings.workload_kms_key
        if not key_id:
            raise ValueError("DataKeys needs workload_kms_key")
        self.ctx = ctx
        self.key_id = key_id
        self.lifetime = ctx.settings.workload_data_key_seconds
        self.option = option_label("workload_kms_key", team_name)
        self._factory = client_factory
        self.clock = clock  # when keys expire and refusals are forgotten (tests move it)
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._key: DataKey | None = None
        self._flight: asyncio.Task[DataKey] | None = None
        self._refused: tuple[float, str] | None = None  # (when, reason)
        self.last_failure: str | None = None  # why the last GenerateDataKey gave no key (None: it did)

    def held(self) -> DataKey | None:
        """The data key to seal with now without waiting; None when there is none or it expired."""
        key = self._key
        use = key_use(key.expires_at if key is not None else None, self.lifetime, self.clock())
        if key is None or use is KeyUse.WAIT:
            return None
        if use is KeyUse.USE_AND_REFRESH:
            self._start_flight()  # the next key, while this one still seals
        return key

    async def current(self) -> DataKey:
        """A data key valid now; waits while KMS is slow, throttled or unreachable. Raises
        DataKeyUnavailable when KMS refused the key (remembered REFUSAL_MEMORY_SECONDS)."""
        key = self.held()
        if key is not None:
            return key
        refused = self._refused
        if refused is not None and self.clock() - refused[0] < REFUSAL_MEMORY_SECONDS:
            raise DataKeyUnavailable(refused[1])
        # Shielded: a launch that stops waiting (revoked, expired) does not cancel the others' request.
        return await asyncio.shield(self._start_flight())

    async def command(
        self, tracked: Tracked, workload_json: str, expire: Callable[[Tracked, bool], Awaitable[None]]
    ) -> list[str] | None:
        """The container's command carrying the workload sealed for ``tracked``'s try. Without a key at
        hand the try waits for one while it lives: None once revoked, or its token expired (``expire``), or
        KMS refused the key (the try failed, kind "kms")."""
        key = self.held()
        while key is None:
            getting = asyncio.ensure_future(self.current())
            try:
                if not await wait_while_live(tracked, getting, expire=self._naming_kms(expire)):
                    return None
                key = getting.result()
            except DataKeyUnavailable as exc:
                self.ctx.fail_launch(tracked, str(exc), "kms")
                return None
            if key_use(key.expires_at, self.lifetime, self.clock()) is KeyUse.WAIT:
                key = None  # expired on its way here: it never seals
        return sealed_command(seal(workload_json, key, try_context(tracked.identity.to_dict())))

    def _naming_kms(
        self, expire: Callable[[Tracked, bool], Awaitable[None]]
    ) -> Callable[[Tracked, bool], Awaitable[None]]:
        """A try whose token expired while KMS gave no key fails saying so (not a bare "expired")."""

        async def expired(tracked: Tracked, outcome_unknown: bool) -> None:
            if self.last_failure is None:
                await expire(tracked, outcome_unknown)
                return
            reason = (
                "the task was not started before its Airflow token expired "
                "([scheduler] task_queued_timeout): "
                f"no KMS data key for {self.option} = {self.key_id!r} ({self.last_failure})"
            )
            self.ctx.fail_launch(tracked, reason, "kms")

        return expired

    async def prime(self) -> None:
        """At engine start: the first key before the first launch needs it (a refusal is only logged)."""
        with contextlib.suppress(DataKeyUnavailable):
            await self.current()

    async def close(self) -> None:
        if self._stack is not None:
            with contextlib.suppress(Exception):
                await self._stack.aclose()
        self._client = self._stack = None

    def _start_flight(self) -> asyncio.Task[DataKey]:
        if self._flight is None:
            self._flight = self.ctx.spawn(self._obtain())
            self._flight.add_done_callback(_retrieved)
        return self._flight

    async def _obtain(self) -> DataKey:
        """GenerateDataKey until KMS gives a key or refuses it; throttles and outages are waited out."""
        failures = 0
        try:
            while True:
                started = self.clock()
                self.ctx.counters["kms_calls"] += 1
                try:
                    if self._client is None:
                        self._client, self._stack = await self._factory()
                    answer = await self._client.generate_data_key(
                        KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(KMS_CONTEXT)
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.ctx.counters["kms_failures"] += 1
                    failures += 1
                    await self._after_failure(exc, failures)
                    continue
                key = DataKey(
                    plaintext=bytes(answer["Plaintext"]),
                    wrapped=bytes(answer["CiphertextBlob"]),
                    key_arn=str(answer.get("KeyId") or self.key_id),
                    expires_at=started + self.lifetime,  # from the request: never later than KMS's key
                )
                if self.clock() >= key.expires_at:  # the answer took longer than a key lives
                    failures += 1
                    self.last_failure = (
                        f"GenerateDataKey answered after the key's {self.lifetime:.0f}s lifetime"
                    )
                    log.warning("%s; asking again", self.last_failure)
                    continue
                self._key, self._refused, self.last_failure = key, None, None
                if failures:
                    log.info("KMS gave a data key for %s after %d failed attempts", self.option, failures)
                return key
        finally:
            self._flight = None

    async def _after_failure(self, exc: BaseException, failures: int) -> None:
        """Raise DataKeyUnavailable for a refusal; otherwise wait before the next attempt."""
        code, message, status = error_code(exc)
        if not code and classify_exception(exc).verdict is Verdict.REFRESH_CREDENTIALS:
            code = "NoCredentials"
        verdict = kms_verdict(code, status)
        if verdict is KmsVerdict.REFUSE:
            reason = refusal_reason(self.option, self.key_id, code, message)
            # A refused key will not decrypt in the worker either: launches stop using the held one.
            self._key, self._refused = None, (self.clock(), reason)
            log.warning("%s", reason)
            raise DataKeyUnavailable(reason)
        if verdict is KmsVerdict.REFRESH_CLIENT:
            await self.close()  # the next attempt builds a client with fresh credentials
        said = f"{code}: {message}" if code else message
        self.last_failure = said
        if failures in NOTE_AFTER_FAILURES or failures % 50 == 0:
            self.ctx.emit(
                m.EngineNote(
                    "warning",
                    f"KMS has not given a data key for {self.option} = {self.key_id!r} after {failures} "
                    f"attempts ({said}); launches wait for it",
                )
            )
        log.info("GenerateDataKey for %s failed (%s); will retry", self.key_id, said)
        await asyncio.sleep(backoff(failures, self.ctx.rng))


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Nobody may be waiting (a refresh ahead of time): the outcome is still consumed."""
    if not future.cancelled():
        future.exception()
