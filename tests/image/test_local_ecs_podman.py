"""The local ECS endpoint's podman runner with the real worker image: exit codes, StopTask, clean-up, and
a derived task definition's own image."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecs_executor.local_ecs import LocalEcs
from ecs_executor.request.derived_definition import register_request
from ecs_executor.request.task_settings import Derivation
from tests.image.conftest import Image
from tests.integration.local_ecs.helpers import CLUSTER, make_client, run, wait_for, wait_status

HANDLER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (print('got SIGTERM', flush=True), sys.exit(42)))\n"
    "print('waiting', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def ecs(tmp_path: Path, default_image: Image) -> Iterator[tuple[LocalEcs, Any]]:
    with LocalEcs(
        provisioning_seconds=0.05,
        deprovisioning_seconds=0.01,
        stop_timeout_seconds=20,
        log_dir=str(tmp_path / "logs"),
        container_runner="podman",
    ) as lecs:
        assert lecs.url is not None
        client = make_client(lecs.url)
        client.create_cluster(clusterName=CLUSTER)
        client.register_task_definition(
            family="worker",
            containerDefinitions=[
                {
                    "name": "base",
                    "image": default_image.tag,
                    "memory": 256,
                    "environment": [{"name": "GREETING", "value": "from the task definition"}],
                }
            ],
        )
        yield lecs, client


@pytest.fixture
def marked_image(default_image: Image) -> Iterator[str]:
    """A second image: the worker image with one variable more (a config-only commit, well under a
    second), so a container shows which of the two it was started from."""
    tag = f"{default_image.tag}-marked"
    made = subprocess.run(
        ["buildah", "from", "--pull-never", default_image.tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        subprocess.run(["buildah", "config", "--env", f"IMAGE_MARK={tag}", made], check=True)
        subprocess.run(["buildah", "commit", "--quiet", made, tag], capture_output=True, check=True)
    finally:
        subprocess.run(["buildah", "rm", made], capture_output=True, check=False)
    yield tag
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)


def containers_left() -> list[str]:
    names = subprocess.run(
        ["podman", "ps", "--all", "--format={{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return [name for name in names if name.startswith("local-ecs-")]


def with_command(*command: str) -> dict[str, Any]:
    return {"containerOverrides": [{"name": "base", "command": list(command)}]}


def test_exit_code_output_and_environment_come_from_the_container(ecs: tuple[LocalEcs, Any]) -> None:
    lecs, client = ecs
    arn = run(client, overrides=with_command("sh", "-c", 'echo "$GREETING as $(id -u)"; exit 3'))
    task = wait_status(client, arn, "STOPPED", timeout=90)
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["containers"][0]["exitCode"] == 3
    assert lecs.log_path(arn).read_text() == "from the task definition as 50000\n"
    assert containers_left() == []


def test_stop_task_sends_sigterm_into_the_container(ecs: tuple[LocalEcs, Any]) -> None:
    lecs, client = ecs
    arn = run(client, overrides=with_command("python", "-c", HANDLER))
    wait_status(client, arn, "RUNNING", timeout=90)
    log = lecs.log_path(arn)
    wait_for(lambda: "waiting" in log.read_text(), timeout=60)
    client.stop_task(cluster=CLUSTER, task=arn, reason="test stop")
    task = wait_status(client, arn, "STOPPED", timeout=90)
    assert task["stopCode"] == "UserInitiated"
    assert task["containers"][0]["exitCode"] == 42
    assert "got SIGTERM" in log.read_text()
    assert containers_left() == []


def test_a_missing_command_in_the_image_exits_127(ecs: tuple[LocalEcs, Any]) -> None:
    _, client = ecs
    arn = run(client, overrides=with_command("no-such-command"))
    task = wait_status(client, arn, "STOPPED", timeout=90)
    assert task["containers"][0]["exitCode"] == 127


def test_closing_the_endpoint_removes_running_containers(ecs: tuple[LocalEcs, Any]) -> None:
    lecs, client = ecs
    arn = run(client, overrides=with_command("sleep", "300"))
    wait_status(client, arn, "RUNNING", timeout=90)
    # RUNNING comes when `podman run` starts; the container exists a moment later.
    wait_for(lambda: len(containers_left()) == 1, timeout=60)
    lecs.stop()
    assert containers_left() == []


def test_a_derived_definition_runs_its_own_image(
    ecs: tuple[LocalEcs, Any], default_image: Image, marked_image: str
) -> None:
    """The definition the executor derives for a task's own image (built by the executor's own code)
    starts a container of that image; the base definition's tasks keep the base image."""
    lecs, client = ecs
    base = client.describe_task_definition(taskDefinition="worker", include=["TAGS"])
    derivation = Derivation(image=marked_image)
    request = register_request(base["taskDefinition"], "base", derivation, base.get("tags") or [])
    derived = client.register_task_definition(**request)["taskDefinition"]["taskDefinitionArn"]
    show = with_command("sh", "-c", 'echo "image mark: ${IMAGE_MARK:-none}; $GREETING"')
    in_derived = run(client, taskDefinition=derived, overrides=show)
    in_base = run(client, overrides=show)
    for arn in (in_derived, in_base):
        assert wait_status(client, arn, "STOPPED", timeout=90)["containers"][0]["exitCode"] == 0
    # The derived definition keeps the base's environment; only the image differs.
    assert lecs.log_path(in_derived).read_text() == f"image mark: {marked_image}; from the task definition\n"
    assert lecs.log_path(in_base).read_text() == "image mark: none; from the task definition\n"
    records = {r["taskArn"]: r["containers"]["base"]["image"] for r in lecs.launch_records()}
    assert records == {in_derived: marked_image, in_base: default_image.tag}
    assert containers_left() == []
