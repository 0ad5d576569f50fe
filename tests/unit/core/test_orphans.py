"""Which ECS tasks the orphan sweep stops, and when (pure: descriptions, DB rows and clocks as values)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from ecs_executor.core.orphans import (
    Candidate,
    GraceClock,
    TiRow,
    Verdict,
    candidate,
    decide,
    judge,
    stop_reason,
)
from ecs_executor.request.ecs_rules import MAX_STOP_REASON
from ecs_executor.request.run_task import TryIdentity, identity_tags

ARN = "arn:aws:ecs:us-east-1:123456789012:task/main/0123456789abcdef0123456789abcdef"
OTHER = "arn:aws:ecs:us-east-1:123456789012:task/main/fedcba9876543210fedcba9876543210"
KEY = ("dag", "t", "run", -1)
GRACE = 600.0
T0 = 1_000.0  # monotonic
WALL = 1_800_000_000.0  # epoch


def description(**changes: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskArn": ARN,
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "createdAt": WALL - 5,
        "containers": [{"name": "w", "lastStatus": "RUNNING"}],
        "tags": [{"key": "team", "value": "x"}, *identity_tags(TryIdentity("dag", "t", "run", 2))],
    }
    task.update(changes)
    return task


def cand(created_at: float | None = WALL, **kw: Any) -> Candidate:
    return Candidate(
        kw.get("arn", ARN), "main", kw.get("key", KEY), 1, created_at, kw.get("finishing", False)
    )


def test_a_description_is_read_into_a_candidate() -> None:
    c = candidate(description(), "main", "w")
    assert (c.arn, c.cluster, c.key, c.try_number, c.created_at, c.finishing) == (
        ARN,
        "main",
        KEY,
        2,
        WALL - 5,
        False,
    )
    assert set(c.tags) == {f"airflow:{k}" for k in ("dag_id", "task_id", "run_id", "try_number", "map_index")}
    # boto3 gives datetimes; the engine reads the wire's epoch seconds
    dated = candidate(description(createdAt=datetime.fromtimestamp(WALL, timezone.utc)), "main", "w")
    assert dated.created_at == WALL


@pytest.mark.parametrize(
    "changes",
    [
        {"desiredStatus": "STOPPED"},
        {"lastStatus": "DEACTIVATING"},
        {"lastStatus": "STOPPED"},
        {"containers": [{"name": "w", "lastStatus": "STOPPED", "exitCode": 0}]},
    ],
)
def test_tasks_ecs_is_already_stopping_are_finishing(changes: dict[str, Any]) -> None:
    c = candidate(description(**changes), "main", "w")
    assert c.finishing
    assert judge(c, TiRow("success", 1, ARN), tracked=False)[0] is Verdict.FINISHING


def test_a_task_without_our_tags_is_not_ours() -> None:
    c = candidate(description(tags=[{"key": "airflow:dag_id", "value": "dag"}]), "main", "w")
    assert c.key is None
    assert judge(c, None, tracked=False)[0] is Verdict.NOT_OURS


@pytest.mark.parametrize(
    ("row", "tracked", "expected"),
    [
        (TiRow("running", 1, ARN), False, Verdict.EXPECTED),
        (TiRow("queued", 1, ARN), False, Verdict.EXPECTED),
        (TiRow("restarting", 1, ARN), False, Verdict.EXPECTED),
        # Airflow no longer expects this ECS task
        (TiRow("success", 1, ARN), False, Verdict.UNKNOWN),
        (TiRow("failed", 1, ARN), False, Verdict.UNKNOWN),
        (TiRow("up_for_retry", 1, ARN), False, Verdict.UNKNOWN),
        (TiRow("deferred", 1, ARN), False, Verdict.UNKNOWN),
        (TiRow("up_for_reschedule", 1, ARN), False, Verdict.UNKNOWN),
        (TiRow("scheduled", 1, ARN), False, Verdict.UNKNOWN),
        (TiRow(None, 2, None), False, Verdict.UNKNOWN),  # reset or cleared
        (TiRow("running", 2, OTHER), False, Verdict.UNKNOWN),  # a later queueing runs elsewhere
        # a task instance live with another ARN: this one is not what Airflow waits for
        (TiRow("queued", 1, OTHER), False, Verdict.UNKNOWN),
        # this scheduler's own, whatever the DB says (its launch result may not be stored yet)
        (TiRow("queued", 1, None), True, Verdict.TRACKED),
        (None, True, Verdict.TRACKED),
        # no task instance: a callback, a deleted run, or another Airflow's task: left alone
        (None, False, Verdict.NOT_OURS),
    ],
)
def test_which_tasks_airflow_still_expects(row: TiRow | None, tracked: bool, expected: Verdict) -> None:
    assert judge(cand(), row, tracked)[0] is expected


@pytest.mark.parametrize(
    ("queued_by_live_job", "own_job", "expected"),
    [
        (None, 9, Verdict.UNKNOWN),  # queued by a dead scheduler, or reset: anyone's to stop
        (9, 9, Verdict.UNKNOWN),  # queued by this scheduler, which does not track it
        (7, 9, Verdict.OTHERS),  # another live scheduler queued it: it may still track the task
        (7, None, Verdict.OTHERS),  # this scheduler's job unknown: every live job is another's
    ],
)
def test_a_live_scheduler_judges_the_tasks_of_the_task_instances_it_queued(
    queued_by_live_job: int | None, own_job: int | None, expected: Verdict
) -> None:
    row = TiRow("success", 1, ARN, queued_by_live_job)
    assert judge(cand(), row, tracked=False, own_job=own_job)[0] is expected
    # a task instance Airflow expects stays expected, whoever queued it
    assert judge(cand(), TiRow("running", 1, ARN, 7), tracked=False, own_job=9)[0] is Verdict.EXPECTED


def test_an_unknown_task_is_stopped_only_after_the_grace_period_of_watching() -> None:
    clock, rows = GraceClock(), {KEY: TiRow("success", 1, ARN)}
    old = WALL - 10 * GRACE  # created long ago
    assert decide([cand(old)], rows, [], clock, now=T0, wall_now=WALL, grace=GRACE) == []
    assert decide([cand(old)], rows, [], clock, now=T0 + GRACE - 1, wall_now=WALL, grace=GRACE) == []
    (stopped,) = decide([cand(old)], rows, [], clock, now=T0 + GRACE, wall_now=WALL, grace=GRACE)
    assert stopped[0].arn == ARN and "success at try 1" in stopped[1]


def test_a_task_created_within_the_grace_period_survives_however_long_it_was_watched() -> None:
    """Launched by another scheduler a moment ago, its ARN not stored yet: it must live."""
    clock, rows = GraceClock(), {KEY: TiRow("queued", 1, None)}
    young = cand(created_at=WALL)
    decide([young], rows, [], clock, now=T0 - 5 * GRACE, wall_now=WALL, grace=GRACE)  # seen long ago
    assert decide([young], rows, [], clock, now=T0, wall_now=WALL + GRACE - 1, grace=GRACE) == []
    assert len(decide([young], rows, [], clock, now=T0, wall_now=WALL + GRACE, grace=GRACE)) == 1


def test_being_known_once_restarts_the_grace_period() -> None:
    clock = GraceClock()
    old = cand(WALL - 10 * GRACE)
    unknown, known = {KEY: TiRow("queued", 1, None)}, {KEY: TiRow("running", 1, ARN)}
    decide([old], unknown, [], clock, now=T0, wall_now=WALL, grace=GRACE)
    decide([old], known, [], clock, now=T0 + GRACE / 2, wall_now=WALL, grace=GRACE)  # ARN stored
    assert decide([old], unknown, [], clock, now=T0 + GRACE, wall_now=WALL, grace=GRACE) == []
    assert decide([old], unknown, [ARN], clock, now=T0 + 3 * GRACE, wall_now=WALL, grace=GRACE) == []
    assert decide([old], unknown, [], clock, now=T0 + 4 * GRACE, wall_now=WALL, grace=GRACE) == []
    assert len(decide([old], unknown, [], clock, now=T0 + 5 * GRACE, wall_now=WALL, grace=GRACE)) == 1


def test_tasks_gone_from_the_listing_are_forgotten() -> None:
    clock = GraceClock()
    decide([cand()], {}, [], clock, now=T0, wall_now=WALL, grace=GRACE)
    assert ARN not in clock.first_unknown  # no task instance: not ours, never timed
    decide([cand()], {KEY: TiRow("success", 1, ARN)}, [], clock, now=T0, wall_now=WALL, grace=GRACE)
    clock.keep_only([OTHER])
    assert clock.first_unknown == {}


def test_the_stop_reason_fits_ecs_and_says_why() -> None:
    reason = stop_reason("task instance is success at try 1, with this task " + "x" * 400, GRACE)
    assert len(reason) == MAX_STOP_REASON
    assert reason.startswith("Airflow ECS executor: orphaned task, tracked by no scheduler for 600s")
