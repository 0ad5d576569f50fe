"""container_runner=podman: how an ECS container becomes a ``podman run`` (the real runs: tests/image)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecs_executor.local_ecs import LocalEcs
from ecs_executor.local_ecs.knobs import KnobError, Knobs
from ecs_executor.local_ecs.podman import RUN_FLAGS, container_name, run_command
from tests.integration.local_ecs.helpers import CLUSTER, make_client, register, run, wait_status

SPEC: dict[str, Any] = {
    "name": "airflow-worker",
    "image": "localhost/worker:1",
    "environment": [{"name": "AIRFLOW_CONN_WAREHOUSE", "value": "password-never-in-argv"}],
    "mountPoints": [
        {"sourceVolume": "dags", "containerPath": "/opt/airflow/dags", "readOnly": True},
        {"sourceVolume": "logs", "containerPath": "/opt/airflow/logs"},
        {"sourceVolume": "efs", "containerPath": "/mnt/efs"},  # no host path: not a bind mount
    ],
}
VOLUMES = [
    {"name": "dags", "host": {"sourcePath": "/srv/dags"}},
    {"name": "logs", "host": {"sourcePath": "/srv/logs"}},
    {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}},
]


def test_the_image_runs_with_its_own_entrypoint_the_override_command_and_only_the_task_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOST_ONLY_SETTING", "must-not-reach-the-container")
    override = {
        "command": ["python", "-m", "x", "--json-string", '{"a": "b c"}'],
        "environment": [{"name": "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION", "value": "3.11.7"}],
    }
    argv, env = run_command("abc123", "airflow-worker", SPEC, override, VOLUMES)
    assert argv == [
        "podman",
        "run",
        "--rm",
        "--name=local-ecs-abc123-airflow-worker",
        *RUN_FLAGS,
        "--env=AIRFLOW_CONN_WAREHOUSE",
        "--env=ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION",
        "--volume=/srv/dags:/opt/airflow/dags:ro",
        "--volume=/srv/logs:/opt/airflow/logs:rw",
        "localhost/worker:1",
        "python",
        "-m",
        "x",
        "--json-string",
        '{"a": "b c"}',
    ]
    # Values travel in podman's environment, never in its argv (a process list shows argv).
    assert "password-never-in-argv" not in " ".join(argv)
    assert env["AIRFLOW_CONN_WAREHOUSE"] == "password-never-in-argv"
    assert env["ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION"] == "3.11.7"
    assert "HOST_ONLY_SETTING" not in env and "HOST_ONLY_SETTING" not in " ".join(argv)


def test_definition_entry_point_workdir_user_and_command_apply_without_an_override() -> None:
    spec = {**SPEC, "entryPoint": ["/bin/sh", "-c"], "command": ["echo hi"], "workingDirectory": "/w"}
    spec["user"] = "1000"
    argv, _ = run_command("t", "c", spec, {}, [])
    assert f"--entrypoint={json.dumps(['/bin/sh', '-c'])}" in argv
    assert "--workdir=/w" in argv and "--user=1000" in argv
    assert argv[-2:] == ["localhost/worker:1", "echo hi"]
    assert container_name("t", "c") == "local-ecs-t-c"


def test_no_command_anywhere_leaves_the_images_cmd() -> None:
    argv, _ = run_command("t", "c", {"name": "c", "image": "img"}, {}, [])
    assert argv[-1] == "img"


def test_the_knob_accepts_two_runners() -> None:
    knobs = Knobs()
    assert knobs.container_runner == "process"
    assert knobs.update({"container_runner": "Podman"}) == ["container_runner"]
    assert knobs.container_runner == "podman"
    with pytest.raises(KnobError, match="container_runner"):
        knobs.update({"container_runner": "docker"})


def test_without_podman_the_task_fails_to_start_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no podman on it
    with LocalEcs(provisioning_seconds=0.05, deprovisioning_seconds=0.01, container_runner="podman") as ecs:
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        register(client, ["true"])
        task = wait_status(client, run(client), "STOPPED")
    assert task["stopCode"] == "TaskFailedToStart"
    assert (
        task["stoppedReason"]
        == "CannotStartContainerError: podman is not installed (container_runner=podman)"
    )


def test_the_image_task_definition_never_hands_the_container_airflows_signing_key() -> None:
    """The demo and the image test run workers from this definition: like a real one, it gives the
    container the Execution API URL, never the scheduler's [api_auth] jwt_secret."""
    from ecs_executor.demo.task_definitions import image_task_definition

    env = {
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "scheduler-only",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    }
    definition = image_task_definition("localhost/worker:1", Path("/srv/dags"), Path("/srv/logs"), env)
    (spec,) = definition["containerDefinitions"]
    argv, podman_env = run_command("t1", spec["name"], spec, {}, definition["volumes"])
    assert "--env=AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in argv
    assert not [a for a in argv if "JWT" in a] and "scheduler-only" not in podman_env.values()


def test_the_image_task_definition_reaches_kms_only_for_sealed_workloads() -> None:
    """The demo's --encrypt: the container gets the KMS endpoint and the local credentials (standing in
    for the task role) so the worker can decrypt; without it, no AWS variable at all."""
    from ecs_executor.demo.task_definitions import image_task_definition

    env = {
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_ECS": "http://127.0.0.1:1/",
    }
    plain = image_task_definition("localhost/worker:1", Path("/srv/dags"), Path("/srv/logs"), env)
    assert not [e for e in plain["containerDefinitions"][0]["environment"] if e["name"].startswith("AWS_")]
    env["AWS_ENDPOINT_URL_KMS"] = "http://127.0.0.1:2"
    sealed = image_task_definition("localhost/worker:1", Path("/srv/dags"), Path("/srv/logs"), env)
    given = {e["name"]: e["value"] for e in sealed["containerDefinitions"][0]["environment"]}
    assert (
        given["AWS_ENDPOINT_URL_KMS"] == "http://127.0.0.1:2" and given["AWS_DEFAULT_REGION"] == "us-east-1"
    )
    assert given["AWS_ACCESS_KEY_ID"] == "local" and "AWS_ENDPOINT_URL_ECS" not in given


def test_each_task_runs_its_own_definitions_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two definitions (a base and one derived from it with another image): podman runs each one's image."""
    calls = tmp_path / "podman-calls"
    fake = tmp_path / "podman"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with LocalEcs(provisioning_seconds=0.05, deprovisioning_seconds=0.01, container_runner="podman") as ecs:
        assert ecs.url is not None
        client = make_client(ecs.url)
        client.create_cluster(clusterName=CLUSTER)
        for family, image in (("worker", "repo/base:1"), ("worker-x0123456789abcdef", "repo/derived:2")):
            container = {"name": "base", "image": image, "memory": 512, "command": ["true"]}
            register(client, family=family, containerDefinitions=[container])
            wait_status(client, run(client, taskDefinition=family), "STOPPED")
    runs = [line.split() for line in calls.read_text().splitlines() if line.startswith("run ")]
    assert [argv[-2] for argv in runs] == ["repo/base:1", "repo/derived:2"]  # image, then the command
