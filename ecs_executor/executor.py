"""``EcsExecutor``: the synchronous facade the Airflow scheduler drives.

Every method here runs on the scheduler thread and only moves messages: ``_process_workloads`` turns
each workload into a ``Launch`` and enqueues it (RunTask arguments are built on the engine thread);
``sync`` drains results into Airflow's event buffer. The network is touched only by ``engine.Engine`` on
its own thread (and once, at ``start()``, for the optional health check).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import time
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf as airflow_conf
from airflow.utils.state import TaskInstanceState

from ecs_executor import messages as m
from ecs_executor.config.settings import EcsExecutorConfigError, EcsExecutorSettings
from ecs_executor.config.values import env_var_name
from ecs_executor.core.task_status import Phase
from ecs_executor.engine import Engine
from ecs_executor.facade.admission import AdmittingExecutor, to_launch
from ecs_executor.facade.metrics import ExecutorMetrics
from ecs_executor.facade.startup import (
    ExecutorStartupError,
    check_workload_key,
    print_startup_errors_plainly,
    scheduler_versions,
    started_line,
    warm_up,
)
from ecs_executor.facade.task_event_logs import RetainingDeque
from ecs_executor.request.arns import cluster_from_task_arn, is_task_arn
from ecs_executor.request.run_task import RunTaskBuilder

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance

# Leave this much of the workload token's lifetime for the container to pull and start.
START_MARGIN_SECONDS = 60.0
MAX_ENGINE_RESTARTS = 3
# Notices (RUNNING, Launched, Relaunching) applied per heartbeat: one heartbeat's share of a backlog
# (adoption, a launch burst, a reconcile); the rest waits for the next heartbeat, in order.
MAX_RESULTS_PER_SYNC = 500
# _superseded's value for a try queued again before the facade heard its previous queueing's ECS task.
UNANNOUNCED = "(not announced yet)"
ENGINE_RESTART_WINDOW = 600.0


def _late(executor: EcsExecutor, result: m.Result, seq: int) -> bool:
    """News of an earlier queueing of a running key (sent before it was last queued), or a previous
    queueing's end that would end the re-queued try too."""
    key = getattr(result, "key", None)
    if seq < executor._queued_seq.get(key, 0):
        if isinstance(result, m.Launched) and executor._superseded.get(key) == UNANNOUNCED:
            executor._superseded[key] = result.task_arn  # the earlier queueing's ECS task, announced late
        return True
    return getattr(result, "task_arn", None) == executor._superseded.get(key, "")


def _uncertain(executor: EcsExecutor, final: m.Result) -> bool:
    """Whether applying ``final`` needs the notices sent before it: the key was queued again before its
    previous ECS task was announced, or the facade knows the key by another ECS task (a relaunch)."""
    key = getattr(final, "key", None)
    if key not in executor.running:
        return False
    if executor._superseded.get(key) == UNANNOUNCED:
        return True
    arn, known = getattr(final, "task_arn", None), executor._arns.get(key)
    return arn is not None and known is not None and known != arn


class EcsExecutor(AdmittingExecutor):
    """Runs each Airflow task instance as one Amazon ECS task (Fargate, EC2 or EXTERNAL)."""

    supports_multi_team = True
    supports_callbacks = True
    supports_ad_hoc_ti_run = True
    is_local = False
    serve_logs = False

    def __init__(self, *args: Any, **kwargs: Any):
        # Cheap and network-free: the API server builds executors just to read task logs.
        super().__init__(*args, **kwargs)
        self._task_event_logs = RetainingDeque()
        self.settings: EcsExecutorSettings | None = None
        self._builder: RunTaskBuilder | None = None
        self._channel = m.Channel()
        self._engine: Engine | None = None
        self._arns: dict[Hashable, str] = {}
        self._superseded: dict[Hashable, str] = {}  # re-queued key -> its previous queueing's ECS task
        self._queued_seq: dict[Hashable, int] = {}  # key -> result number when last queued (_late)
        self._intake, self._uncertain = m.Intake(), functools.partial(_uncertain, self)
        self._pending: dict[Hashable, m.Launch] = {}
        self._restarts: list[float] = []
        self._ending = False
        self._queued_at: dict[Hashable, float] = {}
        self._metrics = ExecutorMetrics(self.team_name)
        self._token_lifetime = 600.0
        self._log_settings: EcsExecutorSettings | None = None  # get_task_log's, read on first use
        self._reporting = False  # inside our own success()/fail() (change_state)

    # ---- start and end -----------------------------------------------------------------------------

    def load_settings(self) -> EcsExecutorSettings:
        return EcsExecutorSettings.from_conf(self.conf, self.team_name)

    def start(self) -> None:
        try:
            self.settings = self.load_settings()
        except EcsExecutorConfigError as exc:
            self.log.error("%s", exc)
            print_startup_errors_plainly()
            raise ExecutorStartupError(str(exc)) from None
        check_workload_key(self.settings, self.team_name)  # one kms:DescribeKey when workloads are sealed
        self._builder = RunTaskBuilder(
            self.settings,
            team_name=self.team_name,
            extra_env=scheduler_versions(),
            default_queue=airflow_conf.get("operators", "default_queue", fallback="default"),
        )
        # The workload JWT is valid for task_queued_timeout (Airflow's generate_token).
        self._token_lifetime = airflow_conf.getfloat("scheduler", "task_queued_timeout", fallback=600.0)
        self._start_engine()
        if self.settings.check_health_on_startup:
            self._check_health()  # also loads botocore's ECS model before the freeze below
        warm_up(self._metrics)
        if self.settings.freeze_gc_on_start:
            # Full collections then skip start-up objects (GIL pauses otherwise; docs/benchmarks.md).
            gc.collect()  # first: garbage frozen now would never be freed
            gc.freeze()
        self.log.info(started_line(self.settings))

    def _check_health(self) -> None:
        assert self._engine is not None
        try:
            problems = self._engine.run_coroutine(self._engine.health_problems, timeout=60)
        except Exception as exc:
            problems = [f"the check itself failed: {type(exc).__name__}: {exc}"]
        if problems:
            option = env_var_name("check_health_on_startup", self.team_name)
            message = (
                "ECS executor start-up check failed:\n"
                + "\n".join(f"  - {p}" for p in problems)
                + f"\n(set {option}=False to skip this check)"
            )
            self.log.error("%s", message)
            self._stop_engine(stop_tasks=False, timeout=5)
            print_startup_errors_plainly()
            raise ExecutorStartupError(message)

    def _start_engine(self) -> None:
        assert self.settings is not None
        name, job = f"ecs-executor-engine-{self.team_name or 'default'}", self.job_id  # set by the scheduler
        self._engine = Engine(self.settings, self._channel, builder=self._builder, name=name, job_id=job)
        self._engine.start()

    def _ensure_engine(self) -> None:
        """Notice a dead engine thread at the next heartbeat: restart it, or fail loudly."""
        engine = self._engine
        if engine is None or engine.is_alive() or self._ending:
            return
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < ENGINE_RESTART_WINDOW]
        crash = f"{type(engine.crash).__name__}: {engine.crash}" if engine.crash else "thread exited"
        if len(self._restarts) >= MAX_ENGINE_RESTARTS:
            raise RuntimeError(
                f"ECS executor engine died {len(self._restarts) + 1} times within "
                f"{ENGINE_RESTART_WINDOW:.0f}s (last: {crash}); refusing to continue"
            )
        self._restarts.append(now)
        self.log.error("ECS executor engine thread died (%s); restarting it", crash)
        self._process_results(limit=None)  # what the dead engine already reported still counts
        self._channel = m.Channel()
        self._start_engine()
        for key, arn in self._arns.items():
            if key not in self._pending:
                self._channel.send(m.Adopt(key, arn, cluster_from_task_arn(arn)))
        for launch in self._pending.values():
            self._channel.send(launch)

    def _stop_engine(self, *, stop_tasks: bool, timeout: float) -> None:
        if self._engine is None:
            return
        self._ending = True
        self._channel.send(m.Shutdown(stop_tasks=stop_tasks))
        if not self._engine.join(timeout):
            self.log.warning("ECS executor engine did not stop within %.0fs; leaving it", timeout)

    def end(self) -> None:
        """Stop accepting work; wait at most shutdown_timeout for in-flight launches, then return."""
        self._finish(stop_tasks=False)

    def terminate(self) -> None:
        """Stop every tracked ECS task (concurrently), then end."""
        self._finish(stop_tasks=True)

    def _finish(self, *, stop_tasks: bool) -> None:
        """Stop the engine (and the ECS tasks when asked), then hand Airflow the results it still holds."""
        if self._engine is None:
            return
        assert self.settings is not None
        self._stop_engine(stop_tasks=stop_tasks, timeout=self.settings.shutdown_timeout + 5)
        self._process_results(limit=None)

    # ---- scheduler loop ------------------------------------------------------------------------------

    def _process_workloads(self, workloads: Sequence[Any]) -> None:
        if self._engine is None:
            raise RuntimeError("EcsExecutor.start() must be called before workloads are processed")
        now = time.monotonic()
        deadline = now + max(30.0, self._token_lifetime - START_MARGIN_SECONDS)
        queued_seq = m.next_sequence()
        batch: list[m.Command] = []
        for workload in workloads[: self._admission() if self._admit is None else self._admit]:
            key, launch, is_callback = to_launch(workload, deadline)
            queued: dict[Any, Any] = self.queued_callbacks if is_callback else self.queued_tasks  # type: ignore[assignment]
            queued.pop(key, None)
            if key in self.running:  # queued again (it deferred, a sensor rescheduled): the previous ECS task
                self._superseded[key] = self._arns.pop(key, UNANNOUNCED)  # ... maybe not announced yet
            self.running.add(key)
            self._queued_seq[key] = queued_seq
            self._queued_at[key] = now
            self._pending[key] = launch
            batch.append(launch)
        self._channel.send_many(batch)

    def sync(self) -> None:
        self._ensure_engine()
        self._process_results()
        engine = self._engine
        self._metrics.gauges(pending=len(self._pending), running=len(self.running) - len(self._pending))
        if engine is not None:
            self._metrics.engine_counters(
                engine.counters, engine.last_sweep_seconds, engine.run_task_rate(), engine.capacity_waiting()
            )
            self._metrics.event_lags(engine.take_event_lags())

    @staticmethod
    def get_cli_commands() -> list[Any]:
        """``airflow ecs-executor ...``; imported here (as Airflow's own executors do) so only building the
        CLI parser pays for the command definitions."""
        from ecs_executor.cli import cli_commands

        return cli_commands()

    def get_task_log(self, ti: TaskInstance, try_number: int) -> tuple[list[str], list[str]]:
        """Live container output from CloudWatch Logs (awslogs driver) for a running task.

        Runs in the API server, where start() is never called: settings are read on first use. The
        process's one reader (``aws.container_logs.shared_reader``) also paces the engine's crash-log
        reads; it is imported here so the scheduler's facade does not load boto3 clients it never uses."""
        if self._log_settings is None:
            try:
                self._log_settings = self.settings or self.load_settings()
            except EcsExecutorConfigError as exc:
                return [], [f"ECS executor: {exc}"]
        from ecs_executor.aws.container_logs import shared_reader

        return shared_reader(self._log_settings).read_for_ti(ti, try_number)

    def _process_results(self, limit: int | None = MAX_RESULTS_PER_SYNC) -> None:
        """Finals, then at most ``limit`` notices (``messages.Intake``); the rest waits, in order."""
        for seq, result in self._intake.results(self._channel, limit, self._uncertain):
            self._apply(result, seq)
        self._metrics.flush()

    def _apply(self, result: m.Result, seq: int = 0) -> None:
        if isinstance(result, m.EngineNote):
            self.log.log(40 if result.level == "error" else 30, "%s", result.message)
            return
        key = result.key
        if key not in self.running or _late(self, result, seq):
            return  # late news: revoked, finished, handed back, or about an earlier queueing
        if isinstance(result, m.StateChanged) and self._arns.get(key, result.task_arn) != result.task_arn:
            return  # about an ECS task this try no longer runs in (its queueing was superseded)
        if isinstance(result, m.Launched):
            # The Launch stays pending until ECS says RUNNING: a restarted engine re-sends it (same
            # clientToken, so ECS answers with this same task) in case the task never starts.
            self._arns[key] = result.task_arn
            self._superseded.pop(key, None)  # the engine sends nothing more about the previous one
            self._metrics.incr("launches")
            self._metrics.latency("launch_latency.accepted", self._queued_at.get(key))
            self.running_state(key, result.task_arn)
            if (launched := result.task_event()) is not None:
                self._task_event(key, *launched)
        elif isinstance(result, m.LaunchFailed):
            self._pending.pop(key, None)
            self._metrics.incr(f"launch_failures.{result.kind}")
            self._fail(key, result.reason)
        elif isinstance(result, m.Relaunching):
            self._arns.pop(key, None)  # that ECS task is gone; the next attempt gets a new one
            launch = self._pending.get(key)
            if launch is not None:
                self._pending[key] = dataclasses.replace(launch, attempt=result.attempt)
            self._metrics.incr("relaunches")
            self._task_event(
                key,
                "ECS launch retry",
                f"{result.reason}; launch attempt {result.attempt} in {result.delay:.0f}s",
            )
        elif isinstance(result, m.StateChanged):
            phase = result.status.phase
            if result.handed_back:
                self._handed_back(key, result)
            elif phase == Phase.RUNNING:
                self._pending.pop(key, None)
                self._metrics.latency("launch_latency.running", self._queued_at.pop(key, None))
            elif phase == Phase.SUCCESS:
                self._drop(key)
                self._report(self.success, key, result.task_arn)
            elif phase in (Phase.FAILED, Phase.FAILED_TO_START):
                self._fail(key, f"{result.task_arn}: {result.status.reason}", info=result.task_arn)
        elif isinstance(result, m.AdoptionFailed):
            self._fail(key, f"adopted ECS task {result.task_arn} could not be found: {result.reason}")

    def _fail(self, key: Hashable, reason: str, info: str | None = None) -> None:
        self._drop(key)
        self.log.error("Task %s failed: %s", key, reason)
        self._task_event(key, "ECS task failed", reason)
        self._report(self.fail, key, info)

    def _report(self, report: Any, key: Hashable, info: str | None) -> None:
        """success()/fail() for our own verdicts; change_state tells them from Airflow's own calls."""
        self._reporting = True
        report(key, info)  # BaseExecutor.change_state never raises (a key not running is logged)
        self._reporting = False

    def _drop(self, key: Hashable) -> str | None:
        """Forget the try's bookkeeping; returns its ECS task ARN, if it had one."""
        self._pending.pop(key, None)
        self._queued_at.pop(key, None)
        self._queued_seq.pop(key, None)
        arn, earlier = self._arns.pop(key, None), self._superseded.pop(key, None)
        return arn or earlier

    def _handed_back(self, key: Hashable, result: m.StateChanged) -> None:
        """Free the slot, report nothing: a report could fail the try Airflow schedules again (handback)."""
        self._drop(key)
        self.running.discard(key)
        msg = "Task %s handed itself back to Airflow (%s) before ECS task %s ended; not reported: %s"
        self.log.info(msg, key, result.handed_back, result.task_arn, result.status.reason)

    def change_state(self, key: Any, state: Any, info: Any = None, remove_running: bool = True) -> None:
        """Airflow's scheduler fails a try itself when its worker stops heartbeating
        (``_purge_task_instances_without_heartbeats``): its ECS task must not outlive that."""
        if not self._reporting and state == TaskInstanceState.FAILED and key in self.running:
            reason = "Airflow's scheduler failed this try (usually: no heartbeat from its worker)"
            self._channel.send(m.Stop(key, reason))
            stopping = f"{reason}; stopping ECS task {self._drop(key) or '(none yet)'}"
            self._task_event(key, "ECS task stopped", stopping)
            self.log.warning("Task %s: %s", key, stopping)
        super().change_state(key, state, info, remove_running)

    def _task_event(self, key: Hashable, event: str, extra: str) -> None:
        self.log_task_event(event=event, extra=extra, ti_key=key)  # type: ignore[arg-type]

    # ---- scheduler restarts, revocation ---------------------------------------------------------------

    def try_adopt_task_instances(self, tis: Sequence[TaskInstance]) -> Sequence[TaskInstance]:
        """Adopt every TI whose external_executor_id is an ECS task ARN; O(n), no network."""
        not_adopted = []
        for ti in tis:
            arn = str(ti.external_executor_id)
            if not is_task_arn(arn):
                not_adopted.append(ti)
                continue
            self.running.add(ti.key)
            self._arns[ti.key] = arn
            self._channel.send(m.Adopt(ti.key, arn, cluster_from_task_arn(arn)))
        if len(not_adopted) < len(tis):
            self.log.info("Adopted %d ECS tasks", len(tis) - len(not_adopted))
        return not_adopted

    def revoke_task(self, *, ti: TaskInstance) -> None:
        """Stop the ECS task (if any) and forget it; never raises, never touches the event buffer."""
        key = ti.key
        self.queued_tasks.pop(key, None)
        self.running.discard(key)
        self._drop(key)
        self._channel.send(m.Stop(key, "Airflow revoked the task (task_queued_timeout or cleared)"))
