"""Every behaviour docs/worker-image.md promises, checked in the image built from the Dockerfile."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.image.conftest import (
    ACCESS_KEY_ID,
    DAG_FILE,
    PODMAN_RUN,
    SECRET_ACCESS_KEY,
    Image,
)

EXIT_SYNC_FAILED, EXIT_VERSION_MISMATCH, EXIT_NOT_FOUND = 66, 78, 127
PROBE = (
    "import platform, importlib.metadata as m, importlib.util as u; "
    "print(platform.python_version(), m.version('apache-airflow-core'), m.version('ecs-executor'), "
    "*(u.find_spec(name) is not None for name in "
    "('ecs_executor', 'ecs_executor.local_ecs', 'ecs_executor.demo', 'tests', 'benchmarks')))"
)


def versions(image: Image) -> tuple[str, str]:
    result = image.run(
        "python", "-c", "import platform, airflow; print(platform.python_version(), airflow.__version__)"
    )
    assert result.returncode == 0, result.stderr
    python, airflow = result.stdout.split()
    return python, airflow


# --- contents -----------------------------------------------------------------------------------


def test_the_image_holds_airflow_and_the_executor_but_no_dev_tools(default_image: Image) -> None:
    result = default_image.run("python", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    python, airflow, ours, *found = result.stdout.split()
    assert python.startswith("3.11.")
    assert airflow == "3.3.2"
    assert ours == "0.1.0"
    assert found == ["True", "False", "False", "False", "False"]
    # Nothing of the build context beyond the package and the DAGs.
    listing = default_image.run("sh", "-c", "ls -A /opt/ecs_executor /tmp /opt/airflow /home/airflow")
    assert listing.returncode == 0, listing.stderr
    assert "tests" not in listing.stdout.split()
    assert "ecs_executor-src" not in listing.stdout


def test_runs_as_the_airflow_user_with_the_default_command(default_image: Image) -> None:
    who = default_image.run("id", "-u")
    assert (who.returncode, who.stdout.strip()) == (0, "50000")
    default = default_image.run()  # CMD: airflow version
    assert (default.returncode, default.stdout.strip()) == (0, "3.3.2"), default.stderr


def test_aws_cli_is_new_enough_to_honour_the_s3_endpoint_variable(default_image: Image) -> None:
    result = default_image.run("aws", "--version")
    assert result.returncode == 0, result.stderr
    match = re.match(r"aws-cli/(\d+)\.(\d+)\.", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    major, minor = int(match[1]), int(match[2])
    assert (major, minor) >= (2, 13) if major == 2 else (major, minor) >= (1, 29)
    # Its botocore lives apart from the one Airflow's environment has.
    where = default_image.run("sh", "-c", 'readlink -f "$(command -v aws)"')
    assert where.stdout.strip().startswith("/usr/local/aws-cli/")


# --- the command --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 7, 137])
def test_exit_code_of_the_command_passes_through(default_image: Image, code: int) -> None:
    result = default_image.run("sh", "-c", f"exit {code}")
    assert result.returncode == code, result.stderr
    assert result.stderr == ""


def test_missing_command_exits_127_with_a_line_naming_it(default_image: Image) -> None:
    """The base image's PATH starts with /root/bin (mode 0700 for root): exec alone would say 126."""
    result = default_image.run("no-such-command-ecs")
    assert result.returncode == EXIT_NOT_FOUND
    assert result.stderr.startswith("ecs_executor: command not found: no-such-command-ecs (PATH=/root/bin:")
    assert len(result.stderr.splitlines()) == 1


def test_a_missing_path_exits_127_and_a_file_that_cannot_be_executed_126(default_image: Image) -> None:
    missing = default_image.run("/opt/ecs_executor/no-such-file")
    assert missing.returncode == EXIT_NOT_FOUND
    assert missing.stderr.startswith("ecs_executor: command not found: /opt/ecs_executor/no-such-file")
    not_executable = default_image.run("/etc/passwd")
    assert not_executable.returncode == 126


def test_sigterm_reaches_the_command(default_image: Image) -> None:
    """podman stop sends SIGTERM to dumb-init, which forwards it to the exec'd command."""
    name = f"image-test-{uuid.uuid4().hex[:8]}"
    handler = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = subprocess.Popen(
        ["podman", "run", "--rm", "--name", name, *PODMAN_RUN, default_image.tag, "python", "-c", handler],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert started.stdout is not None
        assert started.stdout.readline().strip() == "ready"
        subprocess.run(["podman", "stop", "--time=20", name], capture_output=True, check=False, timeout=60)
        assert started.wait(timeout=60) == 42
    finally:
        started.kill()
        subprocess.run(["podman", "rm", "-f", "--ignore", name], capture_output=True, check=False)


# --- version check ------------------------------------------------------------------------------


def test_version_mismatch_exits_78_before_the_command(default_image: Image) -> None:
    python, _ = versions(default_image)
    result = default_image.run(
        "sh", "-c", "echo ran", env={"ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": "3.4.0"}
    )
    assert result.returncode == EXIT_VERSION_MISMATCH
    assert result.stdout == ""
    assert result.stderr == (
        "ecs_executor: version mismatch: scheduler runs Airflow 3.4.0 but this image has Airflow 3.3.2 "
        "(major.minor must match; rebuild the worker image with --build-arg AIRFLOW_VERSION=3.4.0)\n"
    )
    result = default_image.run("true", env={"ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": "3.12.1"})
    assert result.returncode == EXIT_VERSION_MISMATCH
    assert f"scheduler runs Python 3.12.1 but this image has Python {python}" in result.stderr


def test_matching_versions_are_silent_and_patch_drift_warns(default_image: Image) -> None:
    python, airflow = versions(default_image)
    same = default_image.run(
        "true",
        env={
            "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": python,
            "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": airflow,
        },
    )
    assert (same.returncode, same.stderr) == (0, "")
    drift = default_image.run(
        "sh", "-c", "echo ran", env={"ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": "3.3.99"}
    )
    assert (drift.returncode, drift.stdout) == (0, "ran\n")
    assert drift.stderr.startswith("ecs_executor: warning: version drift: scheduler runs Airflow 3.3.99")


# --- DAGs ---------------------------------------------------------------------------------------


def test_dags_copied_at_build_time_land_in_airflows_dags_folder(default_image: Image) -> None:
    result = default_image.run("sh", "-c", f'cat "$AIRFLOW__CORE__DAGS_FOLDER/{DAG_FILE}"')
    assert (result.returncode, result.stdout) == (0, "# copied into the image at build time\n"), result.stderr
    folder = default_image.run("airflow", "config", "get-value", "core", "dags_folder")
    assert folder.stdout.strip() == "/opt/airflow/dags", folder.stderr


def test_non_default_container_dag_path(variant_image: Image) -> None:
    result = variant_image.run(
        "sh", "-c", f'test "$CONTAINER_DAG_PATH" = /srv/dags && cat /srv/dags/{DAG_FILE}'
    )
    assert (result.returncode, result.stdout) == (0, "# copied into the image at build time\n"), result.stderr
    folder = variant_image.run("airflow", "config", "get-value", "core", "dags_folder")
    assert folder.stdout.strip() == "/srv/dags", folder.stderr
    owner = variant_image.run("stat", "-c", "%u:%g %a", "/srv/dags")
    assert owner.stdout.strip() == "50000:0 775"


def test_dags_from_a_mounted_folder(default_image: Image, tmp_path: Path) -> None:
    (tmp_path / "mounted_dag.py").write_text("# mounted\n")
    tmp_path.chmod(0o755)
    result = default_image.run(
        "sh", "-c", "ls /opt/airflow/dags", flags=(f"--volume={tmp_path}:/opt/airflow/dags:ro",)
    )
    assert (result.returncode, result.stdout) == (0, "mounted_dag.py\n"), result.stderr


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def dag_bucket(moto_endpoint: str) -> str:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"dags-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dags/from_s3.py", Body=b"# from S3\n")
    s3.put_object(Bucket=bucket, Key="dags/common/helpers.py", Body=b"# helpers\n")
    return bucket


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """Only the S3-specific endpoint variable: the CLI must honour it (CLI v1 >= 1.29, v2 >= 2.13)."""
    return {
        "S3_URL": f"s3://{bucket}/dags",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-never-printed",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.mark.parametrize("which", ["default", "variant"])
def test_dags_synced_from_s3_before_the_command_starts(
    which: str, request: pytest.FixtureRequest, moto_endpoint: str, dag_bucket: str
) -> None:
    image: Image = request.getfixturevalue(f"{which}_image")
    listing = f"cd {image.dag_path} && find . -type f | sort"
    result = image.run("sh", "-c", listing, env=s3_env(moto_endpoint, dag_bucket))
    assert result.returncode == 0, result.stderr
    # The DAG copied at build time stays: the sync never deletes.
    assert result.stdout.split() == ["./common/helpers.py", "./from_s3.py", f"./{DAG_FILE}"]
    assert result.stderr == f"ecs_executor: synced DAGs from s3://{dag_bucket}/dags to {image.dag_path}\n"


def test_failed_sync_exits_66_without_running_the_command(default_image: Image, moto_endpoint: str) -> None:
    env = s3_env(moto_endpoint, f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    result = default_image.run("sh", "-c", "echo ran", env=env)
    assert result.returncode == EXIT_SYNC_FAILED
    assert result.stdout == ""
    assert result.stderr.startswith(f"ecs_executor: could not sync DAGs from {env['S3_URL']}: ")
    assert "NoSuchBucket" in result.stderr
    assert "testing-secret-never-printed" not in result.stderr


# --- credentials --------------------------------------------------------------------------------


def test_credential_build_args_stay_out_of_environment_config_and_files(variant_image: Image) -> None:
    assert "WARNING: AWS credentials given as build args are recorded" in variant_image.build_log
    # The image's config: environment, labels, entrypoint, command, user (the history is another matter).
    config = subprocess.run(
        [
            "podman",
            "image",
            "inspect",
            "--format={{json .Config}} {{json .Labels}} {{json .Annotations}}",
            variant_image.tag,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"Env"' in config
    assert ACCESS_KEY_ID not in config
    assert SECRET_ACCESS_KEY not in config
    env = variant_image.run("env")
    assert env.returncode == 0, env.stderr
    assert ACCESS_KEY_ID not in env.stdout and SECRET_ACCESS_KEY not in env.stdout
    # The region build arg is kept (no secret), in a file rather than the config, and applied at start.
    assert "AWS_DEFAULT_REGION" not in config
    region = variant_image.run("sh", "-c", 'echo "$AWS_DEFAULT_REGION"')
    assert region.stdout == "eu-west-1\n"
    # No file anywhere in the image's filesystem holds them.
    container = subprocess.run(
        ["buildah", "from", "--pull-never", variant_image.tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        root = subprocess.run(["buildah", "mount", container], capture_output=True, text=True, check=True)
        grep = subprocess.run(
            ["grep", "-rlF", "-e", SECRET_ACCESS_KEY, "-e", ACCESS_KEY_ID, root.stdout.strip()],
            capture_output=True,
            text=True,
            check=False,
        )
        assert grep.returncode == 1, f"credentials found in files: {grep.stdout}{grep.stderr[-2000:]}"
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def test_build_history_does_record_credential_build_args(variant_image: Image) -> None:
    """What docs/worker-image.md warns about: build args used by a RUN step are in the history."""
    history = subprocess.run(
        ["podman", "history", "--no-trunc", "--format={{.CreatedBy}}", variant_image.tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert SECRET_ACCESS_KEY in history
