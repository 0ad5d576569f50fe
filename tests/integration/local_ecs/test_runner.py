"""Task lifecycles driven by the runner: real processes, pretend mode, StopTask and SIGTERM/SIGKILL."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from ecs_executor.local_ecs import LocalEcs
from tests.integration.local_ecs.helpers import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    PY,
    describe,
    register,
    run,
    wait_for,
    wait_status,
)


def test_lifecycle_exit_code_and_log(lecs: LocalEcs, client: Any, capfd: pytest.CaptureFixture[str]) -> None:
    lecs.configure(provisioning_seconds=1.0)  # long enough to see PENDING even on a loaded machine
    register(client, [PY, "-c", "import sys; print('hello-from-task'); sys.exit(3)"])
    arn = run(client)
    assert describe(client, arn)["lastStatus"] in ("PROVISIONING", "PENDING")
    wait_status(client, arn, "PENDING")
    task = wait_status(client, arn, "STOPPED")
    assert task["desiredStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    (container,) = task["containers"]
    assert container["lastStatus"] == "STOPPED" and container["exitCode"] == 3
    stamps = ["createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "executionStoppedAt", "stoppedAt"]
    times = [task[name] for name in stamps]
    assert times == sorted(times)
    assert task["stoppingAt"] <= task["stoppedAt"]
    assert "hello-from-task" in lecs.log_path(arn).read_text()
    assert "hello-from-task" not in capfd.readouterr().out


def test_environment_and_command_override(lecs: LocalEcs, client: Any) -> None:
    definition = {
        "name": CONTAINER,
        "image": "busybox",
        "memory": 128,
        "entryPoint": ["sh", "-c"],
        "command": ["echo default"],
        "environment": [{"name": "FROM_DEF", "value": "d"}, {"name": "BOTH", "value": "def"}],
    }
    register(client, containerDefinitions=[definition])
    override = {
        "name": CONTAINER,
        "command": ['echo "$FROM_DEF $BOTH $FROM_OVERRIDE $HOME"'],
        "environment": [{"name": "BOTH", "value": "ovr"}, {"name": "FROM_OVERRIDE", "value": "o"}],
    }
    arn = run(client, overrides={"containerOverrides": [override]})
    assert wait_status(client, arn, "STOPPED")["containers"][0]["exitCode"] == 0
    assert lecs.log_path(arn).read_text().strip() == f"d ovr o {os.environ['HOME']}"


def test_stop_task_is_user_initiated(lecs: LocalEcs, client: Any) -> None:
    register(client, ["sh", "-c", "sleep 30"])
    arn = run(client)
    wait_status(client, arn, "RUNNING")
    stopped = client.stop_task(cluster=CLUSTER, task=arn, reason="no longer needed")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    task = wait_status(client, arn, "STOPPED")
    assert task["stopCode"] == "UserInitiated" and task["stoppedReason"] == "no longer needed"
    assert task["containers"][0]["exitCode"] == 143  # SIGTERM, as Docker reports it


def test_stop_task_escalates_to_sigkill(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(stop_timeout_seconds=0.3)
    register(client, ["sh", "-c", "trap '' TERM; echo ready; sleep 30 & wait; sleep 30"])
    arn = run(client)
    wait_for(lambda: lecs.log_path(arn).exists() and "ready" in lecs.log_path(arn).read_text())
    assert client.stop_task(cluster=CLUSTER, task=arn)["task"]["desiredStatus"] == "STOPPED"
    task = wait_status(client, arn, "STOPPED")
    assert task["stoppedReason"] == "Task stopped by user"
    assert task["containers"][0]["exitCode"] == 137


def test_stop_before_running(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(provisioning_seconds=30)
    register(client, ["true"])
    arn = run(client)
    client.stop_task(cluster=CLUSTER, task=arn)
    task = wait_status(client, arn, "STOPPED")
    assert task["stopCode"] == "UserInitiated" and "startedAt" not in task
    assert "exitCode" not in task["containers"][0]


def test_missing_executable_fails_to_start(client: Any) -> None:
    register(client, ["/definitely/not/here", "--flag"])
    task = wait_status(client, run(client), "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotStartContainerError:")
    assert "exitCode" not in task["containers"][0] and "startedAt" not in task


def test_essential_exit_stops_sidecars(client: Any) -> None:
    definitions = [
        {"name": CONTAINER, "image": "app", "memory": 64, "command": ["sh", "-c", "sleep 0.2; exit 5"]},
        {"name": "sidecar", "image": "side", "memory": 64, "essential": False, "command": ["sleep", "30"]},
    ]
    register(client, containerDefinitions=definitions)
    task = wait_status(client, run(client), "STOPPED")
    codes = {c["name"]: c.get("exitCode") for c in task["containers"]}
    assert codes == {CONTAINER: 5, "sidecar": 143}
    assert task["stopCode"] == "EssentialContainerExited"


def test_pretend_mode_lifecycle_and_finish(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=0.1, pretend_exit_code=4)
    register(client, ["/not/executed"])
    task = wait_status(client, run(client), "STOPPED")
    assert task["containers"][0]["exitCode"] == 4 and task["stopCode"] == "EssentialContainerExited"

    lecs.configure(pretend_seconds=3600)
    arn = run(client)
    wait_status(client, arn, "RUNNING")
    assert lecs.finish_task(arn, 7)
    assert wait_status(client, arn, "STOPPED")["containers"][0]["exitCode"] == 7
    assert not lecs.finish_task(arn, 1)

    arn = run(client)
    wait_status(client, arn, "RUNNING")
    client.stop_task(cluster=CLUSTER, task=arn, reason="bye")
    task = wait_status(client, arn, "STOPPED")
    assert (task["stopCode"], task["stoppedReason"], task["containers"][0]["exitCode"]) == (
        "UserInitiated",
        "bye",
        143,
    )
    assert lecs.stats()["tasks_by_status"] == {"STOPPED": 3}
    assert lecs.stats()["processes"] == 0


def test_pretend_mode_holds_many_tasks(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=0.3, provisioning_seconds=0.05)
    register(client, ["true"])
    for _ in range(30):
        client.run_task(cluster=CLUSTER, taskDefinition=FAMILY, count=10)
    wait_for(lambda: lecs.stats()["tasks_by_status"] == {"STOPPED": 300})
    stopped = client.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED", maxResults=100)
    assert len(stopped["taskArns"]) == 100 and "nextToken" in stopped


def test_spot_interruption_terminates_the_process(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(spot_interruption_seconds=0.3)
    register(client, ["sh", "-c", "sleep 30"])
    arn = run(client)
    task = wait_status(client, arn, "STOPPED")
    assert task["stopCode"] == "SpotInterruption"
    assert task["stoppedReason"] == "Your Spot Task was interrupted."
    assert task["containers"][0]["exitCode"] == 143
    assert lecs.stats()["processes"] == 0


def test_stop_task_default_reason_and_first_cause_wins(lecs: LocalEcs, client: Any) -> None:
    lecs.configure(pretend_seconds=60, spot_interruption_seconds=0.5)
    register(client, ["true"])
    arn = run(client)
    wait_status(client, arn, "RUNNING")
    client.stop_task(cluster=CLUSTER, task=arn)
    task = wait_status(client, arn, "STOPPED")
    assert (task["stopCode"], task["stoppedReason"]) == ("UserInitiated", "Task stopped by user")
    time.sleep(0.6)
    assert describe(client, arn)["stopCode"] == "UserInitiated"  # the Spot timer never fired after it


def test_a_task_process_never_inherits_airflows_signing_key(
    lecs: LocalEcs, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint runs with the scheduler's environment; its task processes, like ECS containers, get
    the workload's token only. Other variables are still inherited, and a definition may still set one."""
    names = [
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD",
        "AIRFLOW__API_AUTH__JWT_SECRET_SECRET",
        "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH",
        "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH_CMD",
    ]
    for name in names:
        monkeypatch.setenv(name, f"scheduler-only-{name}")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME", "600")  # not a key: inherited
    script = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if 'API_AUTH' in k}))"
    definition = {
        "name": CONTAINER,
        "image": "busybox",
        "memory": 128,
        "command": [PY, "-c", script],
        "environment": [{"name": "FROM_DEFINITION", "value": "d"}],
    }
    register(client, containerDefinitions=[definition])
    arn = run(client)
    assert wait_status(client, arn, "STOPPED")["containers"][0]["exitCode"] == 0
    seen = json.loads(lecs.log_path(arn).read_text().strip().splitlines()[-1])
    assert seen == {"AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": "600"}
