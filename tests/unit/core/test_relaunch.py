"""Pure: the relaunch policy's budgets and the one backoff formula."""

from __future__ import annotations

import random

from ecs_executor.core.relaunch import (
    RELAUNCH_CAP_SECONDS,
    RETRY_CAP_SECONDS,
    FailureKind,
    RelaunchPolicy,
    backoff_seconds,
)

POLICY = RelaunchPolicy(max_attempts=3, capacity_wait_seconds=300.0)


def test_backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() -> None:
    rng = random.Random(1)
    assert 1.0 <= backoff_seconds(1, 2.0, 60.0, rng) <= 2.0
    assert 4.0 <= backoff_seconds(3, 2.0, 60.0, rng) <= 8.0
    assert 30.0 <= backoff_seconds(10_000, 2.0, 60.0, rng) <= 60.0  # no overflow on huge n


def test_retries_of_one_call_stay_short() -> None:
    rng = random.Random(2)
    assert all(POLICY.retry_delay(n, rng) <= RETRY_CAP_SECONDS for n in range(1, 50))


def test_start_failures_spend_launch_attempts() -> None:
    first = POLICY.decide(FailureKind.START, 1, now=0.0, capacity_since=None, deadline=None)
    assert first.allowed and 1.0 <= first.delay <= 2.0
    last = POLICY.decide(FailureKind.START, 3, now=0.0, capacity_since=None, deadline=None)
    assert not last.allowed and "3 launch attempts" in last.why_not and last.kind == "gave_up"


def test_capacity_failures_spend_time_not_attempts() -> None:
    # Attempt 40 is far beyond max_attempts: capacity waits are bounded by time only.
    waiting = POLICY.decide(FailureKind.CAPACITY, 40, now=200.0, capacity_since=0.0, deadline=None)
    assert waiting.allowed and waiting.delay <= RELAUNCH_CAP_SECONDS / 2
    assert waiting.delay <= 100.0  # never past the end of the budget
    spent = POLICY.decide(FailureKind.CAPACITY, 41, now=300.0, capacity_since=0.0, deadline=None)
    assert not spent.allowed and "capacity_wait_seconds=300" in spent.why_not


def test_capacity_wait_never_sleeps_past_its_budget() -> None:
    near_end = POLICY.decide(FailureKind.CAPACITY, 20, now=299.5, capacity_since=0.0, deadline=None)
    assert near_end.allowed and near_end.delay <= 0.5


def test_nothing_is_relaunched_past_the_token_expiry() -> None:
    late = POLICY.decide(FailureKind.CAPACITY, 1, now=100.0, capacity_since=100.0, deadline=100.5)
    assert not late.allowed and late.kind == "expired" and "token expires" in late.why_not
