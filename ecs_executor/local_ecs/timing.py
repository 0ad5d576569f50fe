"""Timing profiles: which lifecycle states a task walks through, and how long it stays in each.

ECS documents the task lifecycle as PROVISIONING → PENDING → ACTIVATING → RUNNING → DEACTIVATING →
STOPPING → DEPROVISIONING → STOPPED ("Amazon ECS task lifecycle", Amazon ECS Developer Guide). Two
profiles, chosen with the ``timing`` knob:

* ``instant`` (the default): PROVISIONING → PENDING → RUNNING → DEPROVISIONING → STOPPED, about a quarter
  of a second in all, no jitter. Fast tests and benchmarks.
* ``fargate``: every documented state, each for its share of the time, with jitter: by default about
  3 s from RunTask to RUNNING and 2 s from the essential container's exit to STOPPED, scaled down from
  the ~10-60 s and ~10-40 s a real Fargate task takes, so tests stay short. The container's exit code
  (and desiredStatus STOPPED, stopCode, stoppedReason) shows from the moment it exits, while the task
  still walks DEACTIVATING → STOPPING → DEPROVISIONING.

A profile is a preset: setting ``timing`` writes the profile's ``provisioning_seconds`` (RunTask's answer
to the containers starting), ``deprovisioning_seconds`` (all containers stopped, or a task that never ran
given up, to STOPPED) and ``timing_jitter``; any of those given in the same call win over it, and
setting them later changes them alone. Each step takes its share of the total times a factor drawn
uniformly from [1 - jitter, 1 + jitter] (seeded by ``seed``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecs_executor.local_ecs.model import (
    ACTIVATING,
    DEACTIVATING,
    DEPROVISIONING,
    PENDING,
    PROVISIONING,
    STOPPING,
)

if TYPE_CHECKING:
    from ecs_executor.local_ecs.knobs import Knobs


@dataclass(frozen=True)
class Profile:
    """States walked on the way up and down, each with its share of the profile's total time."""

    #: From RunTask to the containers starting, PROVISIONING first; shares of ``provisioning_seconds``.
    start: tuple[tuple[str, float], ...]
    #: From the containers having stopped to STOPPED; shares of ``deprovisioning_seconds``. A walk
    #: without DEACTIVATING/STOPPING signals a stopped task's containers at once, while it is RUNNING.
    stop: tuple[tuple[str, float], ...]
    provisioning_seconds: float
    deprovisioning_seconds: float
    jitter: float

    def preset(self) -> dict[str, Any]:
        """The knob values setting this profile writes."""
        return {
            "provisioning_seconds": self.provisioning_seconds,
            "deprovisioning_seconds": self.deprovisioning_seconds,
            "timing_jitter": self.jitter,
        }

    @property
    def walks_down(self) -> bool:
        """Whether a stopped task passes DEACTIVATING and STOPPING before its containers are signalled."""
        return any(state == DEACTIVATING for state, _ in self.stop)


PROFILES: dict[str, Profile] = {
    "instant": Profile(
        start=((PROVISIONING, 0.0), (PENDING, 1.0)),
        stop=((DEPROVISIONING, 1.0),),
        provisioning_seconds=0.2,
        deprovisioning_seconds=0.05,
        jitter=0.0,
    ),
    # Shares are our choice (AWS publishes no per-state figures): the ENI in PROVISIONING, the image pull
    # in ACTIVATING ("Amazon ECS task lifecycle": "This is the state where Amazon ECS pulls the container
    # images, creates the containers, configures the task networking"), the ENI's detaching and deletion
    # in DEPROVISIONING.
    "fargate": Profile(
        start=((PROVISIONING, 0.4), (PENDING, 0.2), (ACTIVATING, 0.4)),
        stop=((DEACTIVATING, 0.2), (STOPPING, 0.3), (DEPROVISIONING, 0.5)),
        provisioning_seconds=3.0,
        deprovisioning_seconds=2.0,
        jitter=0.5,
    ),
}
TIMING_PROFILES = tuple(PROFILES)


class Timing:
    """Step durations for the runner, under the knobs' current profile, totals and jitter."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.rng = random.Random()
        self.reseed()

    def reseed(self) -> None:
        seed = self.knobs.seed
        self.rng.seed(None if seed is None else f"{seed}:timing")

    @property
    def profile(self) -> Profile:
        return PROFILES[self.knobs.timing]

    def _seconds(self, share: float, total: float) -> float:
        jitter = self.knobs.timing_jitter
        if share == 0 or total == 0:
            return 0.0
        if jitter == 0:
            return share * total
        return share * total * self.rng.uniform(1 - jitter, 1 + jitter)

    def start_walk(self) -> list[tuple[str, float]]:
        """(state, seconds in it) from PROVISIONING to the containers starting, drawn now."""
        total = self.knobs.provisioning_seconds
        return [(state, self._seconds(share, total)) for state, share in self.profile.start]

    def stop_seconds(self, state: str) -> float:
        """Seconds in one state of the way down (DEPROVISIONING in every profile)."""
        shares = dict(self.profile.stop)
        return self._seconds(shares.get(state, 0.0), self.knobs.deprovisioning_seconds)
