"""The engine: one daemon thread, one asyncio loop, one aiobotocore ECS client; all AWS I/O.

The scheduler thread talks to it only through ``messages.Channel``; this module owns the thread and the
loop, drains commands and hands each to the part whose job it is: the launcher, the tracker, the stopper.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ecs_executor import messages as m
from ecs_executor.aws import redact
from ecs_executor.config.settings import EcsExecutorSettings
from ecs_executor.core.definition_cleanup import base_family_of
from ecs_executor.core.lifecycle import Tracked, TryState
from ecs_executor.core.relaunch import RelaunchPolicy
from ecs_executor.engine.airflow_db import TryStateReader
from ecs_executor.engine.calls import ClientFactory, EcsCalls
from ecs_executor.engine.clusters import ClusterDefaults
from ecs_executor.engine.context import Context
from ecs_executor.engine.data_keys import DataKeys, KmsFactory
from ecs_executor.engine.definition_cleanup import DefinitionCleaner
from ecs_executor.engine.definitions import Definitions
from ecs_executor.engine.event_feed import EventFeed, SqsFactory
from ecs_executor.engine.launcher import Launcher
from ecs_executor.engine.orphan_sweep import OrphanSweeper
from ecs_executor.engine.stopper import Stopper
from ecs_executor.engine.tracker import CRASH_LOG_LINES, RECONCILE_TICK_SECONDS, Tracker
from ecs_executor.request.run_task import RunTaskBuilder, TryIdentity

log = logging.getLogger(__name__)
T = TypeVar("T")

# How often the engine drains its command queue (see messages.Channel for why it is not woken).
COMMAND_POLL_SECONDS = 0.02


class Engine:
    """Owns the background thread. Public methods are safe to call from the scheduler thread."""

    def __init__(
        self,
        settings: EcsExecutorSettings,
        channel: m.Channel,
        *,
        builder: RunTaskBuilder | None = None,
        client_factory: ClientFactory | None = None,
        sqs_factory: SqsFactory | None = None,
        kms_factory: KmsFactory | None = None,
        name: str = "ecs-executor-engine",
        job_id: int | str | None = None,
    ):
        self.settings = settings
        self.builder = builder or RunTaskBuilder(settings)
        self.channel = channel
        self._client_factory = client_factory or _default_client_factory(settings)
        self._sqs_factory = sqs_factory or _default_sqs_factory(settings)
        self._kms_factory = kms_factory or _default_kms_factory(settings)
        # The scheduler's job (Airflow sets executor.job_id before start()), for the orphan sweep.
        self.job_id = int(str(job_id)) if str(job_id).isdigit() else None
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.crash: BaseException | None = None
        self.stopped_cleanly = False
        self._shutdown: m.Shutdown | None = None
        policy = RelaunchPolicy(settings.max_run_task_attempts, settings.capacity_wait_seconds)
        self.ctx = Context(settings, channel, policy, try_states=TryStateReader())
        # The parts, built here on the caller's thread: their asyncio primitives bind to the engine's loop
        # on first use (Python >= 3.10).
        self.calls: EcsCalls
        self.clusters: ClusterDefaults
        self.stopper: Stopper
        self.definitions: Definitions
        self.launcher: Launcher
        self.tracker: Tracker
        self.event_feed: EventFeed | None = None  # events mode only
        self.orphan_sweeper: OrphanSweeper | None = None  # orphan_sweep only
        self.definition_cleaner: DefinitionCleaner
        self.data_keys: DataKeys | None = None  # workload_kms_key only
        self._build_parts()

    def _build_parts(self) -> None:
        ctx = self.ctx
        self.calls = EcsCalls(ctx, self._client_factory)
        self.clusters = ClusterDefaults(self.calls)
        self.stopper = Stopper(ctx, self.calls)
        self.definitions = Definitions(ctx, self.calls)
        if self.settings.workload_kms_key:
            self.data_keys = DataKeys(ctx, self._kms_factory, team_name=self.builder.team_name)
        self.launcher = Launcher(
            ctx,
            self.calls,
            self.clusters,
            self.builder,
            self.stopper,
            definitions=self.definitions,
            data_keys=self.data_keys,
        )
        self.tracker = Tracker(ctx, self.calls, self.launcher.relaunch_after_stop, self._last_log_lines)
        self.launcher.observe = self.tracker.observe
        if self.settings.effective_tracking_mode == "events":
            self.event_feed = EventFeed(ctx, self.tracker, self._sqs_factory, self.builder.clusters())
            self.launcher.observe = self.event_feed.observe_launched
        if self.settings.orphan_sweep:
            self.orphan_sweeper = OrphanSweeper(
                ctx,
                self.calls,
                started_by=self.builder.started_by,
                clusters=self._sweep_clusters,
                job_id=self.job_id,
            )
        self.definition_cleaner = DefinitionCleaner(  # shares registration's bucket: ECS has one for both
            ctx,
            self.calls,
            base_families=self._base_families,
            clusters=self._sweep_clusters,
            modify_bucket=self.definitions.modify_bucket,
            on_deregistered=self.definitions.forget,
        )

    # ---- scheduler-thread API ------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        return self.ctx.counters

    @property
    def last_sweep_seconds(self) -> float | None:
        return self.tracker.last_sweep_seconds

    def start(self, timeout: float = 30.0) -> None:
        redact.install()
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("ECS executor engine thread did not start")

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run_coroutine(self, factory: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run a coroutine on the engine loop and wait for it: start-up only (health check)."""
        if self._loop is None:
            raise RuntimeError("engine not started")

        async def wrapper() -> T:
            await self.calls.client()
            return await factory()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def tracked_count(self) -> int:
        return len(self.ctx.registry.by_key)

    def capacity_waiting(self) -> int:
        """Tries waiting for ECS capacity right now (a gauge)."""
        return len(self.ctx.capacity_waiting)

    def take_event_lags(self) -> list[float]:
        """Events mode: lags (seconds) since the last call. A swap: the engine appends to a new list."""
        lags, self.ctx.event_lags = self.ctx.event_lags, []
        return lags

    def launch_allowance(self) -> int:
        """How many new launches the RunTask bucket can start within about a second."""
        bucket = self.calls.run_bucket
        return max(0, int(bucket.available() + bucket.current_rate()))

    def run_task_rate(self) -> float:
        """The RunTask rate the engine currently allows itself (lowered while ECS throttles)."""
        return self.calls.run_bucket.current_rate()

    # ---- loop ------------------------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
            self.stopped_cleanly = True
        except BaseException as exc:
            self.crash = exc
            log.exception("ECS executor engine thread crashed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        poller = asyncio.create_task(self._track_forever())
        self.ctx.spawn(self.clusters.prime(self.builder.clusters()))
        if self.orphan_sweeper is not None:
            self.ctx.spawn(self.orphan_sweeper.run_forever())
        self.ctx.spawn(self.definition_cleaner.run_forever())
        if self.data_keys is not None:
            self.ctx.spawn(self.data_keys.prime())
        try:
            # Polled, not woken: see messages.Channel. At most COMMAND_POLL_SECONDS before a launch
            # starts, less than one RunTask token (25 ms at 40/s).
            while self._shutdown is None:
                for command in self.channel.drain_commands():
                    self._handle(command)
                if self._shutdown is not None:
                    break
                await asyncio.sleep(COMMAND_POLL_SECONDS)
            await self._drain_for_shutdown(self._shutdown)
        finally:
            poller.cancel()
            for task in list(self.ctx.background):
                task.cancel()
            await asyncio.gather(poller, *self.ctx.background, return_exceptions=True)
            await self.calls.close()
            if self.data_keys is not None:
                await self.data_keys.close()

    async def _track_forever(self) -> None:
        """Polling: DescribeTasks sweeps. Events: the SQS feed, and reconciling what it did not settle."""
        if self.event_feed is None:
            await self.tracker.poll_forever()
            return
        feed = asyncio.create_task(self.event_feed.run())
        try:
            while True:
                await asyncio.sleep(RECONCILE_TICK_SECONDS)
                self.event_feed.prune_early()
                try:
                    await self.tracker.reconcile_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("Reconciling tracked tasks failed; will retry")
        finally:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)

    def _handle(self, command: m.Command) -> None:
        registry = self.ctx.registry
        if isinstance(command, m.Launch):
            self.launcher.start(command)
        elif isinstance(command, m.Adopt):
            tracked = Tracked(
                command.key, _adopted_identity(command.key), command.cluster or self.settings.cluster
            )
            tracked.state = TryState.ADOPTED
            tracked.arn = command.task_arn
            registry.add(tracked)
        elif isinstance(command, m.Stop):
            self.stopper.revoke_key(command.key, command.reason)
        elif isinstance(command, m.Shutdown):
            self._shutdown = command

    async def _drain_for_shutdown(self, shutdown: m.Shutdown | None) -> None:
        deadline = time.monotonic() + self.settings.shutdown_timeout
        if shutdown is not None and shutdown.stop_tasks:
            await self.stopper.stop_all("Airflow scheduler terminated")
        launches = [
            tracked.launch_future
            for tracked in self.ctx.registry.by_key.values()
            if tracked.launch_future and not tracked.launch_future.done()
        ]
        if launches:
            await asyncio.wait(launches, timeout=max(0.0, deadline - time.monotonic()))
        # One last sweep so the final states of finished tasks reach the executor.
        if self.ctx.registry.by_arn and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(
                    self.tracker.poll_once(), timeout=max(0.1, deadline - time.monotonic())
                )
            except Exception:
                log.debug("Final DescribeTasks sweep did not finish", exc_info=True)
        await self.ctx.ends_sent(timeout=max(0.1, deadline - time.monotonic()))

    def _sweep_clusters(self) -> list[str]:
        """Where the orphan sweep looks: the clusters the options name, and those of tracked tasks."""
        in_use = {tracked.cluster for tracked in self.ctx.registry.by_arn.values()}
        return list(dict.fromkeys([*self.builder.clusters(), *sorted(in_use)]))

    def _base_families(self) -> list[str]:
        """The families derived task definitions are derived from: the base's and the queue profiles'."""
        requests = [self.settings.base_run_task_kwargs(), *self.settings.profile_run_task_kwargs().values()]
        refs = [str(r.get("taskDefinition") or "") for r in requests]
        return list(dict.fromkeys(base_family_of(ref) for ref in refs if ref))

    # ---- start-up check ----------------------------------------------------------------------------

    async def health_problems(self) -> list[str]:
        """Cluster ACTIVE, task definition resolvable and holding our container; [] when healthy.

        The same rows as ``airflow ecs-executor check`` (one health check, in check/run.py)."""
        from ecs_executor.check.run import startup_problems

        return await startup_problems(self.calls.call, self.settings, team_name=self.builder.team_name)

    def _last_log_lines(self, arn: str, task_definition_arn: str) -> list[str]:
        """Runs in a worker thread (boto3 is synchronous). The process's one CloudWatch reader, shared with
        get_task_log: one GetLogEvents pacer, cached task definitions."""
        from ecs_executor.aws.container_logs import shared_reader

        reader = shared_reader(self.settings)
        return list(reader.last_lines(arn, CRASH_LOG_LINES, task_definition_arn=task_definition_arn or None))


def _default_client_factory(settings: EcsExecutorSettings) -> ClientFactory:
    def factory() -> Awaitable[Any]:
        from ecs_executor.aws.clients import ecs_client

        return ecs_client(settings)

    return factory


def _default_sqs_factory(settings: EcsExecutorSettings) -> SqsFactory:
    def factory() -> Awaitable[Any]:
        from ecs_executor.aws.clients import sqs_client

        return sqs_client(settings)

    return factory


def _default_kms_factory(settings: EcsExecutorSettings) -> KmsFactory:
    def factory() -> Awaitable[Any]:
        from ecs_executor.aws.clients import kms_client

        return kms_client(settings)

    return factory


def _adopted_identity(key: Any) -> TryIdentity:
    try:
        return TryIdentity.from_key(key)
    except AttributeError:
        return TryIdentity(str(key), "", "", 0)
