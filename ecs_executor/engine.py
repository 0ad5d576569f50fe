"""All AWS I/O: one daemon thread, one asyncio loop, one long-lived aiobotocore ECS client.

The scheduler thread talks to this module only through ``messages.Channel``. Launches are concurrent
(one RunTask per Airflow try, paced by a token bucket and bounded by a semaphore); tracking is one
DescribeTasks sweep every ``poll_interval`` in chunks of 100; stops are concurrent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)

from ecs_executor import messages as m
from ecs_executor import redact
from ecs_executor.config import EcsExecutorSettings
from ecs_executor.ecs_client import default_client
from ecs_executor.ratelimit import TokenBucket
from ecs_executor.run_task import (
    InvalidTaskConfig,
    RunTaskBuilder,
    TaskIdentity,
    workload_command,
)
from ecs_executor.states import Phase, TaskStatus, task_status
from ecs_executor.triage import (
    THROTTLING_CODES,
    Decision,
    Verdict,
    backoff_seconds,
    classify_api_error,
    classify_connection_error,
    classify_run_task_failure,
    classify_stopped,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DESCRIBE_CHUNK = 100  # ECS DescribeTasks limit
# ECS "cluster resource read" bucket (DescribeTasks, ListTasks): burst 100, refill 20/s.
DESCRIBE_RATE = 20.0
DESCRIBE_BURST = 100
# DescribeTasks calls in flight at once. The 20/s refill is the limit anyway (4 calls of ~50 ms allow
# ~80/s); fewer responses parsed at a time keeps a sweep's garbage, and so the RSS high-water mark,
# independent of the number of tracked tasks.
DESCRIBE_IN_FLIGHT = 4
# How often the engine drains its command queue (see messages.Channel for why it is not woken).
COMMAND_POLL_SECONDS = 0.02
# A freshly launched task can be briefly unknown to DescribeTasks (eventual consistency).
MISSING_POLLS_BEFORE_FAIL = 3
RETRY_DELAY_CAP = 20.0
# A replaced client (credential refresh) stays open this long for the calls still using it.
CLIENT_RETIRE_SECONDS = 90.0
# How long a revoked launch with an unknown RunTask outcome keeps trying to find and stop its task.
SETTLE_SECONDS = 300.0
# Tell the operator when throttling has lowered the RunTask rate this much, at most this often.
SLOWED_NOTE_SHARE = 0.75
SLOWED_NOTE_SECONDS = 60.0
# Last CloudWatch lines added to a crashed task's failure reason (awslogs driver only).
CRASH_LOG_LINES = 5
CRASH_LOG_TIMEOUT = 10.0

ClientFactory = Callable[[], Awaitable[tuple[Any, contextlib.AsyncExitStack]]]


@dataclass(eq=False, slots=True)
class Tracked:
    """One Airflow try as the engine sees it. Kept small: thousands live at once."""

    key: Hashable
    identity: TaskIdentity
    kwargs: dict[str, Any] | None  # RunTask arguments, only while RunTask attempts are in progress
    deadline: float | None = None
    attempt: int = 1
    arn: str | None = None
    phase: Phase | None = None
    missing_polls: int = 0
    adopted: bool = False
    stopping: bool = False
    launch_task: asyncio.Task[None] | None = field(default=None, repr=False)
    # Until the task runs: what a relaunch rebuilds its arguments from (a task that ran is never relaunched).
    source: m.Launch | None = field(default=None, repr=False)


def _error_code(exc: ClientError) -> tuple[str, str, int | None]:
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(err.get("Code", "Unknown")), str(err.get("Message", "")), status


def classify_exception(exc: BaseException) -> Decision:
    """Map anything an ECS call can raise to a triage verdict."""
    if isinstance(exc, ClientError):
        return classify_api_error(*_error_code(exc))
    if isinstance(exc, NoCredentialsError):
        return classify_api_error("NoCredentials", str(exc))
    if isinstance(exc, (ParamValidationError, NoRegionError)):
        return Decision(Verdict.FAIL, f"invalid RunTask request: {exc}")
    if isinstance(exc, (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        return classify_connection_error(f"{type(exc).__name__}: {exc}")
    return Decision(Verdict.FAIL, f"unexpected error {type(exc).__name__}: {exc}")


class Engine:
    """Owns the background thread. Public methods are safe to call from the scheduler thread."""

    def __init__(
        self,
        settings: EcsExecutorSettings,
        channel: m.Channel,
        *,
        builder: RunTaskBuilder | None = None,
        client_factory: ClientFactory | None = None,
        name: str = "ecs-executor-engine",
    ):
        self.settings = settings
        self.builder = builder or RunTaskBuilder(settings)
        self.channel = channel
        self._client_factory = client_factory or (lambda: default_client(settings))
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.crash: BaseException | None = None
        self.last_sweep_seconds: float | None = None
        self._log_reader: Any = None
        self.stopped_cleanly = False
        # Loop-side state (touched only on the engine thread).
        self._client: Any = None
        self._client_stack: contextlib.AsyncExitStack | None = None
        self._client_generation = 0
        self._client_lock: asyncio.Lock | None = None
        self._by_key: dict[Hashable, Tracked] = {}
        self._by_arn: dict[str, Tracked] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._describe_gate: asyncio.Semaphore | None = None
        self._shutdown: m.Shutdown | None = None
        self._sem: asyncio.Semaphore | None = None
        self._run_bucket = TokenBucket(settings.effective_run_task_rate, settings.effective_run_task_burst)
        self._describe_bucket = TokenBucket(DESCRIBE_RATE, DESCRIBE_BURST)
        self._rng = random.Random()
        self._slowed_noted_at = float("-inf")
        self.counters: dict[str, int] = {
            "run_task_calls": 0,
            "run_task_retries": 0,
            "describe_calls": 0,
            "throttled": 0,
            "credential_refreshes": 0,
            "relaunches": 0,
        }

    # ---- scheduler-thread API ------------------------------------------------------------------

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
            await self._ensure_client()
            return await factory()

        fut = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return fut.result(timeout)

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
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._sem = asyncio.Semaphore(self.settings.max_concurrent_calls)
        self._describe_gate = asyncio.Semaphore(DESCRIBE_IN_FLIGHT)
        self._client_lock = asyncio.Lock()
        self._ready.set()
        poller = asyncio.create_task(self._poll_forever())
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
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(poller, *self._background, return_exceptions=True)
            if self._client_stack is not None:
                with contextlib.suppress(Exception):
                    await self._client_stack.aclose()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _emit(self, result: m.Result) -> None:
        self.channel.results.put(result)

    def _handle(self, command: m.Command) -> None:
        if isinstance(command, m.Launch):
            old = self._by_key.get(command.key)
            if old is not None:
                self._forget(old)
            tracked = Tracked(
                command.key, command.identity, None, command.deadline, attempt=command.attempt, source=command
            )
            self._by_key[command.key] = tracked
            tracked.launch_task = self._spawn(self._launch(tracked))
        elif isinstance(command, m.Adopt):
            tracked = Tracked(command.key, _adopted_identity(command.key), None, adopted=True)
            tracked.arn = command.task_arn
            self._by_key[command.key] = tracked
            self._by_arn[command.task_arn] = tracked
        elif isinstance(command, m.Stop):
            known = self._by_key.get(command.key)
            if known is not None:
                known.stopping = True
                self._forget(known)
                if known.arn:
                    self._spawn(self._stop_task(known.arn, command.reason))
        elif isinstance(command, m.Shutdown):
            self._shutdown = command

    def _forget(self, tracked: Tracked) -> None:
        if self._by_key.get(tracked.key) is tracked:
            del self._by_key[tracked.key]
        if tracked.arn and self._by_arn.get(tracked.arn) is tracked:
            del self._by_arn[tracked.arn]

    async def _drain_for_shutdown(self, shutdown: m.Shutdown | None) -> None:
        deadline = time.monotonic() + self.settings.shutdown_timeout
        if shutdown is not None and shutdown.stop_tasks:
            arns = [t.arn for t in self._by_key.values() if t.arn]
            for t in list(self._by_key.values()):
                t.stopping = True
            await asyncio.gather(
                *(self._stop_task(arn, "Airflow scheduler terminated") for arn in arns),
                return_exceptions=True,
            )
        launches = [
            t.launch_task for t in self._by_key.values() if t.launch_task and not t.launch_task.done()
        ]
        if launches:
            await asyncio.wait(launches, timeout=max(0.0, deadline - time.monotonic()))
        # One last sweep so the final states of finished tasks reach the executor.
        if self._by_arn and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._poll_once(), timeout=max(0.1, deadline - time.monotonic()))

    # ---- client ----------------------------------------------------------------------------------

    async def _ensure_client(self) -> Any:
        if self._client is None:
            assert self._client_lock is not None
            async with self._client_lock:
                if self._client is None:
                    self._client, self._client_stack = await self._client_factory()
                    self._client_generation += 1
                    self._watch_throttles(self._client)
        return self._client

    async def _refresh_client(self, generation: int) -> None:
        """Rebuild the client once per failed generation (many calls may fail together)."""
        assert self._client_lock is not None
        async with self._client_lock:
            if generation != self._client_generation:
                return
            old = self._client_stack
            self._client, self._client_stack = None, None
            self.counters["credential_refreshes"] += 1
            if old is not None:
                # Calls may still be in flight on the old client: close it only after they could end.
                self._spawn(self._close_later(old, CLIENT_RETIRE_SECONDS))
            self._client, self._client_stack = await self._client_factory()
            self._client_generation += 1
            self._watch_throttles(self._client)

    def _watch_throttles(self, client: Any) -> None:
        """Every throttled attempt slows its bucket, including those botocore would retry unseen."""
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is None:
            return
        events.register_first("needs-retry.ecs.RunTask", self._on_cluster_modify_attempt)
        events.register_first("needs-retry.ecs.StopTask", self._on_cluster_modify_attempt)  # same ECS bucket
        events.register_first("needs-retry.ecs.DescribeTasks", self._on_describe_attempt)

    def _on_cluster_modify_attempt(self, response: Any = None, **_: Any) -> bool | None:
        if _throttled(response):
            self._run_bucket.throttled()
            self._note_if_slowed()
            # Not retried by botocore, whose retry would bypass the bucket: _launch retries it through
            # the bucket at the lowered rate.
            return False
        # Not throttled, even if it failed otherwise: a 5xx or a lost reply is no sign of the rate limit, and
        # counting only clean answers would read random faults as a lower limit (measured: the fault-injection
        # run took 100 s instead of 17 s).
        self._run_bucket.accepted()
        return None

    def _note_if_slowed(self) -> None:
        bucket, now = self._run_bucket, time.monotonic()
        slowed = bucket.rate < SLOWED_NOTE_SHARE * bucket.max_rate
        if slowed and now - self._slowed_noted_at > SLOWED_NOTE_SECONDS:
            self._slowed_noted_at = now
            self._emit(
                m.EngineNote(
                    "warning",
                    f"ECS is throttling RunTask: launching at {bucket.rate:.1f}/s instead of "
                    f"{bucket.max_rate:g}/s (run_task_rate) until it stops; something else is using "
                    "this account's ECS API budget",
                )
            )

    def run_task_rate(self) -> float:
        """The RunTask rate the engine currently allows itself (lowered while ECS throttles)."""
        return self._run_bucket.current_rate()

    def _on_describe_attempt(self, response: Any = None, **_: Any) -> None:
        if _throttled(response):
            self._describe_bucket.throttled()  # botocore retries it; the next calls wait longer
        else:
            self._describe_bucket.accepted()

    @staticmethod
    async def _close_later(stack: contextlib.AsyncExitStack, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def _call(self, method: str, **kwargs: Any) -> Any:
        client = await self._ensure_client()
        assert self._sem is not None
        async with self._sem:
            try:
                return await getattr(client, method)(**kwargs)
            except ClientError as exc:
                if _error_code(exc)[0] in THROTTLING_CODES:
                    self.counters["throttled"] += 1
                raise

    # ---- launch ----------------------------------------------------------------------------------

    async def _launch(self, t: Tracked) -> None:
        retries = 0
        outcome_unknown = False  # the last RunTask may have started a task we never heard of
        try:
            while not t.stopping:
                if t.kwargs is None and not self._build(t):
                    return
                assert t.kwargs is not None
                if t.deadline is not None and time.monotonic() > t.deadline:
                    if outcome_unknown:
                        await self._settle_and_stop(t)
                    self._fail_launch(
                        t,
                        "the task was not started before its Airflow token expired "
                        "([scheduler] task_queued_timeout)",
                        "expired",
                    )
                    return
                await self._run_bucket.acquire()
                if t.stopping:
                    break
                generation = self._client_generation
                self.counters["run_task_calls"] += 1
                throttled = False
                try:
                    response = await self._call("run_task", **t.kwargs)
                except Exception as exc:
                    decision = classify_exception(exc)
                    outcome_unknown = _may_have_been_applied(exc)
                    throttled = _is_throttle(exc)
                else:
                    outcome_unknown = False
                    tasks = response.get("tasks") or []
                    if tasks:
                        self._launched(t, tasks[0])
                        return
                    failures = response.get("failures") or []
                    if failures:
                        f = failures[0]
                        decision = classify_run_task_failure(str(f.get("reason", "")), f.get("detail"))
                    else:
                        decision = Decision(Verdict.FAIL, "RunTask returned neither a task nor a failure")
                if decision.verdict in (Verdict.RETRY, Verdict.REFRESH_CREDENTIALS):
                    retries += 1
                    self.counters["run_task_retries"] += 1
                    if decision.verdict == Verdict.REFRESH_CREDENTIALS:
                        with contextlib.suppress(Exception):
                            await self._refresh_client(generation)
                    # A throttle already slowed the bucket (_on_cluster_modify_attempt): queue again at once.
                    delay = 0.0 if throttled else self._retry_delay(retries)
                    if retries in (3, 10) or retries % 50 == 0:
                        self._emit(
                            m.EngineNote(
                                "warning", f"RunTask for {t.identity} still retrying: {decision.reason}"
                            )
                        )
                    if delay:
                        await asyncio.sleep(delay)
                    continue
                if decision.verdict == Verdict.RELAUNCH and await self._schedule_relaunch(t, decision.reason):
                    continue
                if decision.verdict == Verdict.RELAUNCH:
                    return
                self._fail_launch(t, decision.reason)
                return
            if outcome_unknown:  # revoked while a RunTask's fate was unknown
                await self._settle_and_stop(t)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not kill the engine; fail this task visibly
            log.exception("Unexpected error launching %s", t.identity)
            self._fail_launch(t, f"internal error while launching: {type(exc).__name__}: {exc}", "internal")

    def _retry_delay(self, retries: int) -> float:
        return min(RETRY_DELAY_CAP, 0.5 * 2 ** min(retries, 6)) * self._rng.uniform(0.5, 1.0)

    async def _settle_and_stop(self, t: Tracked) -> None:
        """Resolve an unknown RunTask outcome: the same clientToken returns the task if one was started
        (and starts it otherwise), so whatever comes back is stopped. No orphan is left running."""
        assert t.kwargs is not None

        def nothing_started(exc: BaseException) -> bool:
            return not _may_have_been_applied(exc) and classify_exception(exc).verdict == Verdict.FAIL

        try:
            response = await self._insist("run_task", nothing_started, **t.kwargs)
        except Exception:
            return
        if response is None:
            log.warning("Could not settle RunTask for %s after revoke; an ECS task may be left", t.identity)
            return
        for task in response.get("tasks") or []:
            await self._stop_task(str(task["taskArn"]), "Airflow revoked the task")

    async def _insist(self, method: str, give_up: Callable[[BaseException], bool], **kwargs: Any) -> Any:
        """A cluster-modify call (RunTask, StopTask) that must not give up on throttling: paced by the RunTask
        bucket (the same ECS budget), throttles are waits, not failures; other errors get five tries
        within SETTLE_SECONDS. Raises what ``give_up`` accepts; None when the tries ran out."""
        failures, give_up_at = 0, time.monotonic() + SETTLE_SECONDS
        while failures < 5 and time.monotonic() < give_up_at:
            await self._run_bucket.acquire()
            try:
                return await self._call(method, **kwargs)
            except Exception as exc:
                if give_up(exc):
                    raise
                if not _is_throttle(exc):
                    failures += 1
                    await asyncio.sleep(min(5.0, 0.5 * 2**failures))
        return None

    def _build(self, t: Tracked) -> bool:
        """RunTask arguments for this attempt; a bad executor_config fails only this task."""
        source = t.source
        if source is None:
            self._fail_launch(t, "internal error: nothing to launch the task from", "internal")
            return False
        try:
            command = workload_command(source.workload_json)
            t.kwargs = self.builder.build(t.identity, command, source.executor_config, attempt=t.attempt)
        except InvalidTaskConfig as exc:
            self._fail_launch(t, f"not launched: {exc}", "invalid_config")
            return False
        return True

    async def _schedule_relaunch(self, t: Tracked, reason: str) -> bool:
        """Wait and prepare the next attempt; False (and the task failed) when none is allowed."""
        if t.source is None:
            self._fail_launch(t, reason)
            return False
        if t.attempt >= self.settings.max_run_task_attempts:
            self._fail_launch(t, f"{reason} (gave up after {t.attempt} launch attempts)", "gave_up")
            return False
        delay = backoff_seconds(t.attempt, rng=self._rng)
        if t.deadline is not None and time.monotonic() + delay > t.deadline:
            self._fail_launch(
                t,
                f"{reason} (no relaunch: it could not start before the task's Airflow token expires)",
                "expired",
            )
            return False
        self.counters["relaunches"] += 1
        self._emit(m.Relaunching(t.key, reason, t.attempt + 1, delay))
        await asyncio.sleep(delay)
        t.attempt += 1
        t.kwargs = None  # rebuilt for the new attempt (new clientToken) by _launch
        return not t.stopping

    def _launched(self, t: Tracked, task: Mapping[str, Any]) -> None:
        arn = str(task["taskArn"])
        t.arn = arn
        if t.stopping:  # revoked while RunTask was in flight: do not leave an orphan
            self._spawn(self._stop_task(arn, "Airflow revoked the task"))
            return
        self._by_arn[arn] = t
        t.launch_task = None  # finished; do not keep its coroutine alive while the task is tracked
        t.kwargs = None  # a relaunch rebuilds them from t.source
        self._emit(m.Launched(t.key, arn, t.attempt))
        self._observe(t, task)

    def _fail_launch(self, t: Tracked, reason: str, kind: str = "permanent") -> None:
        self._forget(t)
        if not t.stopping:
            self._emit(m.LaunchFailed(t.key, reason, kind))

    # ---- tracking --------------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("DescribeTasks sweep failed; will retry")
            elapsed = time.monotonic() - started
            if self._by_arn or elapsed > 0.001:
                self.last_sweep_seconds = elapsed
            await asyncio.sleep(max(0.05, self.settings.poll_interval - elapsed))

    async def _poll_once(self) -> None:
        arns = list(self._by_arn)
        chunks = [arns[i : i + DESCRIBE_CHUNK] for i in range(0, len(arns), DESCRIBE_CHUNK)]
        await asyncio.gather(*(self._describe(chunk) for chunk in chunks))

    async def _describe(self, arns: list[str]) -> None:
        assert self._describe_gate is not None
        async with self._describe_gate:
            await self._describe_bucket.acquire()
            await self._describe_locked(arns)

    async def _describe_locked(self, arns: list[str]) -> None:
        generation = self._client_generation
        self.counters["describe_calls"] += 1
        try:
            response = await self._call("describe_tasks", cluster=self.settings.cluster, tasks=arns)
        except Exception as exc:
            decision = classify_exception(exc)
            if decision.verdict == Verdict.REFRESH_CREDENTIALS:
                with contextlib.suppress(Exception):
                    await self._refresh_client(generation)
            log.warning("DescribeTasks for %d tasks failed: %s", len(arns), decision.reason)
            return
        for task in response.get("tasks") or []:
            tracked = self._by_arn.get(str(task.get("taskArn")))
            if tracked is not None:
                tracked.missing_polls = 0
                self._observe(tracked, task)
        for failure in response.get("failures") or []:
            tracked = self._by_arn.get(str(failure.get("arn")))
            if tracked is not None and failure.get("reason") == "MISSING":
                self._missing(tracked)

    def _missing(self, t: Tracked) -> None:
        t.missing_polls += 1
        if t.adopted and t.phase is None:
            self._forget(t)
            self._emit(m.AdoptionFailed(t.key, t.arn or "", "ECS does not know this task (any more)"))
        elif t.missing_polls >= MISSING_POLLS_BEFORE_FAIL:
            self._forget(t)
            status = TaskStatus(Phase.FAILED, f"ECS no longer knows task {t.arn} (DescribeTasks: MISSING)")
            self._emit(m.StateChanged(t.key, t.arn or "", status))

    def _observe(self, t: Tracked, task: Mapping[str, Any]) -> None:
        status = task_status(task, self.settings.container_name)
        if status.phase == t.phase:
            return
        t.phase = status.phase
        if status.phase == Phase.RUNNING:
            t.source = None  # a task that ran is never relaunched; free the workload JSON
        if status.phase == Phase.FAILED_TO_START:
            decision = classify_stopped(status)
            if decision is not None and decision.verdict == Verdict.RELAUNCH and t.source is not None:
                if self._by_arn.get(t.arn or "") is t:
                    del self._by_arn[t.arn or ""]
                t.arn, t.phase = None, None
                t.launch_task = self._spawn(self._relaunch_after_stop(t, decision.reason))
                return
            status = TaskStatus(Phase.FAILED, status.reason, status.exit_code, status.stop_code)
        if status.phase.is_terminal:
            self._forget(t)
        elif status.phase != Phase.RUNNING:
            return  # PENDING and STOPPING change nothing in the executor; not sending them halves results
        arn = str(task.get("taskArn"))
        if status.phase == Phase.FAILED and status.exit_code not in (None, 0):
            # A crash: the last container lines usually say why. Fetched off the loop, bounded.
            self._spawn(self._report_crash(t, arn, str(task.get("taskDefinitionArn") or ""), status))
            return
        self._emit(m.StateChanged(t.key, arn, status))

    async def _report_crash(self, t: Tracked, arn: str, task_definition_arn: str, status: TaskStatus) -> None:
        lines: list[str] = []
        try:
            lines = await asyncio.wait_for(
                asyncio.to_thread(self._last_log_lines, arn, task_definition_arn), CRASH_LOG_TIMEOUT
            )
        except Exception as exc:  # logs are a bonus; never delay or lose the failure
            log.debug("Could not read the last log lines of %s: %s", arn, exc)
        if lines:
            tail = " | ".join(line.strip()[:300] for line in lines[-CRASH_LOG_LINES:])
            status = TaskStatus(
                status.phase, f"{status.reason}; last log lines: {tail}", status.exit_code, status.stop_code
            )
        self._emit(m.StateChanged(t.key, arn, status))

    def _last_log_lines(self, arn: str, task_definition_arn: str) -> list[str]:
        """Runs in a worker thread (boto3 is synchronous); the reader caches task definitions."""
        from ecs_executor.task_logs import TaskLogReader

        if self._log_reader is None:
            self._log_reader = TaskLogReader(self.settings)
        return list(
            self._log_reader.last_lines(arn, CRASH_LOG_LINES, task_definition_arn=task_definition_arn or None)
        )

    async def _relaunch_after_stop(self, t: Tracked, reason: str) -> None:
        if await self._schedule_relaunch(t, reason):
            await self._launch(t)

    async def _stop_task(self, arn: str, reason: str) -> None:
        """Paced and persistent (``_insist``): a mass stop at shutdown must not give up on throttles."""
        try:
            answer = await self._insist(
                "stop_task",
                lambda exc: classify_exception(exc).verdict == Verdict.FAIL,
                cluster=self.settings.cluster,
                task=arn,
                reason=reason[:255],
            )
        except Exception as exc:
            log.warning("StopTask %s failed: %s", arn, classify_exception(exc).reason)
            return
        if answer is None:
            log.warning("StopTask %s kept failing; the ECS task may still be running", arn)

    # ---- start-up check ----------------------------------------------------------------------------

    async def health_problems(self) -> list[str]:
        """Cluster ACTIVE, task definition resolvable and holding our container; [] when healthy."""
        s = self.settings
        problems: list[str] = []
        try:
            answer = await self._call("describe_clusters", clusters=[s.cluster])
            clusters = answer.get("clusters") or []
            if not clusters:
                problems.append(f"cluster {s.cluster!r} was not found in {s.region_name}")
            elif clusters[0].get("status") != "ACTIVE":
                problems.append(f"cluster {s.cluster!r} is {clusters[0].get('status')}, not ACTIVE")
        except Exception as exc:
            problems.append(f"could not describe cluster {s.cluster!r}: {classify_exception(exc).reason}")
            return problems
        task_definition = s.base_run_task_kwargs().get("taskDefinition")
        try:
            answer = await self._call("describe_task_definition", taskDefinition=task_definition)
            names = [c.get("name") for c in answer["taskDefinition"].get("containerDefinitions", [])]
            if s.container_name not in names:
                problems.append(
                    f"task definition {task_definition!r} has no container named {s.container_name!r} "
                    f"(container_name); it has: {', '.join(map(str, names)) or 'none'}"
                )
        except Exception as exc:
            problems.append(
                f"could not resolve task definition {task_definition!r}: {classify_exception(exc).reason}"
            )
        return problems

    # ---- introspection (tests, benchmarks) ---------------------------------------------------------

    def tracked_count(self) -> int:
        return len(self._by_key)

    def launch_allowance(self) -> int:
        """How many new launches the RunTask bucket can start within about a second."""
        bucket = self._run_bucket
        return max(0, int(bucket.available() + bucket.current_rate()))


def _parsed(response: Any) -> dict[str, Any] | None:
    """The parsed half of botocore's ``(http_response, parsed)`` needs-retry argument."""
    if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict):
        return response[1]
    return None


def _throttled(response: Any) -> bool:
    parsed = _parsed(response)
    return parsed is not None and parsed.get("Error", {}).get("Code") in THROTTLING_CODES


def _is_throttle(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and _error_code(exc)[0] in THROTTLING_CODES


def _may_have_been_applied(exc: BaseException) -> bool:
    """True when ECS may have acted on a request we got no usable answer for (lost reply, 5xx).

    Also when botocore retried before the final answer: an earlier attempt may have been the lost one.
    """
    if isinstance(exc, ClientError):
        metadata = exc.response.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode") or 0
        return int(status) >= 500 or int(metadata.get("RetryAttempts") or 0) > 0
    return not isinstance(exc, (NoCredentialsError, ParamValidationError, NoRegionError))


def _adopted_identity(key: Hashable) -> TaskIdentity:
    try:
        return TaskIdentity.from_key(key)
    except AttributeError:
        return TaskIdentity(str(key), "", "", 0)
