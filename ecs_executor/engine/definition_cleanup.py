"""The clean-up of derived task definitions: every ``derived_definition_cleanup_interval``, find the
families this executor derived from its base task definitions (ListTaskDefinitionFamilies by the bases'
names, ListTaskDefinitions, DescribeTaskDefinition with tags), the definitions in use (tracked tries, and
ListTasks + DescribeTasks of every task ECS wants RUNNING in our clusters), then deregister what
``ecs_executor.core.definition_cleanup`` says is unused and delete what this scheduler deregistered.

ECS's RegisterTaskDefinition and DeregisterTaskDefinition share one bucket (burst 20, 1/s) per account:
the clean-up takes a token only while most of the burst is left and at most a few a minute, so
registrations that launches wait on never queue behind it. Anything that fails is one warning per sweep
and the sweep ends; launches never see it. Several schedulers may sweep at once: deregistering an
INACTIVE definition and deleting a DELETE_IN_PROGRESS one are harmless, and the last-used tag that every
scheduler refreshes keeps what another one uses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ecs_executor.aws.clients import describe_error, error_code, is_throttle
from ecs_executor.core.definition_cleanup import (
    CleanupOptions,
    DerivedDefinition,
    family_prefix,
    is_derived_family,
    revision_ref,
    to_delete,
    to_deregister,
)
from ecs_executor.core.pacing import TokenBucket
from ecs_executor.engine.calls import EcsCalls
from ecs_executor.engine.context import Context, every
from ecs_executor.request.ecs_rules import MAX_DESCRIBE_TASKS, MAX_LIST_RESULTS

log = logging.getLogger(__name__)

# ECS's "task definition modify" bucket (Register + Deregister): the shape of the bucket the clean-up
# draws from when registration does not hand it its own.
MODIFY_BURST, MODIFY_RATE = 20, 1.0
# The clean-up deregisters only while this many tokens are left for registration...
MODIFY_RESERVE = 15
# ...and at most one per this many seconds (4 a minute).
DEREGISTER_SPACING = 15.0
# How long it waits for registration to leave the reserve before giving the rest of the sweep up.
RESERVE_WAIT_SECONDS = 120.0
# ECS's "task definition deletion" bucket (DeleteTaskDefinitions).
DELETE_BURST, DELETE_RATE = 5, 1.0
# A fraction of ECS's "task definition read" bucket (50, 20/s), which registration also reads from.
READ_BURST, READ_RATE = 10, 5.0
# The codes that mean "nothing more will work this sweep": stop there.
HOPELESS_CODES = frozenset({"AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"})


class SweepFailed(Exception):
    """A read the sweep cannot go on without failed (the message says which)."""


@dataclass
class Sweep:
    deregistered: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    problem: str | None = None  # the first failure, logged once


class DefinitionCleaner:
    def __init__(
        self,
        ctx: Context,
        calls: EcsCalls,
        *,
        base_families: Callable[[], Iterable[str]],
        clusters: Callable[[], Iterable[str]],
        modify_bucket: TokenBucket | None = None,
        clock: Callable[[], float] = time.time,
        spacing: float = DEREGISTER_SPACING,
        on_deregistered: Callable[[str], None] | None = None,
    ):
        s = ctx.settings
        self.ctx = ctx
        self.calls = calls
        self._base_families = base_families
        self._clusters = clusters
        self.options = CleanupOptions(s.derived_definition_retention, s.derived_definition_keep)
        self.interval = s.derived_definition_cleanup_interval
        self.modify_bucket = modify_bucket or TokenBucket(MODIFY_RATE, MODIFY_BURST)
        self.delete_bucket = TokenBucket(DELETE_RATE, DELETE_BURST)
        self.read_bucket = TokenBucket(READ_RATE, READ_BURST)
        self.clock = clock
        self.spacing = spacing
        self.on_deregistered = on_deregistered  # e.g. registration forgets the ARN it cached
        # Deregistered here and not yet deleted: listing INACTIVE revisions is unreliable.
        self.deregistered: dict[str, None] = {}
        self._last_deregister = float("-inf")

    async def run_forever(self) -> None:
        await every(self.interval, self.sweep_once, "Task definition clean-up")

    async def sweep_once(self) -> Sweep:
        sweep = Sweep()
        try:
            found = await self._derived()
            if not self.deregistered and not to_deregister(
                found, self._tracked_in_use(), self.options, self.clock()
            ):
                return sweep  # nothing could be due: no need to list every task in our clusters
            in_use = await self._in_use()
        except SweepFailed as exc:
            sweep.problem = str(exc)
        else:
            due = to_deregister(found, in_use, self.options, self.clock())
            await self._deregister_all(due, sweep)
            if sweep.problem is None or self.deregistered:
                await self._delete_all(in_use | self._tracked_in_use(), sweep)
        if sweep.problem:
            log.warning(
                "Task definition clean-up: %s; deregistered %d, deleted %d this time; next try in %.0fs",
                sweep.problem,
                len(sweep.deregistered),
                len(sweep.deleted),
                self.interval,
            )
        return sweep

    # ---- what exists -------------------------------------------------------------------------------

    async def _derived(self) -> list[DerivedDefinition]:
        prefixes = sorted({family_prefix(b) for b in self._base_families() if b})
        families: dict[str, None] = {}  # one base's prefix may list another's families too
        for prefix in prefixes:
            names = await self._pages(
                "list_task_definition_families", "families", familyPrefix=prefix, status="ACTIVE"
            )
            families.update(dict.fromkeys(n for n in names if is_derived_family(n)))
        found: list[DerivedDefinition] = []
        for family in families:
            arns = await self._pages(
                "list_task_definitions", "taskDefinitionArns", familyPrefix=family, status="ACTIVE"
            )
            for arn in arns:
                if revision_ref(arn).rsplit(":", 1)[0] != family:  # a longer family with this prefix
                    continue
                try:
                    answer = await self._read(
                        "describe_task_definition", taskDefinition=arn, include=["TAGS"]
                    )
                except SweepFailed as exc:
                    if _vanished(exc.__cause__):  # another scheduler deleted it since the listing
                        continue
                    raise
                found.append(DerivedDefinition.from_description(answer))
        return found

    async def _pages(self, method: str, key: str, **kwargs: Any) -> list[str]:
        items: list[str] = []
        token: str | None = None
        while True:
            page = await self._read(method, maxResults=MAX_LIST_RESULTS, **kwargs, **_token(token))
            items += [str(i) for i in page.get(key) or []]
            token = page.get("nextToken")
            if not token:
                return items

    async def _read(self, method: str, **kwargs: Any) -> Any:
        await self.read_bucket.acquire()
        try:
            return await self.calls.call(method, **kwargs)
        except Exception as exc:
            raise SweepFailed(f"{_operation(method)} failed ({describe_error(exc)})") from exc

    # ---- what is in use ----------------------------------------------------------------------------

    def _tracked_in_use(self) -> set[str]:
        """The definitions of tries this scheduler is launching (the running ones ListTasks finds)."""
        used = set()
        for tracked in list(self.ctx.registry.by_key.values()):
            definition = (tracked.kwargs or {}).get("taskDefinition")
            if definition:
                used.add(revision_ref(str(definition)))
        return used

    async def _in_use(self) -> set[str]:
        used = self._tracked_in_use()
        for cluster in dict.fromkeys(self._clusters()):
            arns: list[str] = []
            token: str | None = None
            while True:
                page = await self._cluster_read(
                    "list_tasks",
                    cluster=cluster,
                    desiredStatus="RUNNING",  # PENDING tasks too: ECS wants them RUNNING
                    maxResults=MAX_LIST_RESULTS,
                    **_token(token),
                )
                arns += [str(a) for a in page.get("taskArns") or []]
                token = page.get("nextToken")
                if not token:
                    break
            for i in range(0, len(arns), MAX_DESCRIBE_TASKS):
                answer = await self._cluster_read(
                    "describe_tasks", cluster=cluster, tasks=arns[i : i + MAX_DESCRIBE_TASKS]
                )
                tasks = answer.get("tasks") or []
                used |= {
                    revision_ref(str(t["taskDefinitionArn"])) for t in tasks if t.get("taskDefinitionArn")
                }
        return used

    async def _cluster_read(self, method: str, **kwargs: Any) -> Any:
        await self.calls.describe_bucket.acquire()  # ECS's cluster read bucket, shared with tracking
        if method == "describe_tasks":
            self.ctx.counters["describe_calls"] += 1
        try:
            return await self.calls.call(method, **kwargs)
        except Exception as exc:
            raise SweepFailed(
                f"{_operation(method)} on cluster {kwargs['cluster']} failed ({describe_error(exc)}); "
                "without knowing which definitions run there, nothing is deregistered"
            ) from exc

    # ---- deregister and delete ---------------------------------------------------------------------

    async def _deregister_all(self, due: list[DerivedDefinition], sweep: Sweep) -> None:
        for d in due:
            if d.ref in self._tracked_in_use():  # a launch resolved it since the sweep began
                continue
            if not await self._take_modify_token():
                sweep.problem = sweep.problem or "registration is using ECS's task definition budget"
                return
            try:
                await self.calls.call("deregister_task_definition", taskDefinition=d.arn)
            except Exception as exc:
                if _vanished(exc):  # another scheduler deleted it meanwhile
                    continue
                sweep.problem = (
                    sweep.problem or f"DeregisterTaskDefinition {d.arn} failed ({describe_error(exc)})"
                )
                if is_throttle(exc):
                    self.modify_bucket.throttled()
                    return
                if error_code(exc)[0] in HOPELESS_CODES:
                    return
                continue
            self.modify_bucket.accepted()
            self.deregistered[d.arn] = None
            sweep.deregistered.append(d.arn)
            self.ctx.counters["definitions_deregistered"] += 1
            unused = self.clock() - (d.last_used or 0.0)
            log.info(
                "Deregistered task definition %s (derived from %s, unused for %.0fs)",
                d.arn,
                d.tags.get("ecs-executor:base", d.base_family),
                unused,
            )
            if self.on_deregistered is not None:
                self.on_deregistered(d.arn)

    async def _take_modify_token(self) -> bool:
        """Wait for the spacing and for registration to leave the reserve; False when it does not."""
        give_up = time.monotonic() + RESERVE_WAIT_SECONDS
        while True:
            wait = self._last_deregister + self.spacing - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif self.modify_bucket.available() >= min(MODIFY_RESERVE, self.modify_bucket.burst - 1) + 1:
                await self.modify_bucket.acquire()
                self._last_deregister = time.monotonic()
                return True
            elif time.monotonic() >= give_up:
                return False
            else:
                await asyncio.sleep(min(1.0, give_up - time.monotonic()))  # a token's worth at 1/s

    async def _delete_all(self, in_use: set[str], sweep: Sweep) -> None:
        for batch in to_delete(self.deregistered, in_use):
            await self.delete_bucket.acquire()
            try:
                answer = await self.calls.call("delete_task_definitions", taskDefinitions=batch)
            except Exception as exc:
                sweep.problem = sweep.problem or f"DeleteTaskDefinitions failed ({describe_error(exc)})"
                if is_throttle(exc):
                    self.delete_bucket.throttled()
                return
            self.delete_bucket.accepted()
            for td in answer.get("taskDefinitions") or []:
                arn = str(td.get("taskDefinitionArn", ""))
                self._forget(batch, arn)
                sweep.deleted.append(arn)
                self.ctx.counters["definitions_deleted"] += 1
                log.info("Deleted task definition %s (%s)", arn, td.get("status", "DELETE_IN_PROGRESS"))
            for failure in answer.get("failures") or []:
                # Deleted meanwhile (another scheduler) or refused: either way not retried forever.
                arn, reason = str(failure.get("arn", "")), str(failure.get("reason", ""))
                self._forget(batch, arn)
                if "does not exist" not in reason.lower() and "DELETE_IN_PROGRESS" not in reason:
                    sweep.problem = sweep.problem or f"DeleteTaskDefinitions refused {arn}: {reason}"

    def _forget(self, batch: list[str], arn: str) -> None:
        ref = revision_ref(arn)
        for sent in batch:
            if revision_ref(sent) == ref:
                self.deregistered.pop(sent, None)


def _vanished(exc: BaseException | None) -> bool:
    """ECS's answer about a revision that no longer exists (deleted, and no task uses it)."""
    if exc is None:
        return False
    code, message, _ = error_code(exc)
    text = message.lower()
    return code == "ClientException" and ("does not exist" in text or "unable to describe" in text)


def _token(token: str | None) -> dict[str, str]:
    return {"nextToken": token} if token else {}


def _operation(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))
