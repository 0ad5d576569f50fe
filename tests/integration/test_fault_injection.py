"""Fault injection: the executor driven like the scheduler drives it, against LocalEcs in pretend mode.

LocalEcs honours ``clientToken`` like real ECS and injects throttling, 5xx, connection resets, replies
lost after the call was applied, latency spikes, RunTask ``failures[]`` and ``TaskFailedToStart``. Every
test counts the ECS tasks that really exist (ListTasks by startedBy + DescribeTasks tags) so a duplicate
launch or an orphan cannot hide behind a correct-looking event buffer.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from airflow.utils.state import TaskInstanceState

from ecs_executor.executor import MAX_ENGINE_RESTARTS
from ecs_executor.local_ecs import LocalEcs
from tests.conftest import Driver, make_workload
from tests.support.executor_view import arns, engine_of, event_logs, kill_engine, view
from tests.support.fault_helpers import (
    ExpiringCredentialsProxy,
    FakeTI,
    ecs_census,
    tasks_per_try,
    terminal_events,
    try_id_of_key,
    wait_for,
)

SUCCESS, FAILED, RUNNING = TaskInstanceState.SUCCESS, TaskInstanceState.FAILED, TaskInstanceState.RUNNING
NO_FAULTS: dict[str, Any] = {
    "throttle_rate": 0.0,
    "server_error_rate": 0.0,
    "reset_rate": 0.0,
    "lost_reply_rate": 0.0,
    "latency_spike_rate": 0.0,
    "latency_ms": 0.0,
    "run_task_failure_rate": 0.0,
    "fail_to_start_rate": 0.0,
    "fault_operations": None,
}


def queue(executor: Any, workloads: list[Any]) -> None:
    for w in workloads:
        executor.queue_workload(w, session=None)


def launched_all(executor: Any, workloads: list[Any]) -> bool:
    """Whether the executor knows each of these tries' ECS task."""
    known = arns(executor)
    return all(w.ti.key in known for w in workloads)


def assert_one_terminal_state_each(driver: Driver, keys: list[Any]) -> None:
    terminal = terminal_events(driver)
    missing = [k.task_id for k in keys if not terminal.get(k)]
    twice = {k.task_id: terminal[k] for k in keys if len(terminal.get(k, [])) > 1}
    assert not missing, f"{len(missing)} tasks never reached a terminal state: {missing[:10]}"
    assert not twice, f"tasks reported more than once: {twice}"


# ---- 1. a thousand tasks through throttling, 5xx, resets and lost replies ---------------------------

N_TASKS = 1000
CHAOS: dict[str, Any] = {
    "throttle_rate": 0.14,  # first roll: ~14 % of calls
    "server_error_rate": 0.16,  # rolled after throttling: ~13.8 % of calls
    "reset_rate": 0.03,  # ~2.2 % of calls: not applied, no answer
    "lost_reply_rate": 0.09,  # applied, then no answer: ~6.3 % of calls
    "latency_spike_rate": 0.03,
    "latency_spike_ms": 400.0,
    "latency_ms": 2.0,
    "fail_to_start_rate": 0.02,  # a few relaunches, so "one ECS task per launch attempt" is exercised
    "pretend_seconds": 2.0,
    "seed": 20240611,
}
TARGETS = {"throttle": 0.10, "server_error": 0.10, "lost_reply": 0.05}


def wait_until_finished(driver: Driver, count: int, timeout: float, progress: Callable[[], str]) -> None:
    """Driver.until with a short failure message (the default one lists every task)."""
    try:
        driver.until(lambda: len(driver.final_states()) >= count, timeout=timeout, interval=0.1)
    except AssertionError:
        done = len(driver.final_states())
        raise AssertionError(
            f"{done} tasks finished, {count} expected within {timeout:.0f}s; {progress()}"
        ) from None


def test_thousand_tasks_under_chaos_each_reach_one_terminal_state_without_duplicates(
    local_ecs, point_at, executors, tmp_path
):
    point_at(local_ecs.url, run_task_rate="200", poll_interval="0.5", max_run_task_attempts="3")
    executor = executors(parallelism=N_TASKS + 100)
    local_ecs.configure(**CHAOS)  # after start(): the start-up health check is not under test here
    driver = Driver(executor)
    workloads = [make_workload(f"t{i:04d}") for i in range(N_TASKS)]
    keys = [w.ti.key for w in workloads]

    def progress() -> str:
        stats = local_ecs.stats()
        counters = view(executor).counters
        return f"engine counters {dict(counters)}; ECS calls {stats['calls']}, faults {stats['faults']}"

    started = time.monotonic()
    queue(executor, workloads)
    try:
        # Every heartbeat below is the scheduler's: an exception escaping heartbeat() fails the test here.
        wait_until_finished(driver, N_TASKS // 4, 60, progress)  # fails fast if launching stalls
        wait_until_finished(driver, N_TASKS, 150, progress)
    finally:  # the figures are written even when the run fails
        wall = time.monotonic() - started
        stats = local_ecs.stats()
        local_ecs.configure(**NO_FAULTS)  # the census below must not be disturbed
        census = ecs_census(local_ecs.url)
        per_try = tasks_per_try(census)
        # Launch attempts per try: the first, plus one per relaunch the task's event log announced.
        expected = {try_id_of_key(k): 1 + len(retry_events(executor, k.task_id)) for k in keys}
        duplicated = {t: n - expected.get(t, 0) for t, n in per_try.items() if n > expected.get(t, 0)}
        missing_ecs = [t for t, n in expected.items() if per_try.get(t, 0) < n]
        terminal = terminal_events(driver)
        states = driver.final_states()
        failed = [k for k in keys if states.get(k) == FAILED]
        total_calls = sum(stats["calls"].values())
        faults = stats["faults"]
        ratios = {kind: faults.get(kind, 0) / total_calls for kind in TARGETS}
        snapshot = view(executor)
        figures = {
            "tasks": N_TASKS,
            "succeeded": sum(1 for k in keys if states.get(k) == SUCCESS),
            "failed": len(failed),
            "lost": sum(1 for k in keys if not terminal.get(k)),
            "reported_twice": sum(1 for k in keys if len(terminal.get(k, [])) > 1),
            "duplicated_ecs_tasks": sum(duplicated.values()),
            "launch_attempts_without_ecs_task": len(missing_ecs),
            "ecs_tasks": len(census),
            "launch_attempts": sum(expected.values()),
            "wall_seconds": round(wall, 1),
            "ecs_calls": stats["calls"],
            "ecs_calls_total": total_calls,
            "faults_injected": faults,
            "fault_share_of_calls": {k: round(v, 4) for k, v in ratios.items()},
            "run_task_answered_from_client_token": stats["run_task_deduplicated"],
            "engine_counters": dict(snapshot.counters),
            "engine_restarts": snapshot.engine_restarts,
            "heartbeats": len(driver.heartbeat_seconds),
            "max_heartbeat_ms": round(1000 * max(driver.heartbeat_seconds), 1),
        }
        out = tmp_path / "fault_injection_figures.json"
        out.write_text(json.dumps(figures, indent=2, sort_keys=True))
        print(f"\nfault injection figures ({out}):\n{json.dumps(figures, indent=2, sort_keys=True)}")

    assert_one_terminal_state_each(driver, keys)
    assert not duplicated, f"ECS tasks beyond one per launch attempt: {list(duplicated.items())[:10]}"
    assert not missing_ecs, f"launch attempts without an ECS task: {missing_ecs[:10]}"
    assert not [t for t in census if t.desired_status == "RUNNING"], "ECS tasks left running"
    for k in failed:  # only a try whose every launch attempt failed to start may fail
        assert "gave up after 3 launch attempts" in failure_reason(executor, k.task_id)
    assert snapshot.engine_crash is None and snapshot.engine_restarts == 0
    for kind, target in TARGETS.items():
        assert ratios[kind] >= target, f"only {ratios[kind]:.1%} {kind} faults injected (target {target:.0%})"
    assert faults.get("reset", 0) > 0 and faults.get("latency_spike", 0) > 0
    assert faults.get("fail_to_start", 0) > 0 and snapshot.counters["relaunches"] > 0
    # Lost RunTask replies were retried with the same clientToken and answered without a new task.
    assert stats["run_task_deduplicated"] > 0


# ---- 2. transient launch failures: relaunched with backoff; a crash is never relaunched ----------------


def retry_events(executor: Any, task_id: str) -> list[str]:
    return [extra for event, extra in event_logs(executor, task_id) if event == "ECS launch retry"]


def failure_reason(executor: Any, task_id: str) -> str:
    reasons = [extra for event, extra in event_logs(executor, task_id) if event == "ECS task failed"]
    assert len(reasons) == 1, reasons
    return reasons[0]


def assert_backoff_grows(retries: list[str]) -> None:
    """Relaunch delays (core/relaunch.py backoff_seconds): 1-2 s before attempt 2, 2-4 s before attempt 3."""
    for n, text in enumerate(retries, start=2):
        assert f"launch attempt {n} in " in text, text
        delay = int(text.rsplit(" in ", 1)[1].rstrip("s"))
        assert 2 ** (n - 2) <= delay <= 2 ** (n - 1), text


@pytest.fixture
def relaunching(local_ecs: LocalEcs, point_at: Callable[..., None], executors: Callable[..., Any]) -> Any:
    """A started executor allowed three launch attempts and four seconds' wait for capacity."""
    point_at(local_ecs.url, max_run_task_attempts="3", capacity_wait_seconds="4")
    return executors()


def assert_ecs_tasks_and_relaunches(
    executor: Any, ecs: LocalEcs, workload: Any, tasks: int, relaunches: int
) -> None:
    """One ECS task per launch attempt that was placed, and the relaunches the engine counted for them."""
    assert tasks_per_try(ecs_census(ecs.url))[try_id_of_key(workload.ti.key)] == tasks
    assert view(executor).counters["relaunches"] == relaunches


def test_a_worker_killed_for_memory_fails_and_is_never_relaunched(local_ecs, relaunching):
    """A worker that ran and was OOM-killed (exit 137) is FAILED, never relaunched."""
    executor, driver = relaunching, Driver(relaunching)
    oom = make_workload("oom-killed")
    queue(executor, [oom])
    driver.until(lambda: oom.ti.key in arns(executor))
    assert local_ecs.finish_task(arns(executor)[oom.ti.key], 137)
    driver.until(lambda: oom.ti.key in driver.final_states())
    assert_one_terminal_state_each(driver, [oom.ti.key])
    assert driver.final_states()[oom.ti.key] == FAILED
    assert "exited with code 137" in failure_reason(executor, "oom-killed")
    assert retry_events(executor, "oom-killed") == []
    assert_ecs_tasks_and_relaunches(executor, local_ecs, oom, tasks=1, relaunches=0)


def test_a_capacity_shortage_is_waited_out_for_capacity_wait_seconds_then_given_up(local_ecs, relaunching):
    """RunTask failures[] RESOURCE:MEMORY on every attempt: waited out for capacity_wait_seconds (not
    max_run_task_attempts), then given up."""
    executor, driver = relaunching, Driver(relaunching)
    local_ecs.configure(run_task_failure_rate=1.0, run_task_failure_reason="RESOURCE:MEMORY")
    placement_gives_up = make_workload("placement-gives-up")
    queue(executor, [placement_gives_up])
    driver.until(lambda: placement_gives_up.ti.key in driver.final_states(), timeout=30)
    assert_one_terminal_state_each(driver, [placement_gives_up.ti.key])

    gave_up = failure_reason(executor, "placement-gives-up")
    assert driver.final_states()[placement_gives_up.ti.key] == FAILED
    assert "RESOURCE:MEMORY" in gave_up and "capacity_wait_seconds=4" in gave_up
    placement_retries = len(retry_events(executor, "placement-gives-up"))
    assert placement_retries >= 2
    # No ECS task for refused placements.
    assert_ecs_tasks_and_relaunches(executor, local_ecs, placement_gives_up, 0, relaunches=placement_retries)


def test_a_launch_refused_for_capacity_once_is_placed_at_attempt_two(local_ecs, relaunching):
    executor, driver = relaunching, Driver(relaunching)
    local_ecs.configure(run_task_failure_rate=1.0, run_task_failure_reason="RESOURCE:MEMORY")
    placement_recovers = make_workload("placement-recovers")
    queue(executor, [placement_recovers])
    driver.until(lambda: bool(retry_events(executor, "placement-recovers")))
    local_ecs.configure(run_task_failure_rate=0.0)
    driver.until(lambda: placement_recovers.ti.key in arns(executor))
    driver.until(partial(finish_when_launched, executor, local_ecs, placement_recovers.ti.key))
    driver.until(lambda: placement_recovers.ti.key in driver.final_states())
    assert_one_terminal_state_each(driver, [placement_recovers.ti.key])

    assert driver.final_states()[placement_recovers.ti.key] == SUCCESS
    (retry,) = retry_events(executor, "placement-recovers")
    assert "RESOURCE:MEMORY" in retry
    assert (
        "ECS task launched",
        f"{executor_arn(driver, placement_recovers)} (launch attempt 2)",
    ) in event_logs(executor, "placement-recovers")
    assert_ecs_tasks_and_relaunches(executor, local_ecs, placement_recovers, tasks=1, relaunches=1)


PULL_ERROR = "CannotPullContainerError: pull image manifest has been retried 7 time(s): i/o timeout"


def test_a_task_failing_to_start_every_time_is_given_up_after_max_attempts_with_backoff(
    local_ecs, relaunching
):
    """TaskFailedToStart (image pull) on every attempt."""
    executor, driver = relaunching, Driver(relaunching)
    local_ecs.configure(fail_to_start_rate=1.0, fail_to_start_reason=PULL_ERROR)
    start_gives_up = make_workload("start-gives-up")
    queue(executor, [start_gives_up])
    driver.until(lambda: start_gives_up.ti.key in driver.final_states(), timeout=30)
    assert_one_terminal_state_each(driver, [start_gives_up.ti.key])

    gave_up = failure_reason(executor, "start-gives-up")
    assert driver.final_states()[start_gives_up.ti.key] == FAILED
    assert "TaskFailedToStart" in gave_up and "CannotPullContainerError" in gave_up
    assert "gave up after 3 launch attempts" in gave_up
    assert_backoff_grows(retry_events(executor, "start-gives-up"))
    assert len(retry_events(executor, "start-gives-up")) == 2
    # One ECS task per launch attempt, each stopped for failing to start.
    assert_ecs_tasks_and_relaunches(executor, local_ecs, start_gives_up, tasks=3, relaunches=2)
    census = ecs_census(local_ecs.url)
    stops = Counter(t.stop_code for t in census if t.try_id == try_id_of_key(start_gives_up.ti.key))
    assert stops == {"TaskFailedToStart": 3}


def test_a_task_failing_to_start_once_runs_at_attempt_two(local_ecs, relaunching):
    executor, driver = relaunching, Driver(relaunching)
    local_ecs.configure(fail_to_start_rate=1.0, fail_to_start_reason=PULL_ERROR)
    start_recovers = make_workload("start-recovers")
    queue(executor, [start_recovers])
    driver.until(lambda: bool(retry_events(executor, "start-recovers")))
    local_ecs.configure(fail_to_start_rate=0.0)
    driver.until(partial(finish_when_launched, executor, local_ecs, start_recovers.ti.key))
    driver.until(lambda: start_recovers.ti.key in driver.final_states())
    assert_one_terminal_state_each(driver, [start_recovers.ti.key])

    assert driver.final_states()[start_recovers.ti.key] == SUCCESS
    assert len(retry_events(executor, "start-recovers")) == 1
    assert_ecs_tasks_and_relaunches(executor, local_ecs, start_recovers, tasks=2, relaunches=1)


def finish_when_launched(executor: Any, ecs: LocalEcs, key: Any, exit_code: int = 0) -> bool:
    """True once the try's current ECS task (as the executor knows it) was made to exit."""
    arn = arns(executor).get(key)
    return bool(arn and ecs.finish_task(arn, exit_code))


def executor_arn(driver: Driver, workload: Any) -> str:
    """The ARN the scheduler would store as external_executor_id (the last RUNNING event's info)."""
    return [info for state, info in driver.events[workload.ti.key] if state == RUNNING][-1]


# ---- 3. permanent errors fail at once ----------------------------------------------------------------


def test_permanent_errors_fail_at_once_without_consuming_retries(local_ecs, point_at, executors):
    point_at(
        local_ecs.url,
        task_definition="no-such-family",
        check_health_on_startup="False",
        max_run_task_attempts="5",
    )
    executor = executors()
    driver = Driver(executor)
    workloads = [make_workload(f"missing-td-{i}") for i in range(3)]
    queue(executor, workloads)
    driver.until(lambda: len(driver.final_states()) == 3)
    assert_one_terminal_state_each(driver, [w.ti.key for w in workloads])
    for w in workloads:
        assert driver.final_states()[w.ti.key] == FAILED
        reason = failure_reason(executor, w.ti.task_id)
        assert "ClientException" in reason and "no-such-family" in reason
        assert retry_events(executor, w.ti.task_id) == []
    counters = view(executor).counters
    assert (
        counters["run_task_calls"] == 3 and counters["run_task_retries"] == 0 and counters["relaunches"] == 0
    )
    assert local_ecs.stats()["calls"]["RunTask"] == 3  # not retried by botocore either
    assert ecs_census(local_ecs.url) == []


# ---- 4. scheduler crash: a new executor adopts every ECS task by ARN ---------------------------------


def test_new_executor_adopts_every_task_after_a_crash_without_relaunching(local_ecs, point_at, executors):
    """The first executor crashes: its engine dies mid-flight and end() is never called.

    A crash is the harder case for adoption (end() is covered by test_executor_moto): no last
    DescribeTasks sweep, and whatever the dead engine learnt but the scheduler never processed is lost,
    so the new executor must recover every outcome from the ARNs stored in the TIs alone.
    """
    point_at(local_ecs.url)
    first = executors()
    d1 = Driver(first)
    done_before = [make_workload(f"done-before-{i}") for i in range(4)]  # finish before the crash
    done_during = [make_workload(f"done-during-{i}") for i in range(4)]  # finish while no scheduler runs
    still_running = [make_workload(f"running-{i}") for i in range(4)]  # finish after adoption
    queue(first, done_before + done_during + still_running)
    running_wave = done_before + done_during + still_running
    d1.until(lambda: launched_all(first, running_wave))
    wait_for(lambda: {t.last_status for t in ecs_census(local_ecs.url)} == {"RUNNING"})
    local_ecs.configure(provisioning_seconds=5.0)  # the next wave stays PENDING across the crash
    pending = [make_workload(f"pending-{i}") for i in range(4)]
    queue(first, pending)
    d1.until(lambda: launched_all(first, pending))
    never_launched = make_workload("never-launched")  # queued in the scheduler, no ECS task yet
    all_launched = running_wave + pending

    # What the scheduler stored: external_executor_id is the ARN reported with the RUNNING event.
    tis = [FakeTI(w.ti.key, executor_arn(d1, w)) for w in all_launched] + [
        FakeTI(never_launched.ti.key, None)
    ]
    exit_codes = dict(zip([w.ti.key for w in done_before], [0, 0, 1, 137], strict=True))
    for w in done_before:
        assert local_ecs.finish_task(executor_arn(d1, w), exit_codes[w.ti.key])
    kill_engine(first, "stop")  # the scheduler process dies: no more heartbeats, no end()
    ecs_tasks_at_crash = local_ecs.stats()["tasks_started"]
    assert ecs_tasks_at_crash == len(all_launched)
    exit_codes.update(zip([w.ti.key for w in done_during], [0, 2, 0, 137], strict=True))
    for w in done_during:
        assert local_ecs.finish_task(executor_arn(d1, w), exit_codes[w.ti.key])
    assert Counter(t.last_status for t in ecs_census(local_ecs.url))["PENDING"] == len(pending)

    second = executors()
    not_adopted = second.try_adopt_task_instances(tis)
    assert [ti.key for ti in not_adopted] == [never_launched.ti.key]  # no ARN: the scheduler resets it
    assert second.running == {w.ti.key for w in all_launched}  # 100 % of the TIs with an ARN
    d2 = Driver(second)
    finished = done_before + done_during
    d2.until(lambda: all(w.ti.key in d2.final_states() for w in finished))
    wait_for(
        lambda: all(t.last_status == "RUNNING" for t in ecs_census(local_ecs.url) if t.stop_code is None)
    )
    exit_codes.update(zip([w.ti.key for w in still_running + pending], [0, 3, 0, 0, 0, 0, 1, 0], strict=True))
    for w in still_running + pending:
        assert local_ecs.finish_task(executor_arn(d1, w), exit_codes[w.ti.key])
    d2.until(lambda: len(d2.final_states()) == len(all_launched))

    assert_one_terminal_state_each(d2, [w.ti.key for w in all_launched])
    for w in all_launched:
        expected = SUCCESS if exit_codes[w.ti.key] == 0 else FAILED
        assert d2.final_states()[w.ti.key] == expected, w.ti.task_id
        if expected == FAILED:
            assert f"exited with code {exit_codes[w.ti.key]}" in failure_reason(second, w.ti.task_id)
    # Nothing was relaunched: the new executor never called RunTask and ECS holds one task per try.
    assert view(second).counters["run_task_calls"] == 0
    assert local_ecs.stats()["tasks_started"] == ecs_tasks_at_crash
    assert set(tasks_per_try(ecs_census(local_ecs.url)).values()) == {1}
    assert second.running == set()


# ---- 5. credentials expire mid-run -------------------------------------------------------------------


def test_expired_credentials_are_refreshed_and_no_task_fails(local_ecs, point_at, executors, monkeypatch):
    proxy = ExpiringCredentialsProxy(local_ecs.url).start()
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOLDKEY0000000000")
        point_at(proxy.url, run_task_rate="40", run_task_burst="10")
        local_ecs.configure(latency_ms=150.0, pretend_seconds=1.0)
        executor = executors()
        driver = Driver(executor)
        workloads = [make_workload(f"t{i}") for i in range(80)]
        queue(executor, workloads)
        driver.until(lambda: len(arns(executor)) >= 20)
        # The session token expires: the old key is refused from now on; the credential chain has the new one.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANEWKEY0000000000")
        proxy.expire("AKIAOLDKEY0000000000")
        driver.until(lambda: len(driver.final_states()) == len(workloads), timeout=90)
    finally:
        proxy.stop()

    assert_one_terminal_state_each(driver, [w.ti.key for w in workloads])
    failed = {
        k.task_id: failure_reason(executor, k.task_id)
        for k, s in driver.final_states().items()
        if s != SUCCESS
    }
    assert failed == {}
    assert view(executor).counters["credential_refreshes"] >= 1
    assert proxy.rejected["AKIAOLDKEY0000000000"] >= 1  # calls really were refused...
    assert proxy.forwarded["AKIANEWKEY0000000000"] >= 1  # ...until the client was rebuilt with the new key
    assert set(tasks_per_try(ecs_census(local_ecs.url)).values()) == {1}


# ---- 6. the engine thread dies -----------------------------------------------------------------------


def test_dead_engine_is_restarted_at_the_next_heartbeat_without_duplicates(local_ecs, point_at, executors):
    point_at(local_ecs.url)
    executor = executors()
    driver = Driver(executor)
    tracked = [make_workload(f"tracked-{i}") for i in range(5)]
    queue(executor, tracked)
    driver.until(lambda: launched_all(executor, tracked))
    # The next wave's RunTask calls are inside ECS (slow answers) when the engine dies: ECS applies
    # them, the dead engine never sees the replies.
    local_ecs.configure(latency_ms=800.0)
    in_flight = [make_workload(f"in-flight-{i}") for i in range(5)]
    queue(executor, in_flight)
    driver.beat()
    wait_for(lambda: local_ecs.stats()["calls"].get("RunTask", 0) >= 10)
    dead = kill_engine(executor, "crash")
    assert isinstance(dead.crash, RuntimeError)
    wait_for(lambda: local_ecs.stats()["tasks_started"] == 10)  # ECS applied the orphaned launches
    local_ecs.configure(latency_ms=0.0)

    driver.beat()  # one heartbeat notices and restarts
    snapshot = view(executor)
    assert engine_of(executor) is not dead and snapshot.engine_alive and snapshot.engine_restarts == 1
    wait_for(lambda: view(executor).tracked == 10)  # 5 re-adopted by ARN + 5 launches re-sent
    driver.until(lambda: launched_all(executor, in_flight))
    for w in tracked + in_flight:
        assert local_ecs.finish_task(arns(executor)[w.ti.key], 0)
    keys = [w.ti.key for w in tracked + in_flight]
    driver.until(lambda: len(driver.final_states()) == len(keys))
    assert_one_terminal_state_each(driver, keys)
    assert set(driver.final_states().values()) == {SUCCESS}
    # The re-sent launches reused their clientToken: ECS answered them without starting a second task.
    assert local_ecs.stats()["run_task_deduplicated"] >= len(in_flight)
    assert local_ecs.stats()["tasks_started"] == 10
    assert set(tasks_per_try(ecs_census(local_ecs.url)).values()) == {1}


def test_engine_dying_too_often_stops_the_scheduler_with_a_clear_message(local_ecs, point_at, executors):
    point_at(local_ecs.url)
    executor = executors()
    driver = Driver(executor)
    w = make_workload("survivor")
    queue(executor, [w])
    driver.until(lambda: w.ti.key in arns(executor))
    for n in range(1, MAX_ENGINE_RESTARTS + 1):
        dead = kill_engine(executor, "crash" if n % 2 else "stop")
        driver.beat()
        assert engine_of(executor) is not dead and view(executor).engine_restarts == n
        wait_for(lambda: view(executor).tracked == 1)  # the running task is tracked again
    kill_engine(executor, "crash")
    with pytest.raises(RuntimeError) as err:
        executor.heartbeat()
    message = str(err.value)
    assert f"died {MAX_ENGINE_RESTARTS + 1} times within 600s" in message
    assert "injected engine crash" in message and "refusing to continue" in message


# ---- 7. revoke while RunTask is in flight ------------------------------------------------------------


def test_revoke_while_run_task_is_in_flight_leaves_no_orphan(local_ecs, point_at, executors):
    point_at(local_ecs.url)
    executor = executors()
    driver = Driver(executor)
    local_ecs.configure(latency_ms=1500.0)
    w = make_workload("revoked")
    queue(executor, [w])
    driver.beat()
    wait_for(lambda: local_ecs.stats()["calls"].get("RunTask", 0) == 1)  # inside ECS, not answered yet
    executor.revoke_task(ti=FakeTI(w.ti.key, None))
    assert w.ti.key not in executor.running
    local_ecs.configure(latency_ms=0.0)
    wait_for(
        lambda: (c := ecs_census(local_ecs.url)) and all(t.desired_status == "STOPPED" for t in c), timeout=15
    )
    (task,) = ecs_census(local_ecs.url)
    assert task.try_id == try_id_of_key(w.ti.key)
    assert task.stop_code == "UserInitiated" and "revoked" in (task.stopped_reason or "")
    for _ in range(5):
        driver.beat()
    assert w.ti.key not in driver.events  # revoke_task never touches the event buffer
    assert view(executor).tracked == 0


def launch_with_lost_replies(local_ecs: LocalEcs, executor: Any, name: str) -> tuple[Driver, Any]:
    """One launch whose RunTask is applied while every reply is lost, until the engine retries it."""
    driver = Driver(executor)
    local_ecs.configure(lost_reply_rate=1.0, fault_operations=["RunTask"])
    w = make_workload(name)
    queue(executor, [w])
    driver.beat()
    wait_for(lambda: view(executor).counters["run_task_retries"] >= 1, timeout=60)  # botocore gave up
    return driver, w


def test_revoke_while_run_task_outcome_is_unknown_leaves_no_orphan(local_ecs, point_at, executors):
    """RunTask is applied but every reply is lost (botocore gives up, the engine will retry); the task is
    revoked meanwhile. The ECS task that exists must still be found and stopped."""
    point_at(local_ecs.url)
    executor = executors()
    driver, w = launch_with_lost_replies(local_ecs, executor, "revoked-unknown")
    assert local_ecs.stats()["tasks_started"] == 1  # applied once, every retry answered from the token
    executor.revoke_task(ti=FakeTI(w.ti.key, None))
    local_ecs.configure(lost_reply_rate=0.0)
    driver.until(lambda: view(executor).tracked == 0, timeout=15)
    time.sleep(3)  # the engine's own retry delay is under 1 s: give it every chance
    census = ecs_census(local_ecs.url)
    assert [t for t in census if t.desired_status == "RUNNING"] == [], "orphan ECS task left running"


@pytest.mark.parametrize("failure", ["placement", "failed_to_start"])
def test_engine_dying_during_a_relaunch_backoff_does_not_lose_the_task(
    local_ecs, point_at, executors, failure
):
    """The engine dies while a try waits for its next launch attempt (core.relaunch.backoff_seconds)."""
    point_at(local_ecs.url, max_run_task_attempts="3")
    executor = executors()
    driver = Driver(executor)
    if failure == "placement":
        local_ecs.configure(run_task_failure_rate=1.0, run_task_failure_reason="RESOURCE:MEMORY")
    else:
        local_ecs.configure(fail_to_start_rate=1.0, fail_to_start_reason="CannotPullContainerError: timeout")
    w = make_workload(f"backoff-{failure}")
    queue(executor, [w])
    driver.until(lambda: bool(retry_events(executor, w.ti.task_id)))  # attempt 2 is 1-2 s away
    kill_engine(executor, "crash")
    local_ecs.configure(run_task_failure_rate=0.0, fail_to_start_rate=0.0)
    driver.beat()
    assert view(executor).engine_alive
    # The try still has launch attempts left: it must be launched again, run, and be reported once.
    try:
        driver.until(partial(finish_when_launched, executor, local_ecs, w.ti.key), timeout=12)
    except AssertionError:
        snapshot = view(executor)
        raise AssertionError(
            f"the try was not launched again after the restart: events {driver.summary()}, "
            f"in executor.running: {w.ti.key in executor.running}, pending: {w.ti.key in snapshot.pending}, "
            f"ECS task: {snapshot.arn(w.ti.key)}, engine tracks {snapshot.tracked} tasks, "
            f"task log: {snapshot.events_for(w.ti.task_id)}"
        ) from None
    driver.until(lambda: w.ti.key in driver.final_states())
    assert_one_terminal_state_each(driver, [w.ti.key])
    assert driver.final_states()[w.ti.key] == SUCCESS, event_logs(executor, w.ti.task_id)


def test_settling_a_revoked_launch_outlasts_throttling(local_ecs, point_at, executors):
    """As above, but once the task is revoked ECS throttles nearly every RunTask and StopTask (one token,
    then one more every 30 s: longer than five retries with backoff last). Throttles are not failures:
    the engine keeps settling until the task is stopped."""
    point_at(local_ecs.url)
    executor = executors()
    _, w = launch_with_lost_replies(local_ecs, executor, "revoked-throttled")
    local_ecs.configure(
        lost_reply_rate=0.0, throttle=True, throttle_overrides={"cluster_modify": [1, 1 / 30]}
    )
    executor.revoke_task(ti=FakeTI(w.ti.key, None))

    def stopped() -> bool:
        census = ecs_census(local_ecs.url)
        return bool(census) and all(t.desired_status == "STOPPED" for t in census)

    wait_for(stopped, timeout=120)
    assert local_ecs.stats()["faults"].get("bucket_throttle", 0) >= 1  # it really was throttled
