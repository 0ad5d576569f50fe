"""executor.py, the facade, driven as the scheduler drives it with a stub in place of the engine.

No server, no thread, no Airflow database: the facade's commands are read off its real channel and the
engine's results are put on it (``EngineEnd``), so every test here is about what the facade itself does
with them: what reaches Airflow's event buffer and task log, what it tells the engine, what it forgets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from ecs_executor import EcsExecutor
from ecs_executor import messages as m
from ecs_executor.core.task_status import Phase, TaskStatus
from ecs_executor.executor import MAX_ENGINE_RESTARTS, MAX_RESULTS_PER_SYNC, UNANNOUNCED
from ecs_executor.facade.startup import ExecutorStartupError
from tests.conftest import executor_env, executor_settings, make_workload
from tests.support.executor_view import EngineEnd, replace_engine, view
from tests.support.fault_helpers import FakeTI
from tests.support.stub_engine import FACADE_API, StubEngines

RUNNING, SUCCESS, FAILED = TaskInstanceState.RUNNING, TaskInstanceState.SUCCESS, TaskInstanceState.FAILED
ARN = "arn:aws:ecs:us-east-1:123456789012:task/main/0123456789abcdef0123456789abcdef"
OTHER_ARN = "arn:aws:ecs:us-east-1:123456789012:task/main/fedcba9876543210fedcba9876543210"
ELSEWHERE_ARN = "arn:aws:ecs:us-east-1:123456789012:task/elsewhere/00000000000000000000000000000001"

EXITED_0 = TaskStatus(Phase.SUCCESS, "container exited with code 0", 0, "EssentialContainerExited", False)
EXITED_1 = TaskStatus(Phase.FAILED, "container exited with code 1", 1, "EssentialContainerExited")
RUNNING_STATUS = TaskStatus(Phase.RUNNING, "running")
NOTICES_PER_BEAT = MAX_RESULTS_PER_SYNC


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> StubEngines:
    """Executors built in this test get stub engines, and options that need no network at start-up."""
    stubs = StubEngines()
    replace_engine(monkeypatch, stubs)
    for name in [k for k in os.environ if "_AWS_ECS_EXECUTOR__" in k]:
        monkeypatch.delenv(name)
    options = executor_env("unit", check_health_on_startup="False", freeze_gc_on_start="False")
    for name, value in options.items():
        monkeypatch.setenv(name, value)
    return stubs


@pytest.fixture
def executor(engines: StubEngines) -> Iterator[EcsExecutor]:
    executor = EcsExecutor(parallelism=20_000)  # room for a backlog of ten thousand tries
    executor.start()
    yield executor
    executor.end()


@pytest.fixture
def end(executor: EcsExecutor) -> EngineEnd:
    return EngineEnd(executor)


def beat(executor: EcsExecutor) -> dict[Any, tuple[Any, Any]]:
    """One scheduler heartbeat; what it put in the event buffer."""
    executor.heartbeat()
    return executor.get_event_buffer()


def queue(executor: EcsExecutor, end: EngineEnd, name: str = "t", **options: Any) -> m.Launch:
    """Queue a workload, take one heartbeat, and return the Launch the facade sent for it."""
    executor.queue_workload(make_workload(name, **options), session=None)
    executor.heartbeat()
    (launch,) = end.commands()
    assert isinstance(launch, m.Launch)
    return launch


def launched(executor: EcsExecutor, end: EngineEnd, name: str = "t", arn: str = ARN) -> TaskInstanceKey:
    """A try the engine launched (Launched applied): running in ECS task ``arn``."""
    key = queue(executor, end, name).key
    end.send(m.Launched(key, arn, 1))
    beat(executor)
    return key  # type: ignore[return-value]


def ti(key: Any, external_executor_id: str | None = None) -> Any:
    """What the facade reads from a TaskInstance row (revocation, adoption)."""
    return FakeTI(key, external_executor_id)


def task_log(executor: EcsExecutor, task_id: str = "t") -> list[tuple[str, str]]:
    return view(executor).events_for(task_id)


# ---- the stub keeps to the engine's API ----------------------------------------------------------------


def test_the_stub_offers_what_the_facade_calls_and_the_real_engine_still_has_it() -> None:
    """A stub that drifted from ``Engine`` would let these tests pass against a facade that cannot run."""
    from ecs_executor.engine import Engine
    from tests.support.stub_engine import StubEngine

    settings = executor_settings("unit")
    real = Engine(settings, m.Channel())  # built, never started: no thread, no network
    stub = StubEngines()(settings, m.Channel())
    for name in FACADE_API:
        assert hasattr(real, name), f"Engine has no {name}"
        assert hasattr(stub, name) and isinstance(stub, StubEngine), f"StubEngine has no {name}"


# ---- start and end ------------------------------------------------------------------------------------


def test_start_hands_the_engine_the_schedulers_job_id_and_starts_it(engines: StubEngines) -> None:
    """Airflow sets ``job_id`` before ``start()``: the orphan sweep tells its own job from others by it."""
    executor = EcsExecutor(parallelism=4)
    executor.job_id = 42
    executor.start()
    try:
        (engine,) = engines.built
        assert engine.started and engine.job_id == 42 and engine.name == "ecs-executor-engine-default"
        assert view(executor).engine_alive
    finally:
        executor.end()


def test_a_failing_start_up_check_refuses_to_start_and_names_the_option(
    engines: StubEngines, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__AWS_ECS_EXECUTOR__CHECK_HEALTH_ON_STARTUP", "True")
    engines.problems = ["cluster 'unit' not found"]
    executor = EcsExecutor(parallelism=4)
    with pytest.raises(ExecutorStartupError) as err:
        executor.start()
    message = str(err.value)
    assert "cluster 'unit' not found" in message
    assert "AIRFLOW__AWS_ECS_EXECUTOR__CHECK_HEALTH_ON_STARTUP=False" in message
    engine = engines.current
    assert engine.joined and engine.channel.drain_commands() == [m.Shutdown(stop_tasks=False)]


def test_a_passing_start_up_check_starts(engines: StubEngines, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AWS_ECS_EXECUTOR__CHECK_HEALTH_ON_STARTUP", "True")
    executor = EcsExecutor(parallelism=4)
    executor.start()
    try:
        assert view(executor).engine_alive and not engines.current.joined
    finally:
        executor.end()


def test_workloads_before_start_are_refused() -> None:
    executor = EcsExecutor(parallelism=4)
    executor.queue_workload(make_workload("t"), session=None)
    with pytest.raises(RuntimeError, match=r"start\(\) must be called"):
        executor.heartbeat()


def test_task_logs_under_a_bad_configuration_say_why_instead_of_raising(
    engines: StubEngines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server builds executors without start() to read task logs: a bad option is shown there."""
    monkeypatch.setenv("AIRFLOW__AWS_ECS_EXECUTOR__MAX_CONCURRENT_CALLS", "0")
    executor = EcsExecutor(parallelism=4)  # no settings read here: the API server builds many
    sources, lines = executor.get_task_log(ti(make_workload("t").ti.key, ARN), 1)
    assert sources == [] and len(lines) == 1
    assert (
        lines[0].startswith("ECS executor: ")
        and "AIRFLOW__AWS_ECS_EXECUTOR__MAX_CONCURRENT_CALLS" in lines[0]
    )
    assert engines.built == []


@pytest.mark.parametrize(("stop", "stop_tasks"), [("end", False), ("terminate", True)])
def test_end_leaves_ecs_tasks_running_and_terminate_stops_them(
    executor: EcsExecutor, end: EngineEnd, engines: StubEngines, stop: str, stop_tasks: bool
) -> None:
    getattr(executor, stop)()
    assert end.commands() == [m.Shutdown(stop_tasks=stop_tasks)]
    assert engines.current.joined


def test_end_applies_what_the_engine_reported_before_it_stopped(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(executor, end)
    end.send(m.StateChanged(key, ARN, EXITED_0))
    executor.end()
    assert executor.get_event_buffer()[key] == (SUCCESS, ARN)


# ---- launching ----------------------------------------------------------------------------------------


def test_queued_workloads_go_to_the_engine_as_launches_and_count_as_running(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    workloads = [make_workload("a", queue="gpu"), make_workload("b")]
    for w in workloads:
        executor.queue_workload(w, session=None)
    events = beat(executor)

    launches = end.commands()
    assert [type(c) for c in launches] == [m.Launch, m.Launch]
    assert [c.key for c in launches] == [w.ti.key for w in workloads]  # type: ignore[union-attr]
    assert launches[0].queue == "gpu" and launches[0].deadline is not None  # type: ignore[union-attr]
    assert executor.running == {w.ti.key for w in workloads} and not executor.queued_tasks
    assert view(executor).pending == {w.ti.key for w in workloads}
    assert events == {}  # nothing is RUNNING until ECS says so


def test_a_heartbeat_admits_only_what_the_engine_can_launch_soon_highest_priority_first(
    executor: EcsExecutor, end: EngineEnd, engines: StubEngines
) -> None:
    engines.allowance = 2
    workloads = [make_workload(f"w{i}") for i in range(5)]
    workloads[3].ti.priority_weight = 10
    for w in workloads:
        executor.queue_workload(w, session=None)
    executor.heartbeat()

    assert [c.key.task_id for c in end.commands()] == ["w3", "w0"]  # type: ignore[union-attr]
    assert len(executor.queued_tasks) == 3 and len(executor.running) == 2


def test_launched_reports_running_with_the_arn_and_keeps_the_launch_for_a_restarted_engine(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = queue(executor, end).key
    end.send(m.Launched(key, ARN, 1))

    assert beat(executor) == {key: (RUNNING, ARN)}  # the scheduler stores ARN as external_executor_id
    snapshot = view(executor)
    assert snapshot.arn(key) == ARN and key in snapshot.pending
    assert task_log(executor) == []  # a first attempt is not worth a log line


def test_running_in_ecs_ends_the_launch_and_reports_nothing_more(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(executor, end)
    end.send(m.StateChanged(key, ARN, RUNNING_STATUS))
    assert beat(executor) == {}
    assert key not in view(executor).pending and key in executor.running


def test_success_is_reported_with_the_arn_and_the_try_forgotten(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(executor, end)
    end.send(m.StateChanged(key, ARN, EXITED_0))
    assert beat(executor) == {key: (SUCCESS, ARN)}
    assert key not in executor.running and view(executor).arn(key) is None and task_log(executor) == []


def test_a_failed_container_is_reported_failed_with_its_reason_in_the_task_log(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(executor, end)
    end.send(m.StateChanged(key, ARN, EXITED_1))
    assert beat(executor) == {key: (FAILED, ARN)}
    assert task_log(executor) == [("ECS task failed", f"{ARN}: container exited with code 1")]
    assert key not in executor.running


def test_a_launch_that_failed_fails_the_try_with_the_engines_reason(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = queue(executor, end).key
    end.send(m.LaunchFailed(key, "ECS rejected RunTask: ClientException"))
    assert beat(executor) == {key: (FAILED, None)}
    assert task_log(executor) == [("ECS task failed", "ECS rejected RunTask: ClientException")]
    assert key not in executor.running and key not in view(executor).pending


def test_relaunching_forgets_the_gone_ecs_task_and_logs_the_retry(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(executor, end)
    end.send(m.Relaunching(key, "TaskFailedToStart: CannotPullContainerError", 2, 3.0))
    assert beat(executor) == {}
    snapshot = view(executor)
    assert snapshot.arn(key) is None and snapshot.pending_attempts[key] == 2 and key in executor.running
    retry = "TaskFailedToStart: CannotPullContainerError; launch attempt 2 in 3s"
    assert task_log(executor) == [("ECS launch retry", retry)]


def test_a_later_launch_attempt_is_reported_and_logged(executor: EcsExecutor, end: EngineEnd) -> None:
    key = launched(executor, end)
    end.send(m.Relaunching(key, "capacity", 2, 1.0), m.Launched(key, OTHER_ARN, 2))
    assert beat(executor) == {key: (RUNNING, OTHER_ARN)}
    assert task_log(executor)[-1] == ("ECS task launched", f"{OTHER_ARN} (launch attempt 2)")
    assert view(executor).arn(key) == OTHER_ARN


def test_an_engine_note_reaches_the_log_and_no_try(
    executor: EcsExecutor, end: EngineEnd, capfd: pytest.CaptureFixture[str]
) -> None:
    key = launched(executor, end)
    capfd.readouterr()
    end.send(m.EngineNote("warning", "ECS is throttling RunTask"))
    assert beat(executor) == {} and key in executor.running and task_log(executor) == []
    # Airflow's logging writes the executor's lines to stdout, past pytest's caplog.
    assert "ECS is throttling RunTask" in capfd.readouterr().out


# ---- a try handed back to Airflow, a try Airflow failed itself ---------------------------------------------


def test_a_handed_back_end_frees_the_slot_and_reports_nothing(executor: EcsExecutor, end: EngineEnd) -> None:
    key = launched(executor, end)
    end.send(m.StateChanged(key, ARN, EXITED_0, "up_for_reschedule"))
    assert beat(executor) == {}
    assert key not in executor.running and view(executor).arn(key) is None


def test_an_ordinary_end_is_reported(executor: EcsExecutor, end: EngineEnd) -> None:
    key = launched(executor, end)
    end.send(m.StateChanged(key, ARN, EXITED_0))
    assert beat(executor)[key][0] == SUCCESS


def test_an_end_of_an_ecs_task_the_try_no_longer_runs_in_is_dropped(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(
        executor, end, arn=OTHER_ARN
    )  # Airflow queued the try again; a new ECS task answers for it
    end.send(m.StateChanged(key, ARN, EXITED_0))
    assert beat(executor) == {} and key in executor.running


def test_airflow_failing_a_try_itself_stops_its_ecs_task(executor: EcsExecutor, end: EngineEnd) -> None:
    """The scheduler's purge of tries without heartbeats calls change_state(FAILED, remove_running=True)."""
    key = launched(executor, end)
    executor.change_state(key, FAILED, remove_running=True)
    (stop,) = end.commands()
    assert isinstance(stop, m.Stop) and stop.key == key and "heartbeat" in stop.reason
    assert key not in executor.running and view(executor).arn(key) is None
    assert executor.event_buffer[key][0] == FAILED
    ((event, extra),) = task_log(executor)
    assert event == "ECS task stopped" and ARN in extra


def test_our_own_failure_report_stops_nothing(executor: EcsExecutor, end: EngineEnd) -> None:
    key = launched(executor, end)
    end.send(m.StateChanged(key, ARN, EXITED_1))
    beat(executor)
    assert end.commands() == []
    assert key not in executor.running


def test_airflow_reporting_other_states_stops_nothing(executor: EcsExecutor, end: EngineEnd) -> None:
    key = launched(executor, end)
    executor.change_state(key, SUCCESS)
    assert end.commands() == [] and key not in executor.running


# ---- revocation, adoption --------------------------------------------------------------------------------


def test_revoke_stops_the_ecs_task_and_forgets_the_try_without_an_event(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(executor, end)
    executor.revoke_task(ti=ti(key, ARN))
    (stop,) = end.commands()
    assert isinstance(stop, m.Stop) and stop.key == key and "revoked" in stop.reason
    assert key not in executor.running and view(executor).arn(key) is None
    end.send(m.StateChanged(key, ARN, EXITED_1))  # the stopped task's end: late news
    assert beat(executor) == {}


def test_revoking_a_queued_try_keeps_it_from_ever_launching(executor: EcsExecutor, end: EngineEnd) -> None:
    w = make_workload("t")
    executor.queue_workload(w, session=None)
    executor.revoke_task(ti=ti(w.ti.key, None))
    executor.heartbeat()
    assert [type(c) for c in end.commands()] == [m.Stop]
    assert not executor.queued_tasks and not executor.running


def test_adoption_tracks_every_ti_with_an_ecs_arn_on_the_cluster_it_names(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    here, there, none, other = (make_workload(n).ti.key for n in ("here", "there", "none", "other"))
    tis = [ti(here, ARN), ti(there, ELSEWHERE_ARN), ti(none, None), ti(other, "celery-id")]

    not_adopted = executor.try_adopt_task_instances(tis)

    assert [t.key for t in not_adopted] == [none, other]  # the scheduler resets these
    assert end.commands() == [m.Adopt(here, ARN, "main"), m.Adopt(there, ELSEWHERE_ARN, "elsewhere")]
    assert executor.running == {here, there}
    assert dict(view(executor).arns) == {here: ARN, there: ELSEWHERE_ARN}
    end.send(m.StateChanged(here, ARN, EXITED_0))
    assert beat(executor) == {here: (SUCCESS, ARN)}


def test_an_adopted_task_ecs_no_longer_knows_fails_the_try(executor: EcsExecutor, end: EngineEnd) -> None:
    key = make_workload("gone").ti.key
    executor.try_adopt_task_instances([ti(key, ARN)])
    end.send(m.AdoptionFailed(key, ARN, "MISSING"))
    assert beat(executor) == {key: (FAILED, None)}
    ((event, extra),) = task_log(executor, "gone")
    assert event == "ECS task failed" and ARN in extra and "MISSING" in extra


# ---- a try queued again while its previous ECS task runs -------------------------------------------------


def test_a_try_queued_again_ignores_the_end_of_its_previous_ecs_task(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    key = launched(executor, end)
    again = queue(executor, end)  # a sensor rescheduled, a deferral resumed: Airflow queues the try again
    assert again.key == key and view(executor).superseded[key] == ARN
    end.send(m.StateChanged(key, ARN, EXITED_0))  # the previous ECS task ends
    assert beat(executor) == {} and key in executor.running
    end.send(m.Launched(key, OTHER_ARN, 1), m.StateChanged(key, OTHER_ARN, EXITED_0))
    assert beat(executor) == {key: (SUCCESS, OTHER_ARN)}  # the new ECS task's end does end it
    assert view(executor).superseded == {} and key not in executor.running


def test_a_try_queued_again_before_its_launched_was_applied(executor: EcsExecutor, end: EngineEnd) -> None:
    """The previous queueing's Launched was sent before the re-queue but not applied yet; that ECS task's
    end, sent after the re-queue, must not end the new queueing."""
    key = queue(executor, end).key
    end.send(m.Launched(key, ARN, 1))  # still on the channel: no heartbeat applied it
    executor.queue_workload(make_workload("t"), session=None)
    executor.trigger_tasks(executor.parallelism)
    assert view(executor).superseded[key] == UNANNOUNCED
    end.send(m.StateChanged(key, ARN, EXITED_0))

    assert beat(executor) == {}
    snapshot = view(executor)
    assert key in executor.running and snapshot.superseded[key] == ARN and snapshot.parked == ()
    end.send(m.Launched(key, OTHER_ARN, 1), m.StateChanged(key, OTHER_ARN, EXITED_0))
    assert beat(executor) == {key: (SUCCESS, OTHER_ARN)}


# ---- the engine thread dies ------------------------------------------------------------------------------


def test_a_dead_engine_is_replaced_at_the_next_heartbeat_and_told_everything_in_flight(
    executor: EcsExecutor, end: EngineEnd, engines: StubEngines
) -> None:
    running = launched(executor, end, "running")
    end.send(m.StateChanged(running, ARN, RUNNING_STATUS))
    relaunching = launched(executor, end, "relaunching", arn=OTHER_ARN)
    end.send(m.Relaunching(relaunching, "capacity", 2, 1.0))
    beat(executor)
    waiting = queue(executor, end, "waiting")  # sent, never answered
    finished = launched(executor, end, "finished", arn=ELSEWHERE_ARN)
    end.send(m.StateChanged(finished, ELSEWHERE_ARN, EXITED_0))  # the dead engine's last words
    engines.current.die(RuntimeError("boom"))

    events = beat(executor)

    assert events == {finished: (SUCCESS, ELSEWHERE_ARN)}  # what the dead engine reported still counts
    dead, new = engines.built
    assert new.started and new.channel is not dead.channel and view(executor).engine_restarts == 1
    commands = end.commands()  # on the new engine's channel
    assert m.Adopt(running, ARN, "main") in commands
    resent = {c.key: c for c in commands if isinstance(c, m.Launch)}
    assert set(resent) == {relaunching, waiting.key} and resent[relaunching].attempt == 2
    assert resent[waiting.key].launch_id == waiting.launch_id  # same clientToken: ECS answers, no new task
    assert len(commands) == 3


def test_an_engine_dying_too_often_stops_the_scheduler_with_a_clear_message(
    executor: EcsExecutor, engines: StubEngines
) -> None:
    for n in range(1, MAX_ENGINE_RESTARTS + 1):
        engines.current.die(RuntimeError("boom") if n % 2 else None)
        executor.heartbeat()
        assert len(engines.built) == n + 1 and view(executor).engine_restarts == n
    engines.current.die(RuntimeError("injected engine crash"))
    with pytest.raises(RuntimeError) as err:
        executor.heartbeat()
    message = str(err.value)
    assert f"died {MAX_ENGINE_RESTARTS + 1} times within 600s" in message
    assert "RuntimeError: injected engine crash" in message and "refusing to continue" in message


def test_an_engine_that_ends_while_the_executor_ends_is_not_restarted(
    executor: EcsExecutor, engines: StubEngines
) -> None:
    executor.end()
    executor.heartbeat()
    assert len(engines.built) == 1


# ---- the order results are applied in: a try's end never waits behind notices -------------------------


def try_key(i: int) -> TaskInstanceKey:
    return TaskInstanceKey("dag", f"t{i}", "run", 1, -1)


def task_arn(i: int) -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/main/{i:032x}"


def ended(key: Any, arn: str) -> m.StateChanged:
    return m.StateChanged(key, arn, EXITED_0)


def running_notice(key: Any, arn: str) -> m.StateChanged:
    return m.StateChanged(key, arn, RUNNING_STATUS)


def test_a_final_state_behind_ten_thousand_notices_reaches_the_event_buffer_at_the_first_heartbeat(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    for i in range(10_001):
        executor.running.add(try_key(i))
    for i in range(10_000):
        end.send(m.Launched(try_key(i), task_arn(i), 1))
    executor.try_adopt_task_instances([ti(try_key(10_000), task_arn(10_000))])
    end.send(ended(try_key(10_000), task_arn(10_000)))

    events = beat(executor)

    assert events[try_key(10_000)] == (SUCCESS, task_arn(10_000))
    assert sum(state == RUNNING for state, _ in events.values()) == NOTICES_PER_BEAT  # notices stay bounded
    assert try_key(10_000) not in executor.running
    # The rest of the notices follow, a bounded share per heartbeat, in order.
    reported = [k for k in events if k != try_key(10_000)]
    for _ in range(10_000 // NOTICES_PER_BEAT - 1):
        reported += list(beat(executor))
    assert reported == [try_key(i) for i in range(10_000)]


def test_a_launched_overtaken_by_its_own_final_is_ignored(executor: EcsExecutor, end: EngineEnd) -> None:
    """The try ended before the facade applied its Launched: it is reported once, and the late Launched does
    not put it back into ``running`` or the event buffer."""
    for i in range(NOTICES_PER_BEAT + 1):
        executor.running.add(try_key(i))
    for i in range(NOTICES_PER_BEAT):
        end.send(running_notice(try_key(i), task_arn(i)))
    late = try_key(NOTICES_PER_BEAT)
    end.send(m.Launched(late, task_arn(99_999), 1))
    end.send(ended(late, task_arn(99_999)))

    first = beat(executor)
    second = beat(executor)

    assert first[late] == (SUCCESS, task_arn(99_999))
    assert late not in second and late not in executor.running and view(executor).arn(late) is None


def test_a_relaunched_trys_final_waits_for_its_relaunching_and_launched(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    """The facade knows the try by its first ECS task; the final is about the relaunched one. It is applied
    once the notices sent before it (Relaunching, the new Launched) are: never dropped as another task's."""
    k = try_key(0)
    executor.running.add(k)
    end.send(m.Launched(k, task_arn(1), 1))
    assert beat(executor)[k] == (RUNNING, task_arn(1))
    others = [try_key(i) for i in range(1, NOTICES_PER_BEAT + 1)]
    for i, other in enumerate(others, start=1):
        executor.running.add(other)
        end.send(running_notice(other, task_arn(1000 + i)))
    end.send(m.Relaunching(k, "capacity", 2, 0.0))
    end.send(m.Launched(k, task_arn(2), 2))
    end.send(ended(k, task_arn(2)))

    first = beat(executor)  # the notices before the final are not all applied yet: it waits
    assert k not in first and k in executor.running
    second = beat(executor)

    assert second[k] == (SUCCESS, task_arn(2))
    assert k not in executor.running and view(executor).parked == ()


def test_the_end_of_an_ecs_task_the_try_no_longer_runs_in_is_dropped_after_the_notices_before_it(
    executor: EcsExecutor, end: EngineEnd
) -> None:
    k = try_key(0)
    executor.running.add(k)
    end.send(m.Launched(k, task_arn(1), 1))
    end.send(m.Relaunching(k, "capacity", 2, 0.0))
    end.send(m.Launched(k, task_arn(2), 2))
    beat(executor)
    end.send(ended(k, task_arn(1)))  # about the first task, which is gone

    assert k not in beat(executor) and k in executor.running


def test_finals_of_other_keys_do_not_wait_behind_a_parked_one(executor: EcsExecutor, end: EngineEnd) -> None:
    parked, other = try_key(0), try_key(1)
    for k in (parked, other):
        executor.running.add(k)
    executor.try_adopt_task_instances([ti(parked, task_arn(1)), ti(other, task_arn(3))])
    for i in range(2, NOTICES_PER_BEAT + 2):
        end.send(running_notice(try_key(i), task_arn(i)))  # not running: ignored, but in the way
    end.send(m.Relaunching(parked, "capacity", 2, 0.0))
    end.send(m.Launched(parked, task_arn(2), 2))
    end.send(ended(parked, task_arn(2)))
    end.send(ended(other, task_arn(3)))

    first = beat(executor)

    assert first[other] == (SUCCESS, task_arn(3)) and parked not in first
    assert beat(executor)[parked] == (SUCCESS, task_arn(2))
