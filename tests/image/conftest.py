"""Build the worker image from the repository's Dockerfile, as a user would, and run it with podman.

``make image-test`` prepares the machine first (``tests/image/setup-host.sh``: buildah, podman, runc,
and the Dockerfile's base image or its stand-in). Builds use buildah with ``--layers``, so a second
run on the same machine reuses every unchanged layer. Two images are built from one copy of the
repository with a ``dags/`` folder added, the way a user adds theirs:

* ``default``: the Dockerfile's defaults, DAGs copied from ``host_dag_path=dags``;
* ``variant``: ``container_dag_path=/srv/dags``, a region and (discouraged) credential build args.

The AWS CLI comes from PyPI (``AWS_CLI_SOURCE=pypi``): this network cannot reach the v2 bundle's host.
pip inside the build trusts the host's CA bundle through a read-only bind mount (a TLS-inspecting proxy
sits between this machine and PyPI); bind mounts are never part of the image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = ("buildah", "podman", "runc")
#: podman flags this kind of machine needs (docs/local-ecs.md): runc (crun cannot run in hybrid
#: cgroups here), the host network, and limits within the hard limits podman may set.
PODMAN_RUN = (
    "--runtime=runc",
    "--network=host",
    "--ulimit=nofile=20000:20000",
    "--ulimit=nproc=32768:32768",
)
IMAGE = "localhost/ecs-executor-worker"
SECRET_ACCESS_KEY = f"image-test-secret-{uuid.uuid4().hex}"
ACCESS_KEY_ID = "AKIAIMAGETESTBUILDARG"
DAG_FILE = "image_test_dag.py"
# Kept out of the build context copy: large, and never part of what a user builds.
NOT_IN_CONTEXT = {".git", ".venv", ".demo", ".mypy_cache", ".ruff_cache", ".pytest_cache", "site"}


def _tools_or_skip() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed: run `make image-test`, which installs them"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI never skips the image tests)")
        pytest.skip(message)


@dataclass(frozen=True)
class Image:
    tag: str
    dag_path: str
    build_log: str

    def run(
        self,
        *command: str,
        env: dict[str, str] | None = None,
        flags: tuple[str, ...] = (),
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """``podman run --rm`` this image with ``command`` (empty: the image's CMD)."""
        env_flags = [f"--env={name}={value}" for name, value in (env or {}).items()]
        return subprocess.run(
            ["podman", "run", "--rm", *PODMAN_RUN, *env_flags, *flags, self.tag, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


#: buildah as it works here (image-build notes): chroot isolation, the host network, never pulling the
#: base (setup-host.sh provides it), cached layers, Docker's image format (ENTRYPOINT/CMD as Docker has).
BUILD = (
    "buildah",
    "bud",
    "--isolation=chroot",
    "--network=host",
    "--pull=never",
    "--format=docker",
    "--layers",
    "--force-rm",
    f"--volume={HOST_CA}:/etc/ssl/certs/ca-certificates.crt:ro",
    "--build-arg=AWS_CLI_SOURCE=pypi",
)


def image_id(tag: str) -> str | None:
    result = subprocess.run(
        ["podman", "image", "inspect", "--format={{.Id}}", tag], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None


def build(context: Path, tag: str, build_args: dict[str, str]) -> Image:
    """Build ``tag``; the image it replaces is removed, so repeated runs do not pile up images."""
    previous = image_id(tag)
    args = [f"--build-arg={name}={value}" for name, value in build_args.items()]
    result = subprocess.run(
        [*BUILD, *args, f"--tag={tag}", str(context)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    if previous and previous != image_id(tag):
        subprocess.run(["podman", "rmi", previous], capture_output=True, check=False)
    dag_path = build_args.get("container_dag_path", "/opt/airflow/dags")
    return Image(tag=tag, dag_path=dag_path, build_log=result.stdout + result.stderr)


@pytest.fixture(scope="session")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a user has it, plus the DAGs folder they copy in with ``host_dag_path``."""
    _tools_or_skip()
    root = tmp_path_factory.mktemp("context")
    root.chmod(0o755)  # like a clone; pytest's 0700 would hide it from the airflow user in RUN steps
    for entry in REPO.iterdir():
        if entry.name in NOT_IN_CONTEXT:
            continue
        if entry.is_dir():
            shutil.copytree(entry, root / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(entry, root / entry.name)
    (root / "dags").mkdir()
    (root / "dags" / DAG_FILE).write_text("# copied into the image at build time\n")
    return root


@pytest.fixture(scope="session")
def default_image(context: Path) -> Iterator[Image]:
    yield build(context, f"{IMAGE}:image-test", {"host_dag_path": "dags"})


@pytest.fixture(scope="session")
def variant_image(context: Path) -> Iterator[Image]:
    yield build(
        context,
        f"{IMAGE}:image-test-variant",
        {
            "host_dag_path": "dags",
            "container_dag_path": "/srv/dags",
            "aws_default_region": "eu-west-1",
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
        },
    )
