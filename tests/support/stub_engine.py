"""A stand-in for ``engine.Engine`` with no thread and no network, so the facade can be driven in unit tests.

It offers exactly the scheduler-thread API the facade calls (tests/unit/test_executor.py checks that the
real engine still has each of these names); commands and results travel through the real channel, and a
test plays the engine's side through ``tests.support.executor_view.EngineEnd``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ecs_executor import messages as m

# The Engine API the facade uses: what the stub must offer and the real engine must keep.
FACADE_API = (
    "channel",
    "job_id",
    "crash",
    "start",
    "is_alive",
    "join",
    "run_coroutine",
    "health_problems",
    "counters",
    "last_sweep_seconds",
    "launch_allowance",
    "run_task_rate",
    "capacity_waiting",
    "take_event_lags",
    "tracked_count",
)


class StubEngines:
    """Builds the stubs (in place of the ``Engine`` class) and holds what they share within one test."""

    def __init__(self) -> None:
        self.built: list[StubEngine] = []  # oldest first: a restart builds another
        self.allowance = 1_000  # launch_allowance(): what the RunTask bucket would start within a second
        self.problems: list[str] = []  # what the start-up health check finds

    def __call__(self, settings: Any, channel: m.Channel, **options: Any) -> StubEngine:
        engine = StubEngine(self, settings, channel, **options)
        self.built.append(engine)
        return engine

    @property
    def current(self) -> StubEngine:
        return self.built[-1]


class StubEngine:
    """Alive from ``start()`` until a test calls ``die()`` or the facade's ``join()`` (after Shutdown)."""

    def __init__(
        self,
        owner: StubEngines,
        settings: Any,
        channel: m.Channel,
        *,
        builder: Any = None,
        name: str = "",
        job_id: Any = None,
    ):
        self.owner, self.settings, self.channel, self.builder, self.name = (
            owner,
            settings,
            channel,
            builder,
            name,
        )
        self.job_id = job_id
        self.crash: BaseException | None = None
        self.counters: dict[str, int] = {}
        self.last_sweep_seconds: float | None = None
        self.started = self.joined = self.alive = False

    def start(self, timeout: float = 30.0) -> None:
        self.started = self.alive = True

    def die(self, crash: BaseException | None = None) -> None:
        """The engine thread ends (as a bug would end it)."""
        self.alive, self.crash = False, crash

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: float | None) -> bool:
        self.joined, self.alive = True, False
        return True

    def run_coroutine(self, factory: Callable[[], Awaitable[Any]], timeout: float) -> Any:
        assert factory == self.health_problems, "the facade runs only the health check on the engine loop"
        return list(self.owner.problems)

    async def health_problems(self) -> list[str]:
        return list(self.owner.problems)

    def launch_allowance(self) -> int:
        return self.owner.allowance

    def run_task_rate(self) -> float:
        return float(self.owner.allowance)

    def capacity_waiting(self) -> int:
        return 0

    def take_event_lags(self) -> list[float]:
        return []

    def tracked_count(self) -> int:
        return 0
