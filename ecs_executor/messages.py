"""The queues between the scheduler thread and the engine thread, and the messages they carry.

The scheduler side only ever calls ``put``/``get_nowait`` here: both are non-blocking, so the
scheduler's heartbeat never waits on the network.
"""

from __future__ import annotations

import itertools
import math
import queue
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecs_executor.core.task_status import TaskStatus
from ecs_executor.request.run_task import TryIdentity, new_launch_id

# ---- executor -> engine ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Launch:
    """Start one ECS task for one Airflow try.

    Carries the workload as JSON (serialised on the scheduler thread; cost in docs/benchmarks.md): one
    string instead of a dozen pydantic objects kept until the task runs, for every task in flight; fewer
    objects for the garbage collector to walk while it holds the GIL. RunTask arguments are built on the
    engine thread.
    """

    key: Hashable
    identity: TryIdentity
    workload_json: str = field(repr=False)  # holds the workload's JWT: never log it
    executor_config: Mapping[str, Any] | None = field(default=None, repr=False)
    deadline: float | None = None  # time.monotonic() after which the token has expired
    attempt: int = 1  # launch attempt to start at (a restarted engine resumes where the old one was)
    # One per queued workload (request.run_task.new_launch_id): the clientToken's root. Airflow queues the
    # same try again in normal operation, so the try's key would repeat tokens.
    launch_id: str = field(default_factory=new_launch_id)
    queue: str | None = None  # the task's Airflow queue, for queue_profiles


@dataclass(frozen=True, slots=True)
class Stop:
    key: Hashable
    reason: str


@dataclass(frozen=True, slots=True)
class Adopt:
    """Track an ECS task launched by an earlier scheduler."""

    key: Hashable
    task_arn: str
    cluster: str | None = None  # from the ARN; None: the configured cluster


@dataclass(frozen=True, slots=True)
class Shutdown:
    stop_tasks: bool = False


Command = Launch | Stop | Adopt | Shutdown

# ---- engine -> executor ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Launched:
    key: Hashable
    task_arn: str
    attempt: int
    on_fallback: str | None = None  # "FARGATE (fallback: why)" when the try moved to its fallback target

    def task_event(self) -> tuple[str, str] | None:
        """The try's task event for this launch: worth one after a relaunch or on a fallback target."""
        if self.on_fallback:
            return (
                "ECS task launched",
                f"{self.task_arn} on {self.on_fallback} (launch attempt {self.attempt})",
            )
        if self.attempt > 1:
            return "ECS task launched", f"{self.task_arn} (launch attempt {self.attempt})"
        return None


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    key: Hashable
    reason: str
    kind: str = "permanent"  # permanent | gave_up | expired | internal (metric dimension)


@dataclass(frozen=True, slots=True)
class Relaunching:
    """A launch attempt failed transiently; recorded as a task event of the try, no state change."""

    key: Hashable
    reason: str
    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class StateChanged:
    key: Hashable
    task_arn: str
    status: TaskStatus
    # A final state only: the try's state in Airflow's DB when it had handed itself back (``core.handback``).
    handed_back: str | None = None


@dataclass(frozen=True, slots=True)
class AdoptionFailed:
    """An adopted ARN does not exist (any more) in ECS."""

    key: Hashable
    task_arn: str
    reason: str


@dataclass(frozen=True, slots=True)
class EngineNote:
    """Something the operator should see in the scheduler log (not about one try)."""

    level: str
    message: str


Result = Launched | LaunchFailed | Relaunching | StateChanged | AdoptionFailed | EngineNote


def is_final(result: Result) -> bool:
    """A try's end: what frees its slot in Airflow. Never waits behind notices (``Channel``)."""
    if isinstance(result, StateChanged):
        return result.status.phase.is_terminal
    return isinstance(result, (LaunchFailed, AdoptionFailed))


# One sequence for every channel of the process: a result's place in the order the engine sent them.
_SEQUENCE = itertools.count(1)

Sequenced = tuple[int, Result]


def next_sequence() -> int:
    """A number greater than every result's sent so far and smaller than every result's sent later."""
    return next(_SEQUENCE)


class Channel:
    """Thread-safe unbounded queues, commands one way and results the other. Nothing here wakes the other
    thread.

    The engine drains ``commands`` on a short timer (``engine.loop.COMMAND_POLL_SECONDS``) instead of being
    woken: a cross-thread wake-up is a syscall that releases the GIL, and winning it back from a busy
    engine thread costs the scheduler's heartbeat up to one switch interval (5 ms). Measured in
    docs/benchmarks.md.

    Results travel in two queues so a try's end (``is_final``) never waits behind a burst of notices
    (RUNNING, Launched, Relaunching): the facade drains ``finals`` first (``Intake``). Each result carries
    its number in the order sent, so the facade can tell a result sent before a key was last queued (about
    an earlier queueing) and hold back a final until the notices sent before it are applied.
    """

    def __init__(self) -> None:
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.finals: queue.SimpleQueue[Sequenced] = queue.SimpleQueue()
        self.notices: queue.SimpleQueue[Sequenced] = queue.SimpleQueue()

    def send(self, command: Command) -> None:
        """Called from the scheduler thread; never blocks."""
        self.commands.put(command)

    def send_many(self, commands: list[Command]) -> None:
        for command in commands:
            self.commands.put(command)

    def put_result(self, result: Result) -> None:
        """Called from the engine thread; never blocks."""
        (self.finals if is_final(result) else self.notices).put((next(_SEQUENCE), result))

    def has_results(self) -> bool:
        return not (self.finals.empty() and self.notices.empty())

    def take(
        self, finals_limit: int | None, notices_limit: int | None
    ) -> tuple[list[Sequenced], list[Sequenced]]:
        """Up to ``finals_limit`` finals and ``notices_limit`` notices, each in the order sent."""
        return _drain(self.finals, finals_limit), _drain(self.notices, notices_limit)

    def drain_results(self) -> list[Result]:
        """Everything queued, in the order sent (tests, and a dead engine's last words)."""
        finals, notices = self.take(None, None)
        return [result for _, result in sorted(finals + notices, key=_seq)]

    def drain_commands(self) -> list[Command]:
        out: list[Command] = []
        while True:
            try:
                out.append(self.commands.get_nowait())
            except queue.Empty:
                return out


def _seq(item: Sequenced) -> int:
    return item[0]


def _drain(q: queue.SimpleQueue[Sequenced], limit: int | None) -> list[Sequenced]:
    out: list[Sequenced] = []
    while limit is None or len(out) < limit:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            break
    return out


# Finals (a try's end) applied per heartbeat at most, before any notice.
MAX_FINALS_PER_SYNC = 2_000


class Intake:
    """The facade's order of applying results: finals first (each overtakes the notices sent before it),
    then notices. A final that ``uncertain`` says cannot be judged yet waits (parked) until the notices
    sent before it are applied, and so does any later final of its key."""

    def __init__(self) -> None:
        self.parked: list[Sequenced] = []
        self._parked_keys: set[Hashable] = set()

    def results(
        self,
        channel: Channel,
        notices_limit: int | None,
        uncertain: Callable[[Result], bool],
    ) -> Iterator[Sequenced]:
        """What to apply now, in order: up to MAX_FINALS_PER_SYNC finals (all when ``notices_limit`` is None,
        as for notices). ``uncertain`` is asked just before a final would be yielded."""
        finals_limit = None if notices_limit is None else MAX_FINALS_PER_SYNC
        finals, notices = channel.take(finals_limit, notices_limit)
        for seq, result in finals:
            key = getattr(result, "key", None)
            if key in self._parked_keys or uncertain(result):
                self.parked.append((seq, result))
                self._parked_keys.add(key)
            else:
                yield seq, result
        yield from notices
        if self.parked:
            # Every notice sent before ``caught_up`` has now been applied.
            full = notices_limit is not None and len(notices) >= notices_limit
            caught_up = notices[-1][0] if full else math.inf
            ready = 0
            while ready < len(self.parked) and self.parked[ready][0] < caught_up:
                ready += 1
            due, self.parked = self.parked[:ready], self.parked[ready:]
            self._parked_keys = {getattr(result, "key", None) for _, result in self.parked}
            yield from due
