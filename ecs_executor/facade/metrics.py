"""Executor metrics through Airflow's ``Stats`` (StatsD / OpenTelemetry, as the deployment configures).

Names are prefixed ``ecs_executor.`` (plus ``.<team>`` for team executors). Called only from the scheduler
thread in ``sync``; Stats calls are fire-and-forget, so they add no waiting.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ecs_executor.engine.context import COUNTERS

# Engine counters sent as counters (deltas since the last heartbeat).
ENGINE_COUNTERS = {key: name for key, name in COUNTERS.items() if name is not None}


class ExecutorMetrics:
    def __init__(self, team_name: str | None = None):
        from airflow.observability.stats import Stats

        self._stats_class = Stats
        self.prefix = "ecs_executor." + (f"{team_name}." if team_name else "")
        self._last: dict[str, int] = {}
        self._last_sweep: float | None = None
        self._counts: dict[str, int] = {}

    def _stats(self):  # type: ignore[no-untyped-def]
        return self._stats_class

    def incr(self, name: str, count: int = 1) -> None:
        """Counted locally; sent once per heartbeat by flush() (thousands of results can arrive at once)."""
        self._counts[name] = self._counts.get(name, 0) + count

    def flush(self) -> None:
        if self._counts:
            stats = self._stats()
            for name, count in self._counts.items():
                stats.incr(self.prefix + name, count)
            self._counts = {}

    def latency(self, name: str, since: float | None) -> None:
        """Milliseconds from a monotonic start time until now."""
        if since is not None:
            self._stats().timing(self.prefix + name, (time.monotonic() - since) * 1000.0)

    def gauges(self, *, pending: int, running: int) -> None:
        stats = self._stats()
        stats.gauge(self.prefix + "pending", pending)
        stats.gauge(self.prefix + "running", max(0, running))

    def engine_counters(
        self,
        counters: Mapping[str, int],
        last_sweep_seconds: float | None,
        run_task_rate: float | None = None,
        capacity_waiting: int | None = None,
    ) -> None:
        stats = self._stats()
        if run_task_rate is not None:
            stats.gauge(self.prefix + "run_task_rate", run_task_rate)
        if capacity_waiting is not None:
            stats.gauge(self.prefix + "capacity_waiting", capacity_waiting)
        for key, name in ENGINE_COUNTERS.items():
            value = counters.get(key, 0)
            delta = value - self._last.get(key, 0)
            if delta > 0:
                stats.incr(self.prefix + name, delta)
            self._last[key] = value
        if last_sweep_seconds is not None and last_sweep_seconds != self._last_sweep:
            self._last_sweep = last_sweep_seconds
            stats.timing(self.prefix + "describe_cycle", last_sweep_seconds * 1000.0)

    def event_lags(self, lags: list[float]) -> None:
        """Events mode: the largest and the median lag (ECS change -> result queued) of this heartbeat."""
        if lags:
            lags.sort()
            stats = self._stats()
            stats.timing(self.prefix + "events.lag_max", lags[-1] * 1000.0)
            stats.timing(self.prefix + "events.lag_median", lags[len(lags) // 2] * 1000.0)
