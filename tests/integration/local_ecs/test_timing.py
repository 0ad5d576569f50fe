"""Timing profiles: under ``fargate`` a task walks every ECS lifecycle state, in ECS's order, and its
container's exit code shows (in DescribeTasks and in the events) before the task is STOPPED.

Order of states and who sees what first, never durations: the machine is shared and noisy. Every version
of a task is recorded from the registry's change hook (the same hook that publishes the events), as
``task.to_dict()``: exactly what DescribeTasks answers at that version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ecs_executor.local_ecs import LocalEcs
from ecs_executor.local_ecs.knobs import KnobError, Knobs
from ecs_executor.local_ecs.timing import PROFILES, Timing
from tests.integration.local_ecs.helpers import (
    CLUSTER,
    PY,
    describe,
    http,
    make_client,
    register,
    run,
    wait_for,
    wait_status,
)
from tests.integration.local_ecs.test_events import check_event
from tests.support.sqs_server import SqsQueue

UP = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"]
DOWN = ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]
# Short totals keep the tests quick; jitter stays on (the profile's 0.5), only the order is asserted.
QUICK = {"timing": "fargate", "provisioning_seconds": 0.6, "deprovisioning_seconds": 0.6}


class Versions:
    """Every version of every task, as DescribeTasks would answer it, plus whether its processes live."""

    def __init__(self, ecs: LocalEcs) -> None:
        self.ecs = ecs
        self.seen: dict[str, list[dict[str, Any]]] = {}
        registry = ecs.server.registry
        publish = registry.on_change

        def record(task: Any) -> None:
            snapshot = task.to_dict()
            processes = ecs.server.runner._processes.get(task.id, [])
            snapshot["_alive"] = any(process.returncode is None for process in processes)
            self.seen.setdefault(task.arn, []).append(snapshot)
            if publish is not None:
                publish(task)

        registry.on_change = record

    def of(self, arn: str) -> list[dict[str, Any]]:
        return self.ecs._call(lambda: list(self.seen[arn]))


def steps(versions: list[dict[str, Any]]) -> list[tuple[str, str, int | None, str | None]]:
    return [
        (v["lastStatus"], v["desiredStatus"], v["containers"][0].get("exitCode"), v.get("stopCode"))
        for v in versions
    ]


def distinct_states(versions: list[dict[str, Any]]) -> list[str]:
    states: list[str] = []
    for version in versions:
        if not states or states[-1] != version["lastStatus"]:
            states.append(version["lastStatus"])
    return states


@pytest.fixture
def fargate(tmp_path: Path) -> Iterator[Callable[..., tuple[LocalEcs, Any, Versions]]]:
    made: list[LocalEcs] = []

    def start(**knobs: Any) -> tuple[LocalEcs, Any, Versions]:
        ecs = LocalEcs(**{**QUICK, "log_dir": str(tmp_path / "logs"), **knobs})
        made.append(ecs)
        versions = Versions(ecs)  # before start: the hook is in place for the first task
        ecs.start()
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        return ecs, client, versions

    yield start
    for ecs in made:
        ecs.stop()


def test_exit_walks_every_state_with_the_exit_code_shown_before_stopped(fargate: Any) -> None:
    _, client, versions = fargate()
    register(client, [PY, "-c", "import sys; sys.exit(3)"])
    arn = run(client)
    final = wait_status(client, arn, "STOPPED")
    seen = versions.of(arn)
    assert [v["version"] for v in seen] == list(range(1, final["version"] + 1))  # one per change
    assert distinct_states(seen) == UP + DOWN
    assert steps(seen)[-6:] == [
        ("RUNNING", "RUNNING", 3, None),  # the container exited
        ("RUNNING", "STOPPED", 3, "EssentialContainerExited"),
        ("DEACTIVATING", "STOPPED", 3, "EssentialContainerExited"),
        ("STOPPING", "STOPPED", 3, "EssentialContainerExited"),
        ("DEPROVISIONING", "STOPPED", 3, "EssentialContainerExited"),
        ("STOPPED", "STOPPED", 3, "EssentialContainerExited"),
    ]
    for version in seen[-5:]:
        assert version["stoppedReason"] == "Essential container in task exited"
        assert version["containers"][0]["lastStatus"] == "STOPPED"
        assert "stoppingAt" in version
    assert "stoppedAt" not in seen[-2] and "stoppedAt" in seen[-1]
    assert "executionStoppedAt" not in seen[-7] and "executionStoppedAt" in seen[-6]  # at the exit
    assert [v["lastStatus"] for v in seen[:3]] == UP[:3]
    assert "pullStartedAt" not in seen[1] and "pullStartedAt" in seen[2]  # the image pull: ACTIVATING
    stamps = ["createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "executionStoppedAt", "stoppedAt"]
    assert [final[name] for name in stamps] == sorted(final[name] for name in stamps)


def test_describe_tasks_shows_the_exit_code_while_the_task_is_not_yet_stopped(fargate: Any) -> None:
    # Seconds of walking down, so a client polling DescribeTasks sees the in-between states.
    _, client, _ = fargate(deprovisioning_seconds=6, timing_jitter=0)
    register(client, [PY, "-c", "import sys; sys.exit(5)"])
    arn = run(client)
    early = wait_for(lambda: (t := describe(client, arn))["containers"][0].get("exitCode") is not None and t)
    assert early["lastStatus"] in ("RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING")
    assert early["containers"][0]["exitCode"] == 5 and early["desiredStatus"] == "STOPPED"
    assert early["stopCode"] == "EssentialContainerExited"
    assert wait_status(client, arn, "STOPPED")["version"] > early["version"]


def test_events_carry_each_step_with_growing_versions(
    fargate: Any, sqs_queue: SqsQueue, tmp_path: Path
) -> None:
    ecs, client, _ = fargate(
        pretend_seconds=0.2,
        events_queue_url=sqs_queue.queue_url,
        events_endpoint_url=sqs_queue.endpoint_url,
    )
    register(client, ["true"])
    arn = run(client)
    final = wait_status(client, arn, "STOPPED")
    assert ecs.wait_for_events()
    events = sorted(
        sqs_queue.bodies(until=lambda got: any(e["detail"]["lastStatus"] == "STOPPED" for e in got)),
        key=lambda event: event["detail"]["version"],
    )
    for event in events:
        check_event(event)  # the shape EventBridge delivers, as for the instant profile
    details = [event["detail"] for event in events]
    assert [d["version"] for d in details] == list(range(1, final["version"] + 1))
    assert [(d["lastStatus"], d["desiredStatus"], d["containers"][0].get("exitCode")) for d in details] == [
        ("PROVISIONING", "RUNNING", None),
        ("PENDING", "RUNNING", None),
        ("ACTIVATING", "RUNNING", None),
        ("RUNNING", "RUNNING", None),
        ("RUNNING", "RUNNING", 0),
        ("RUNNING", "STOPPED", 0),
        ("DEACTIVATING", "STOPPED", 0),
        ("STOPPING", "STOPPED", 0),
        ("DEPROVISIONING", "STOPPED", 0),
        ("STOPPED", "STOPPED", 0),
    ]
    for detail in details[5:]:
        assert detail["stopCode"] == "EssentialContainerExited"
        assert detail["stoppedReason"] == "Essential container in task exited"
    assert "stopCode" not in details[4]


def test_stop_task_signals_the_container_in_stopping(fargate: Any) -> None:
    _, client, versions = fargate(stop_timeout_seconds=30)
    register(client, [PY, "-c", "import time; time.sleep(60)"])
    arn = run(client)
    wait_status(client, arn, "RUNNING")
    answer = client.stop_task(cluster=CLUSTER, task=arn, reason="revoked")["task"]
    assert (answer["lastStatus"], answer["desiredStatus"]) == ("RUNNING", "STOPPED")
    final = wait_status(client, arn, "STOPPED")
    seen = versions.of(arn)
    assert distinct_states(seen) == UP + DOWN
    down = [v for v in seen if v["desiredStatus"] == "STOPPED"]
    assert [(v["lastStatus"], v["containers"][0].get("exitCode"), v["_alive"]) for v in down] == [
        ("RUNNING", None, True),  # StopTask: desiredStatus STOPPED, the container untouched
        ("DEACTIVATING", None, True),
        ("STOPPING", None, True),  # SIGTERM now
        ("STOPPING", 143, False),  # the container exited of it
        ("DEPROVISIONING", 143, False),
        ("STOPPED", 143, False),
    ]
    assert all(v["stopCode"] == "UserInitiated" and v["stoppedReason"] == "revoked" for v in down)
    assert final["containers"][0]["exitCode"] == 143


def test_stop_task_escalates_to_sigkill_in_stopping(fargate: Any) -> None:
    ecs, client, versions = fargate(stop_timeout_seconds=0.5)
    register(client, ["sh", "-c", "trap '' TERM; echo ready; sleep 30 & wait; sleep 30"])
    arn = run(client)
    wait_for(lambda: ecs.log_path(arn).exists() and "ready" in ecs.log_path(arn).read_text())
    client.stop_task(cluster=CLUSTER, task=arn)
    assert wait_status(client, arn, "STOPPED")["containers"][0]["exitCode"] == 137
    exited = next(v for v in versions.of(arn) if v["containers"][0].get("exitCode") is not None)
    assert exited["lastStatus"] == "STOPPING"


def test_pretend_stop_and_stop_before_running(fargate: Any) -> None:
    _, client, versions = fargate(pretend_seconds=3600)
    register(client, ["true"])
    arn = run(client)
    wait_status(client, arn, "RUNNING")
    client.stop_task(cluster=CLUSTER, task=arn)
    final = wait_status(client, arn, "STOPPED")
    assert final["containers"][0]["exitCode"] == 143 and final["stopCode"] == "UserInitiated"
    first_exit = next(v for v in versions.of(arn) if v["containers"][0].get("exitCode") is not None)
    assert first_exit["lastStatus"] == "STOPPING"

    never = run(client)  # stopped while still on its way up: no container ran, nothing to signal
    client.stop_task(cluster=CLUSTER, task=never)
    stopped = wait_status(client, never, "STOPPED")
    assert "startedAt" not in stopped and "exitCode" not in stopped["containers"][0]
    assert "RUNNING" not in distinct_states(versions.of(never))
    assert distinct_states(versions.of(never))[-2:] == ["DEPROVISIONING", "STOPPED"]


def test_failed_start_under_fargate(fargate: Any) -> None:
    _, client, versions = fargate(image_missing=True)
    register(client, ["true"])
    arn = run(client)
    final = wait_status(client, arn, "STOPPED")
    assert final["stopCode"] == "TaskFailedToStart"
    assert distinct_states(versions.of(arn)) == [*UP[:3], "DEPROVISIONING", "STOPPED"]


def test_instant_keeps_its_short_walk(fargate: Any) -> None:
    _, client, versions = fargate(timing="instant", pretend_seconds=0.05)
    register(client, ["true"])
    arn = run(client)
    wait_status(client, arn, "STOPPED")
    assert distinct_states(versions.of(arn)) == [
        "PROVISIONING",
        "PENDING",
        "RUNNING",
        "DEPROVISIONING",
        "STOPPED",
    ]


# ---- knobs ------------------------------------------------------------------------------------------


def test_the_profile_is_a_preset_that_explicit_knobs_override() -> None:
    knobs = Knobs()
    assert (knobs.timing, knobs.provisioning_seconds, knobs.deprovisioning_seconds) == ("instant", 0.2, 0.05)
    changed = knobs.update({"timing": "Fargate", "provisioning_seconds": "40"})
    assert set(changed) == {"timing", "provisioning_seconds", "deprovisioning_seconds", "timing_jitter"}
    assert (knobs.timing, knobs.provisioning_seconds, knobs.deprovisioning_seconds) == ("fargate", 40.0, 2.0)
    assert knobs.timing_jitter == PROFILES["fargate"].jitter
    knobs.update({"deprovisioning_seconds": 25})  # later: that knob alone
    assert (knobs.timing, knobs.provisioning_seconds, knobs.deprovisioning_seconds) == ("fargate", 40.0, 25.0)
    knobs.update({"timing": "instant"})  # setting a profile again writes its whole preset
    assert (knobs.provisioning_seconds, knobs.deprovisioning_seconds, knobs.timing_jitter) == (0.2, 0.05, 0.0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timing": "slow"}, "bad value for timing: must be one of instant, fargate, got 'slow'"),
        ({"timing_jitter": 1.5}, "bad value for timing_jitter: rate must be within 0..1"),
    ],
)
def test_bad_timing_values_are_refused_and_change_nothing(values: dict[str, Any], message: str) -> None:
    knobs = Knobs()
    with pytest.raises(KnobError, match=message.replace(".", r"\.")):
        knobs.update({"provisioning_seconds": 9, **values})
    assert knobs.provisioning_seconds == 0.2 and knobs.timing == "instant"


def test_bad_timing_over_http_and_cli(lecs: LocalEcs, capsys: pytest.CaptureFixture[str]) -> None:
    from ecs_executor.local_ecs.__main__ import main

    status, body = http(f"{lecs.url}/_local_ecs/config", {"timing": "warp"})
    assert (
        status == 400 and body["error"] == "bad value for timing: must be one of instant, fargate, got 'warp'"
    )
    status, body = http(f"{lecs.url}/_local_ecs/config", {"timing": "fargate"})
    assert status == 200 and body["timing"] == "fargate" and body["deprovisioning_seconds"] == 2.0
    with pytest.raises(SystemExit) as exit_info:
        main(["--timing", "warp"])
    assert exit_info.value.code == 2
    assert "bad value for timing: must be one of instant, fargate, got 'warp'" in capsys.readouterr().err


def test_steps_share_the_total_and_jitter_is_seeded() -> None:
    knobs = Knobs()
    knobs.update({"timing": "fargate", "timing_jitter": 0, "provisioning_seconds": 10})
    walk = Timing(knobs).start_walk()
    assert [state for state, _ in walk] == UP[:3]
    assert sum(seconds for _, seconds in walk) == pytest.approx(10)
    knobs.update({"timing_jitter": 0.5, "seed": 4})
    first, second = Timing(knobs), Timing(knobs)
    drawn = [first.start_walk() for _ in range(3)]
    assert drawn == [second.start_walk() for _ in range(3)]
    for walk in drawn:
        for (state, seconds), (_, share) in zip(walk, PROFILES["fargate"].start, strict=True):
            assert share * 10 * 0.5 <= seconds <= share * 10 * 1.5, state


def test_config_answer_lists_the_timing_knobs(lecs: LocalEcs) -> None:
    status, body = http(f"{lecs.url}/_local_ecs/config")
    assert status == 200
    assert {"timing", "timing_jitter", "provisioning_seconds", "deprovisioning_seconds"} <= set(body)
