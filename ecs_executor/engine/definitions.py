"""Managed task definitions: the derived definition a task needs, found again or registered once.

Many tasks asking for the same derivation wait on one registration (single flight per content hash);
a definition this or another scheduler registered before is found again by its family and hash tag, so
a restart registers nothing. Schedulers that register the same content at the same moment each get a
revision of one family, and all run its earliest one (so they share one definition). Registration is
paced under ECS's "task definition modify" bucket and retried on throttles and on "Too many concurrent
attempts" (a ClientException botocore does not retry) without costing any task a launch attempt; a
refusal that waiting cannot heal (a missing permission, an invalid role) fails every task waiting on
that definition with the permission and the fix.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from ecs_executor.aws.clients import error_code, is_throttle, throttled_response
from ecs_executor.core.pacing import TokenBucket
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.context import Context
from ecs_executor.request.derived_definition import (
    HASH_TAG,
    LAST_USED_TAG,
    NotDerivable,
    definition_hash,
    register_request,
    tag_value,
)
from ecs_executor.request.ecs_rules import (
    TAG_MODIFY_BURST,
    TAG_MODIFY_RATE,
    TASK_DEFINITION_MODIFY_BURST,
    TASK_DEFINITION_MODIFY_RATE,
    TASK_DEFINITION_READ_BURST,
    TASK_DEFINITION_READ_RATE,
)
from ecs_executor.request.task_settings import Derivation

log = logging.getLogger(__name__)

#: A base definition's description is reused this long (a new base revision shows within it).
BASE_CACHE_SECONDS = 300.0
#: A definition's last-used tag is refreshed at most this often per scheduler.
LAST_USED_EVERY_SECONDS = 3600.0
#: After a refusal, tasks asking for the same definition fail at once for this long (no retry storm).
REFUSAL_MEMORY_SECONDS = 60.0
#: Backoff between retried registrations: doubling from the first, capped.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
#: With several schedulers, each waits up to this long (at random) and looks again before registering, so
#: that two finding nothing at the same moment rarely both register.
REGISTER_SPREAD_SECONDS = 1.0
#: Other errors (5xx, a lost connection) get this many attempts.
MAX_OTHER_FAILURES = 5

CONCURRENT_ATTEMPTS = "Too many concurrent attempts"
INVALID_ROLE = "Role is not valid"
_ACTION = re.compile(r"perform:\s*([a-z0-9-]+:[A-Za-z0-9]+)")
PERMISSIONS_FIX = (
    "the scheduler's role needs ecs:RegisterTaskDefinition, ecs:TagResource (condition "
    "ecs:CreateAction=RegisterTaskDefinition) and iam:PassRole on the task definition's task and execution "
    "roles (condition iam:PassedToService=ecs-tasks.amazonaws.com); deploy/ecs-executor.yaml grants them"
)


class DefinitionUnavailable(Exception):
    """No derived task definition can be had for this task: the message is the try's failure reason."""


class Definitions:
    """Derived task definitions for one engine (all on the engine's loop)."""

    def __init__(self, ctx: Context, calls: EcsCalls, clock: Callable[[], float] = time.monotonic):
        share = ctx.settings.schedulers_sharing_budget  # the account's buckets are shared by all of them
        self._share = share
        self.ctx = ctx
        self.calls = calls
        self.container_name = ctx.settings.container_name
        self._clock = clock
        self.modify_bucket = TokenBucket(
            TASK_DEFINITION_MODIFY_RATE / share, max(1, TASK_DEFINITION_MODIFY_BURST // share), min_rate=0.1
        )
        self.read_bucket = TokenBucket(
            TASK_DEFINITION_READ_RATE / share, max(1, TASK_DEFINITION_READ_BURST // share)
        )
        self.tag_bucket = TokenBucket(TAG_MODIFY_RATE / share, max(1, TAG_MODIFY_BURST // share))
        self._bases: dict[str, tuple[float, asyncio.Future[tuple[dict[str, Any], list[Any]]]]] = {}
        self._flights: dict[str, asyncio.Future[str]] = {}  # hash -> the ARN being found or registered
        # hash -> (when, ARN with revision); looked up again hourly, in case the clean-up removed it
        self._resolved: dict[str, tuple[float, str]] = {}
        self._refused: dict[str, tuple[float, str]] = {}  # hash -> (when, reason)
        self._tagged: dict[str, float] = {}  # ARN -> when its last-used tag was last set
        calls.on_client.append(self._watch_throttles)
        # (base ref, derivation) -> (the base description it was built from, request, hash)
        self._requests: dict[tuple[str, Derivation], tuple[Any, dict[str, Any], str]] = {}

    def forget(self, arn: str) -> None:
        """The clean-up deregistered ``arn``: the next task needing it finds or registers it again."""
        self._resolved = {h: v for h, v in self._resolved.items() if v[1] != arn}
        self._tagged.pop(arn, None)

    def _watch_throttles(self, events: Any) -> None:
        """Each throttled attempt slows its bucket. A throttled registration is not retried by botocore
        (its retry would bypass the bucket): ``_with_retries`` retries it through the bucket."""
        events.register_first("needs-retry.ecs.RegisterTaskDefinition", self._on_register_attempt)
        events.register_first("needs-retry.ecs.DescribeTaskDefinition", self._on_read_attempt)
        events.register_first("needs-retry.ecs.TagResource", self._on_tag_attempt)

    def _on_register_attempt(self, response: Any = None, **_: Any) -> bool | None:
        if throttled_response(response):
            self.modify_bucket.throttled()
            return False
        self.modify_bucket.accepted()
        return None

    def _on_read_attempt(self, response: Any = None, **_: Any) -> None:
        _answered(self.read_bucket, response)  # botocore retries it; the next reads wait longer

    def _on_tag_attempt(self, response: Any = None, **_: Any) -> None:
        _answered(self.tag_bucket, response)

    async def resolve(self, base_ref: str, derivation: Derivation) -> str:
        """The full ARN (with revision) of the definition ``base_ref`` becomes with ``derivation``.
        Raises DefinitionUnavailable with the reason for the try."""
        described = await self._base(base_ref)
        memo = self._requests.get((base_ref, derivation))
        if memo is not None and memo[0] is described:
            request, digest = memo[1], memo[2]
        else:  # once per derivation and base description, not per task (the engine thread holds the GIL)
            try:
                request = register_request(described[0], self.container_name, derivation, described[1])
            except NotDerivable as exc:
                raise DefinitionUnavailable(f"not launched: {exc}") from None
            digest = definition_hash(request)
            self._requests[(base_ref, derivation)] = (described, request, digest)
        resolved = self._resolved.get(digest)
        if resolved is not None and self._clock() - resolved[0] < LAST_USED_EVERY_SECONDS:
            arn = resolved[1]
        else:
            arn = await self._flight(digest, request, base_ref)
        self._touch(arn)
        return arn

    async def _flight(self, digest: str, request: dict[str, Any], base_ref: str) -> str:
        """Join (or start) the one search-or-registration for ``digest``."""
        refused = self._refused.get(digest)
        if refused is not None and self._clock() - refused[0] < REFUSAL_MEMORY_SECONDS:
            raise DefinitionUnavailable(refused[1])
        flight = self._flights.get(digest)
        if flight is None:
            flight = self.ctx.spawn(self._obtain(digest, request, base_ref))
            flight.add_done_callback(_retrieved)
            self._flights[digest] = flight
        # Shielded: a revoked try stops waiting; the registration goes on for the others.
        return str(await asyncio.shield(flight))

    # ---- the base definition -------------------------------------------------------------------------

    async def _base(self, base_ref: str) -> tuple[dict[str, Any], list[Any]]:
        cached = self._bases.get(base_ref)
        if cached is None or (cached[1].done() and self._clock() - cached[0] > BASE_CACHE_SECONDS):
            cached = (self._clock(), self.ctx.spawn(self._describe_base(base_ref)))
            cached[1].add_done_callback(_retrieved)
            self._bases[base_ref] = cached
        future = cached[1]
        try:
            return await asyncio.shield(future)
        except DefinitionUnavailable:
            if self._bases.get(base_ref) is cached:
                del self._bases[base_ref]  # the next task asks again
            raise

    async def _describe_base(self, base_ref: str) -> tuple[dict[str, Any], list[Any]]:
        answer = await self._with_retries(
            f"describe base task definition {base_ref}",
            lambda: self._read("describe_task_definition", taskDefinition=base_ref, include=["TAGS"]),
            "ecs:DescribeTaskDefinition",
        )
        return dict(answer["taskDefinition"]), list(answer.get("tags") or [])

    # ---- find again or register ------------------------------------------------------------------------

    async def _obtain(self, digest: str, request: dict[str, Any], base_ref: str) -> str:
        try:
            arn = await self._with_retries(
                f"register task definition {request['family']} (derived from {base_ref})",
                lambda: self._find_or_register(digest, request),
                "ecs:RegisterTaskDefinition",
            )
        except DefinitionUnavailable as exc:
            self._refused[digest] = (self._clock(), str(exc))
            raise
        finally:
            self._flights.pop(digest, None)
        self._resolved[digest] = (self._clock(), arn)
        return arn

    async def _find_or_register(self, digest: str, request: dict[str, Any]) -> str:
        family = request["family"]
        found = await self._find(family, digest)
        if found is not None:
            self.ctx.counters["definitions_reused"] += 1
            log.info("Reusing task definition %s (found by its hash tag)", found)
            return await self._earliest(family, digest, found)
        if self._share > 1:  # other schedulers may be about to register it too: a random head start
            await asyncio.sleep(self.ctx.rng.random() * REGISTER_SPREAD_SECONDS)
            found = await self._find(family, digest)
            if found is not None:
                self.ctx.counters["definitions_reused"] += 1
                log.info("Reusing task definition %s (another scheduler registered it)", found)
                return await self._earliest(family, digest, found)
        await self.modify_bucket.acquire()
        tags = [*request["tags"], {"key": LAST_USED_TAG, "value": str(int(time.time()))}]
        answer = await self.calls.call("register_task_definition", **{**request, "tags": tags})
        arn = str(answer["taskDefinition"]["taskDefinitionArn"])
        self._tagged[arn] = self._clock()
        self.ctx.counters["definitions_registered"] += 1
        log.info("Registered task definition %s", arn)
        return await self._earliest(family, digest, arn)

    async def _earliest(self, family: str, digest: str, arn: str) -> str:
        """The lowest ACTIVE revision of ``family`` with hash tag ``digest`` (``arn`` if none is lower, or
        the lookup fails). Schedulers that registered the same content at the same moment each got their
        own revision (ECS has no idempotent registration); this way all of them run the same one, and the
        spare revisions, unused, go with the clean-up."""
        revision = _revision(arn)
        if revision <= 1:
            return arn
        try:
            listed = await self._read(
                "list_task_definitions", familyPrefix=family, status="ACTIVE", sort="ASC", maxResults=10
            )
            for lower in listed.get("taskDefinitionArns") or []:
                if _revision(lower) >= revision:
                    break
                answer = await self._read("describe_task_definition", taskDefinition=lower, include=["TAGS"])
                active = (answer.get("taskDefinition") or {}).get("status") == "ACTIVE"
                if active and tag_value(answer.get("tags"), HASH_TAG) == digest:
                    self.ctx.counters["definitions_converged"] += 1
                    log.info("Using %s, the earliest revision with the same content as %s", lower, arn)
                    return str(lower)
        except Exception as exc:
            code, message, _ = error_code(exc)
            log.warning(
                "Could not look for earlier revisions of %s (%s: %s); using %s", family, code, message, arn
            )
        return arn

    async def _find(self, family: str, digest: str) -> str | None:
        """The latest ACTIVE revision of ``family`` if its hash tag is ``digest``: registered before, by
        this scheduler before a restart or by another one."""
        try:
            answer = await self._read("describe_task_definition", taskDefinition=family, include=["TAGS"])
        except Exception as exc:
            code, message, _ = error_code(exc)
            if code == "ClientException" and CONCURRENT_ATTEMPTS not in message:
                return None  # "Unable to describe task definition": no such family yet
            raise
        definition = answer.get("taskDefinition") or {}
        if definition.get("status") == "ACTIVE" and tag_value(answer.get("tags"), HASH_TAG) == digest:
            return str(definition["taskDefinitionArn"])
        return None

    async def _read(self, method: str, **kwargs: Any) -> Any:
        await self.read_bucket.acquire()
        return await self.calls.call(method, **kwargs)

    async def _with_retries(self, what: str, attempt: Callable[[], Any], action: str) -> Any:
        """Run ``attempt`` until it answers; waits on throttles and concurrent registrations, fails at
        once on refusals no waiting heals (DefinitionUnavailable with the permission and the fix)."""
        delay, others = FIRST_BACKOFF_SECONDS, 0
        while True:
            try:
                return await attempt()
            except DefinitionUnavailable:
                raise
            except Exception as exc:
                code, message, status = error_code(exc)
                refusal = _refusal(what, code, message, action)
                if refusal is not None:
                    raise DefinitionUnavailable(refusal) from None
                waiting = is_throttle(exc) or CONCURRENT_ATTEMPTS in message
                if not waiting:
                    others += 1
                    if (code and (status or 500) < 500) or others >= MAX_OTHER_FAILURES:
                        raise DefinitionUnavailable(
                            f"not launched: could not {what}: {code or type(exc).__name__}: {message}"
                        ) from None
                self.ctx.counters["definition_retries"] += 1
                log.info("Will retry to %s: %s %s", what, code or type(exc).__name__, message)
                await asyncio.sleep(delay * (0.5 + self.ctx.rng.random()))
                delay = min(MAX_BACKOFF_SECONDS, delay * 2)

    # ---- last use, for the clean-up across schedulers --------------------------------------------------

    def _touch(self, arn: str) -> None:
        last = self._tagged.get(arn)
        if last is not None and self._clock() - last < LAST_USED_EVERY_SECONDS:
            return
        self._tagged[arn] = self._clock()
        self.ctx.spawn(self._tag_last_used(arn))

    async def _tag_last_used(self, arn: str) -> None:
        await self.tag_bucket.acquire()
        try:
            await self.calls.call(
                "tag_resource",
                resourceArn=arn,
                tags=[{"key": LAST_USED_TAG, "value": str(int(time.time()))}],
            )
        except Exception as exc:
            code, message, _ = error_code(exc)
            log.warning(
                "Could not tag %s as used (%s: %s); the clean-up may consider it unused", arn, code, message
            )


def _revision(arn: str) -> int:
    """The revision number at the end of a task definition ARN (0 if there is none)."""
    tail = arn.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _answered(bucket: TokenBucket, response: Any) -> None:
    if throttled_response(response):
        bucket.throttled()
    else:
        bucket.accepted()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Every waiter may have been revoked: the outcome is still consumed (no "never retrieved" noise)."""
    if not future.cancelled():
        future.exception()


def _refusal(what: str, code: str, message: str, action: str) -> str | None:
    """The try's failure reason for an answer no waiting heals; None for one worth retrying."""
    if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
        named = _ACTION.search(message)
        permission = named.group(1) if named else action
        fix = PERMISSIONS_FIX if "register" in what else f"the scheduler's role needs {action}"
        return f"not launched: could not {what}: {permission} denied ({message}); {fix}"
    if code == "ClientException" and INVALID_ROLE in message:
        return (
            f"not launched: could not {what}: ECS answered 'Role is not valid': the base task definition's "
            "taskRoleArn or executionRoleArn names a role that does not exist or that ECS may not assume; "
            "fix the role in the base task definition"
        )
    if code == "ClientException" and "describe" in what and CONCURRENT_ATTEMPTS not in message:
        return f"not launched: could not {what}: {message} (option task_definition or the queue profile)"
    if code in ("InvalidParameterException", "ClientException") and CONCURRENT_ATTEMPTS not in message:
        return f"not launched: could not {what}: {code}: {message}"
    return None
