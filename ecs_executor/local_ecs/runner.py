"""Drives tasks through their lifecycle: timers for the ECS states, local processes for the containers.

Which states a task passes through, and for how long, is the timing profile's (``timing.py``). Under
``instant`` a stopped task's containers are signalled at once while it is RUNNING, and it goes
DEPROVISIONING once they have stopped. Under ``fargate`` a task whose essential container exited walks
DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED, its exit code shown from the start; one stopped by
StopTask (or a Spot interruption) walks DEACTIVATING, then STOPPING, where its containers get SIGTERM
(SIGKILL after ``stop_timeout_seconds``), and leaves STOPPING only once they have stopped.

Pretend mode uses only ``loop.call_later`` timers (no process, no coroutine per task) so 10,000
concurrent tasks cost a few megabytes. Real mode runs each container's command as an asyncio subprocess
in its own session, so stopping a task can take down everything the command spawned, like Docker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecs_executor.local_ecs import podman
from ecs_executor.local_ecs.container_plan import Plan, container_plans
from ecs_executor.local_ecs.knobs import Knobs
from ecs_executor.local_ecs.model import (
    DEACTIVATING,
    DEPROVISIONING,
    RUNNING,
    SPOT_INTERRUPTED_REASON,
    SPOT_INTERRUPTION,
    STOPPED,
    STOPPING,
    USER_INITIATED,
    Task,
)
from ecs_executor.local_ecs.registry import Registry
from ecs_executor.local_ecs.timing import Timing

log = logging.getLogger(__name__)

#: What Docker reports for a container stopped by SIGTERM; pretend tasks use it when stopped by the user.
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM


def exit_code_of(returncode: int) -> int:
    """Docker reports death by signal N as exit code 128 + N; asyncio reports -N."""
    return 128 - returncode if returncode < 0 else returncode


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


class Runner:
    """Owns every timer and process of the endpoint's tasks."""

    def __init__(self, registry: Registry, knobs: Knobs) -> None:
        self.registry = registry
        self.knobs = knobs
        self.timing = Timing(knobs)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # Spot interruptions get their own timers: a running task already waits on its exit timer.
        self._spot_timers: dict[str, asyncio.TimerHandle] = {}
        self._supervisors: dict[str, asyncio.Task[None]] = {}
        self._processes: dict[str, list[asyncio.subprocess.Process]] = {}
        self._forced_exit: dict[str, int] = {}
        self._temp_log_dir: str | None = None
        # Containers started with podman, per task: a killed `podman run` leaves its container behind.
        self._podman_tasks: dict[str, list[str]] = {}

    # Helpers ---------------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        """Where task output goes; a temp dir is only created once a real process needs it."""
        if self.knobs.log_dir:
            path = Path(self.knobs.log_dir)
        else:
            if self._temp_log_dir is None:
                self._temp_log_dir = tempfile.mkdtemp(prefix="local-ecs-logs-")
            path = Path(self._temp_log_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_path(self, task_id: str) -> Path:
        return self.log_dir / f"{task_id}.log"

    @property
    def process_count(self) -> int:
        return sum(len(processes) for processes in self._processes.values())

    def _schedule(self, task: Task, delay: float, callback: Callable[..., None], *args: Any) -> None:
        """Replace the task's pending timer: a task waits for at most one lifecycle step at a time."""
        self._cancel_timer(task)
        loop = asyncio.get_running_loop()
        self._timers[task.id] = loop.call_later(delay, self._fire, task, callback, args)

    def _fire(self, task: Task, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self._timers.pop(task.id, None)
        callback(task, *args)

    def _cancel_timer(self, task: Task) -> None:
        handle = self._timers.pop(task.id, None)
        if handle is not None:
            handle.cancel()

    # Lifecycle -------------------------------------------------------------------------------------

    def launch(self, task: Task, fail_reason: str | None) -> None:
        """Start a freshly created (PROVISIONING) task; RunTask answers before it moves on."""
        steps = self.timing.start_walk()
        self._schedule(task, steps[0][1], self._step_up, steps, 1, fail_reason)

    def _step_up(
        self, task: Task, steps: list[tuple[str, float]], index: int, fail_reason: str | None
    ) -> None:
        """The next state of the walk up; after the last, the containers start (or fail to)."""
        if index == len(steps):
            self._start(task, fail_reason)
            return
        state, seconds = steps[index]
        self.registry.advance(task, state, pulling=index == len(steps) - 1)
        self._schedule(task, seconds, self._step_up, steps, index + 1, fail_reason)

    def _start(self, task: Task, fail_reason: str | None) -> None:
        if fail_reason is not None:
            self._fail_to_start(task, fail_reason)
        elif self.knobs.pretend_seconds is not None or task.id in self._forced_exit:
            self._to_running(task)
            delay = 0 if task.id in self._forced_exit else self.knobs.pretend_seconds or 0
            self._schedule(task, delay, self._pretend_exit)
        else:
            supervisor = asyncio.get_running_loop().create_task(self._supervise(task))
            self._supervisors[task.id] = supervisor

    def _to_running(self, task: Task) -> None:
        self.registry.to_running(task)
        seconds = self.knobs.spot_interruption_seconds
        if seconds is not None:
            loop = asyncio.get_running_loop()
            self._spot_timers[task.id] = loop.call_later(seconds, self._interrupt_spot, task)

    def _interrupt_spot(self, task: Task) -> None:
        """Fargate Spot reclaimed the capacity: SIGTERM, like a StopTask, under the Spot stop code."""
        self._spot_timers.pop(task.id, None)
        if task.last_status == RUNNING and self.registry.request_stop(
            task, SPOT_INTERRUPTION, SPOT_INTERRUPTED_REASON
        ):
            self._take_down(task)

    def _fail_to_start(self, task: Task, reason: str) -> None:
        self.registry.fail_to_start(task, reason)
        self._schedule(task, self.timing.stop_seconds(DEPROVISIONING), self._to_stopped)

    def _pretend_exit(self, task: Task) -> None:
        code = self._forced_exit.pop(task.id, self.knobs.pretend_exit_code)
        for container in task.containers:
            self.registry.container_exited(task, container.name, code, self._essential(task, container.name))
        self._containers_stopped(task)

    def _containers_stopped(self, task: Task) -> None:
        """Every container of a task that ran has stopped: on down to STOPPED."""
        if not self.timing.profile.walks_down:
            self._deprovision(task)
        elif task.last_status == RUNNING:  # the essential container exited on its own
            self._deactivate(task)
        elif task.last_status == STOPPING:
            self._schedule(task, self.timing.stop_seconds(STOPPING), self._deprovision)
        # DEACTIVATING: the walk goes on, and STOPPING finds the containers stopped.

    def _deactivate(self, task: Task) -> None:
        self.registry.advance(task, DEACTIVATING)
        self._schedule(task, self.timing.stop_seconds(DEACTIVATING), self._stop_containers)

    def _stop_containers(self, task: Task) -> None:
        """STOPPING: the containers still running get SIGTERM; the task stays until they have stopped."""
        self.registry.advance(task, STOPPING)
        if all(container.last_status == STOPPED for container in task.containers):
            self._containers_stopped(task)
        else:
            self._terminate(task)

    def _deprovision(self, task: Task) -> None:
        self.registry.to_deprovisioning(task)
        self._schedule(task, self.timing.stop_seconds(DEPROVISIONING), self._to_stopped)

    def _to_stopped(self, task: Task) -> None:
        self._forced_exit.pop(task.id, None)
        spot = self._spot_timers.pop(task.id, None)
        if spot is not None:
            spot.cancel()
        self.registry.to_stopped(task)

    @staticmethod
    def _essential(task: Task, name: str) -> bool:
        return bool(task.definition.containers[name].get("essential", True))

    # Outside events --------------------------------------------------------------------------------

    def stop(self, task: Task, reason: str) -> None:
        """StopTask: remember the user's reason, then take the task down from wherever it is."""
        if task.last_status in (DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED):
            self.registry.request_stop(task, USER_INITIATED, reason)
            return
        if not self.registry.request_stop(task, USER_INITIATED, reason):
            return  # already on its way down; the first cause stays
        self._take_down(task)

    def _take_down(self, task: Task) -> None:
        """Stop a task whose stop cause is recorded, as the profile does it (see the module doc)."""
        if task.last_status == RUNNING and self.timing.profile.walks_down:
            self._schedule(task, 0, self._deactivate)  # the caller's answer still shows RUNNING
        else:
            self._terminate(task)

    def _terminate(self, task: Task) -> None:
        """SIGTERM, then SIGKILL after stop_timeout_seconds; a pretend task exits as if SIGTERMed."""
        processes = self._processes.get(task.id)
        if processes:
            for process in processes:
                _signal(process.pid, signal.SIGTERM)
            self._schedule(task, self.knobs.stop_timeout_seconds, self._kill)
        elif task.id in self._supervisors:
            return  # still spawning: the supervisor sees desiredStatus STOPPED once spawned
        elif task.started_at is not None:  # a pretend task, RUNNING or STOPPING
            self._forced_exit.setdefault(task.id, SIGTERM_EXIT_CODE)
            self._schedule(task, 0, self._pretend_exit)
        else:
            self._deprovision(task)

    def finish(self, task: Task, exit_code: int) -> bool:
        """Make a task's containers exit now with ``exit_code`` (tests use it to script outcomes)."""
        if task.last_status in (DEPROVISIONING, STOPPED) or (
            task.started_at is not None and all(c.last_status == STOPPED for c in task.containers)
        ):
            return False
        self._forced_exit[task.id] = exit_code
        processes = self._processes.get(task.id)
        if processes:
            for process in processes:
                _kill_group(process.pid, signal.SIGKILL)
        elif task.last_status == RUNNING and task.id not in self._supervisors:
            self._schedule(task, 0, self._pretend_exit)
        return True

    def _kill(self, task: Task) -> None:
        for process in self._processes.get(task.id, []):
            _kill_group(process.pid, signal.SIGKILL)

    # Real processes --------------------------------------------------------------------------------

    async def _supervise(self, task: Task) -> None:
        try:
            await self._run_containers(task)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not leave the task RUNNING forever
            log.exception("supervising %s failed", task.arn)
            self._kill(task)
            if task.started_at is None:
                self._fail_to_start(task, "CannotStartContainerError: local ECS endpoint error")
            elif task.last_status not in (DEPROVISIONING, STOPPED):
                self._deprovision(task)
        finally:
            self._processes.pop(task.id, None)
            if task.id in self._podman_tasks:  # before leaving _supervisors, so shutdown waits for it
                await podman.remove(task.id, self._podman_tasks.pop(task.id))
            self._supervisors.pop(task.id, None)

    async def _spawn_containers(
        self, task: Task, plans: list[Plan]
    ) -> list[asyncio.subprocess.Process] | None:
        """One process per container; None when one could not start (the task then failed to start)."""
        processes: list[asyncio.subprocess.Process] = []
        self._processes[task.id] = processes
        with open(self.log_path(task.id), "ab") as log_file:
            for _name, argv, env, cwd in plans:
                try:
                    process = await asyncio.create_subprocess_exec(
                        *argv,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=asyncio.subprocess.STDOUT,
                        env=env,
                        cwd=cwd,
                        start_new_session=True,
                    )
                except OSError as exc:
                    self._kill(task)
                    for started in processes:
                        await started.wait()
                    self._fail_to_start(
                        task,
                        "CannotStartContainerError: ResourceInitializationError: failed to create new "
                        "container runtime task: OCI runtime create failed: unable to start container "
                        f"process: exec: {argv[0]!r}: {exc.strerror or exc}: unknown",
                    )
                    return None
                processes.append(process)
        return processes

    async def _run_containers(self, task: Task) -> None:
        plans = container_plans(task, self.knobs.container_runner)
        if isinstance(plans, str):
            self._fail_to_start(task, plans)
            return
        if self.knobs.container_runner == "podman":
            self._podman_tasks.setdefault(task.id, []).extend(name for name, *_ in plans)
        processes = await self._spawn_containers(task, plans)
        if processes is None:
            return
        if task.id in self._forced_exit:  # finish() arrived while spawning
            self._kill(task)
        if task.stop_code is not None:  # StopTask arrived while spawning: it never really ran
            self._kill(task)
            for process in processes:
                await process.wait()
            self._deprovision(task)
            return
        self._to_running(task)
        waits = {
            asyncio.ensure_future(process.wait()): (name, process)
            for (name, *_), process in zip(plans, processes, strict=True)
        }
        pending = set(waits)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                name, process = waits[finished]
                _kill_group(process.pid, signal.SIGKILL)  # the container's other processes die with it
                forced = self._forced_exit.get(task.id)
                code = forced if forced is not None else exit_code_of(finished.result())
                essential = self._essential(task, name)
                self.registry.container_exited(task, name, code, essential)
                if essential and pending and task.id not in self._timers:
                    for _other, other in waits.values():
                        if other.returncode is None:
                            _signal(other.pid, signal.SIGTERM)
                    self._schedule(task, self.knobs.stop_timeout_seconds, self._kill)
        self._forced_exit.pop(task.id, None)
        self._processes.pop(task.id, None)
        self._containers_stopped(task)

    async def shutdown(self) -> None:
        """Kill every task process and cancel every timer; state is discarded with the endpoint."""
        for timers in (self._timers, self._spot_timers):
            for handle in timers.values():
                handle.cancel()
            timers.clear()
        for processes in self._processes.values():
            for process in processes:
                _kill_group(process.pid, signal.SIGKILL)
        if self._podman_tasks:
            await asyncio.gather(*(podman.remove(tid, names) for tid, names in self._podman_tasks.items()))
        supervisors = list(self._supervisors.values())
        for supervisor in supervisors:
            supervisor.cancel()
        for processes in list(self._processes.values()):
            for process in processes:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(process.wait(), timeout=5)
        await asyncio.gather(*supervisors, return_exceptions=True)
