"""Task containers run from their image with podman (knob ``container_runner=podman``).

The default runner starts a container's command as a process on this host, which proves the
executor but not the worker image users deploy. This one starts each container the way ECS would
on an EC2 instance: the task definition's ``image`` with its own ENTRYPOINT (unless ``entryPoint``
replaces it), the definition's environment plus the override's and nothing of this host's, bind
mounts from ``volumes[].host.sourcePath`` and ``mountPoints``, and the host's network, so a task
reaches an API server on 127.0.0.1. ``podman run`` stays in the foreground: the runner's exit codes,
SIGTERM on StopTask (podman forwards it to the container) and output capture work unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from typing import Any

#: What podman needs on machines like ours (docs/local-ecs.md): runc (crun fails on hybrid
#: cgroups), and open-file/process limits within the hard limits (its defaults are refused).
RUN_FLAGS = (
    "--runtime=runc",
    "--network=host",
    "--ulimit=nofile=20000:20000",
    "--ulimit=nproc=32768:32768",
)


def container_name(task_id: str, container: str) -> str:
    """One podman container per ECS container; the name lets the runner remove what it started."""
    return f"local-ecs-{task_id}-{container}"


def _volume_flags(spec: dict[str, Any], volumes: list[dict[str, Any]]) -> list[str]:
    sources = {v.get("name"): (v.get("host") or {}).get("sourcePath") for v in volumes}
    flags = []
    for mount in spec.get("mountPoints") or []:
        source = sources.get(mount.get("sourceVolume"))
        if source and mount.get("containerPath"):
            mode = "ro" if mount.get("readOnly") else "rw"
            flags.append(f"--volume={source}:{mount['containerPath']}:{mode}")
    return flags


def run_command(
    task_id: str,
    container: str,
    spec: dict[str, Any],
    override: dict[str, Any],
    volumes: list[dict[str, Any]],
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the ``podman run`` that plays one ECS container.

    Values of the container's variables travel in podman's own environment, named by ``--env NAME``
    flags, so secrets such as the JWT secret never appear in a process list.
    """
    environment: dict[str, str] = {}
    for entry in (spec.get("environment") or []) + (override.get("environment") or []):
        environment[str(entry["name"])] = str(entry.get("value", ""))
    argv = ["podman", "run", "--rm", f"--name={container_name(task_id, container)}", *RUN_FLAGS]
    argv += [f"--env={name}" for name in environment]
    argv += _volume_flags(spec, volumes)
    if spec.get("entryPoint"):
        argv.append(f"--entrypoint={json.dumps([str(part) for part in spec['entryPoint']])}")
    if spec.get("workingDirectory"):
        argv.append(f"--workdir={spec['workingDirectory']}")
    if spec.get("user"):
        argv.append(f"--user={spec['user']}")
    command = override["command"] if "command" in override else spec.get("command")
    argv += [str(spec.get("image") or ""), *(str(part) for part in command or [])]
    client_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR")}
    client_env.update(environment)
    return argv, client_env


def unavailable_reason() -> str | None:
    """Why podman cannot run containers here, or None."""
    if shutil.which("podman") is None:
        return "CannotStartContainerError: podman is not installed (container_runner=podman)"
    return None


async def remove(task_id: str, containers: list[str]) -> None:
    """Remove the task's containers: a killed ``podman run`` client leaves its container running."""
    names = [container_name(task_id, name) for name in containers]
    with contextlib.suppress(OSError):
        process = await asyncio.create_subprocess_exec(
            "podman",
            "rm",
            "--force",
            "--ignore",
            "--time=0",
            *names,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await process.wait()
