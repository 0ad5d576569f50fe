"""``python -m ecs_executor.worker <envelope>`` as a real process against moto's KMS server.

The exec target is observable: a fake ``python`` first on ``PATH`` (execvp searches ``PATH``, and the
command starts with ``python``) records its arguments and its process id, then exits 42. The worker
itself is started by absolute path, so the fake runs only if the worker exec's it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecs_executor.core.envelope import WORKLOAD_COMMAND, DataKey, parse
from ecs_executor.core.task_status import (
    EXIT_CONTEXT_MISMATCH,
    EXIT_ENVELOPE_CORRUPT,
    EXIT_KMS_ACCESS_DENIED,
    EXIT_KMS_KEY_UNUSABLE,
    EXIT_KMS_UNREACHABLE,
)
from tests.conftest import REGION, SECRET_TOKEN, make_workload
from tests.support.moto_kms import kms_key_states_enforced, new_data_key, seal_workload

FAKE_EXIT = 42
FAKE_PYTHON = """#!/bin/sh
echo "$$" > "$FAKE_RECORD.pid"
for arg in "$@"; do printf '%s\\0' "$arg"; done > "$FAKE_RECORD"
exit 42
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    pid: int
    record: Path

    @property
    def exec_argv(self) -> list[str] | None:
        """What the fake ``python`` was given (without argv[0]), or None if it never ran."""
        if not self.record.exists():
            return None
        return self.record.read_bytes().decode().split("\0")[:-1]

    @property
    def exec_pid(self) -> int:
        return int(self.record.with_suffix(".pid").read_text())


@pytest.fixture
def kms(moto_url: str) -> Any:
    return boto3.client("kms", endpoint_url=moto_url, region_name=REGION)


@pytest.fixture
def key_id(kms: Any) -> str:
    return kms.create_key(Description=f"worker test {uuid.uuid4().hex[:6]}")["KeyMetadata"]["KeyId"]


@pytest.fixture
def data_key(kms: Any, key_id: str) -> DataKey:
    return new_data_key(kms, key_id)


@pytest.fixture
def workload() -> Any:
    return make_workload(f"t-{uuid.uuid4().hex[:6]}", dag_id="sealed_dag", run_id="manual__1", map_index=3)


@pytest.fixture
def run_worker(tmp_path: Path, moto_url: str, data_key: DataKey) -> Iterator[Any]:
    """Run the worker with ``args``; every run is checked for secrets on stdout and stderr."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    runs: list[Run] = []

    def run(*args: str, env: dict[str, str] | None = None, importtime: bool = False) -> Run:
        record = tmp_path / f"argv-{len(runs)}"
        base = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_RECORD": str(record),
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_KMS": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        full_env = {k: v for k, v in {**base, **(env or {})}.items() if v is not None}
        command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "ecs_executor.worker"]
        process = subprocess.Popen(
            [*command, *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stdout, stderr = process.communicate(timeout=120)
        result = Run(process.returncode, stdout, stderr, process.pid, record)
        runs.append(result)
        return result

    yield run
    secrets = [
        SECRET_TOKEN,
        data_key.plaintext.hex(),
        base64.b64encode(data_key.plaintext).decode(),
        base64.urlsafe_b64encode(data_key.plaintext).decode().rstrip("="),
    ]
    for result in runs:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr


def refused(run: Run, code: int, *fragments: str) -> None:
    """The worker ended with ``code`` and one line naming the reason; the try's command never ran."""
    assert run.code == code, run.stderr
    assert run.exec_argv is None
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("ecs_executor: cannot open the sealed workload: ")
    for fragment in fragments:
        assert fragment in lines[0]


def replace_field(envelope: str, index: int, value: str) -> str:
    parts = envelope.split(".")
    parts[index] = value
    return ".".join(parts)


def b64(data: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode().rstrip("=")


# --- it opens and exec's ------------------------------------------------------------------------


def test_a_sealed_workload_is_opened_and_its_command_exec_d(
    run_worker: Any, workload: Any, data_key: DataKey
):
    run = run_worker(seal_workload(workload, data_key))
    assert run.code == FAKE_EXIT, run.stderr
    assert (run.stdout, run.stderr) == ("", "")
    # Exactly the unsealed command, in the worker's own process (exec, not a child).
    assert run.exec_argv == [*WORKLOAD_COMMAND[1:], workload.model_dump_json()]
    assert run.exec_pid == run.pid


def test_a_sealed_callback_is_opened_too(run_worker: Any, data_key: DataKey) -> None:
    """A callback has no task instance: sealed under the try the executor makes up for it, it opens."""
    from ecs_executor.core.envelope import seal, try_context
    from ecs_executor.facade.admission import callback_identity
    from tests.integration.test_callbacks_metrics import make_callback

    callback: Any = make_callback(dag_id="sealed_dag", run_id="manual__1")
    context = try_context(callback_identity(callback).to_dict())
    run = run_worker(seal(callback.model_dump_json(), data_key, context))
    assert run.code == FAKE_EXIT, run.stderr
    assert run.exec_argv == [*WORKLOAD_COMMAND[1:], callback.model_dump_json()]


def test_the_worker_loads_neither_airflow_nor_the_executor(run_worker: Any, workload: Any, data_key: DataKey):
    """Every module the real run imported before its exec (``-X importtime`` lists them on stderr)."""
    run = run_worker(seal_workload(workload, data_key), importtime=True)
    assert run.code == FAKE_EXIT
    imported = {
        line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")
    }
    assert {"botocore.client", "cryptography", "ecs_executor.worker.unseal"} <= imported
    ours = {name for name in imported if name.split(".")[0] == "ecs_executor"}
    assert ours == {
        "ecs_executor",
        "ecs_executor.core",
        "ecs_executor.core.envelope",
        "ecs_executor.core.task_status",
        "ecs_executor.worker",
        "ecs_executor.worker.unseal",
    }
    heavy = {name.split(".")[0] for name in imported} & {
        "airflow",
        "pydantic",
        "aiobotocore",
        "aiohttp",
        "boto3",
    }
    assert not heavy


def test_a_missing_python_exits_127_naming_it(run_worker: Any, workload: Any, data_key: DataKey) -> None:
    run = run_worker(seal_workload(workload, data_key), env={"PATH": "/nonexistent"})
    assert run.code == 127
    assert run.stderr == "ecs_executor: command not found: python (PATH=/nonexistent)\n"


# --- KMS refuses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "error"), [("disabled", "DisabledException"), ("pending", "KMSInvalidStateException")]
)
def test_a_key_kms_will_not_use_exits_81(
    run_worker: Any, workload: Any, data_key: DataKey, kms: Any, key_id: str, state: str, error: str
) -> None:
    envelope = seal_workload(workload, data_key)
    if state == "disabled":
        kms.disable_key(KeyId=key_id)
    else:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with kms_key_states_enforced():
        run = run_worker(envelope)
    refused(run, EXIT_KMS_KEY_UNUSABLE, error, key_id, "workload_kms_key")


def test_no_credentials_exits_82(run_worker: Any, workload: Any, data_key: DataKey, tmp_path: Path) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    run = run_worker(seal_workload(workload, data_key), env=env)
    refused(run, EXIT_KMS_ACCESS_DENIED, "no AWS credentials", "task role")


# --- the envelope does not belong to this try ---------------------------------------------------


def test_an_altered_kms_context_exits_83(run_worker: Any, workload: Any, data_key: DataKey) -> None:
    """The worker decrypts for the executor's purpose only: another KMS context is refused before KMS."""
    envelope = replace_field(seal_workload(workload, data_key), 1, b64({"ecs-executor:purpose": "other"}))
    refused(run_worker(envelope), EXIT_CONTEXT_MISMATCH, "another KMS encryption context")


def test_a_try_context_moved_from_another_envelope_exits_83(
    run_worker: Any, workload: Any, data_key: DataKey
) -> None:
    other = make_workload("other_task", dag_id="sealed_dag", run_id="manual__1", map_index=3)
    spliced = replace_field(
        seal_workload(workload, data_key), 2, seal_workload(other, data_key).split(".")[2]
    )
    refused(run_worker(spliced), EXIT_CONTEXT_MISMATCH, "does not authenticate", "another try")


def test_a_workload_sealed_under_another_try_s_name_exits_83(
    run_worker: Any, workload: Any, data_key: DataKey
) -> None:
    """The AES-GCM tag holds (the sealer named the wrong try); the identity check still refuses it."""
    from ecs_executor.core.envelope import seal, try_context

    names = {"dag_id": "sealed_dag", "task_id": "not_this_one", "run_id": "manual__1", "map_index": 3}
    envelope = seal(workload.model_dump_json(), data_key, try_context({**names, "try_number": 1}))
    refused(run_worker(envelope), EXIT_CONTEXT_MISMATCH, "names another try", "not_this_one")


# --- not an envelope ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["garbage", "truncated", "wrong version", "no argument", "two arguments"])
def test_what_is_not_an_envelope_exits_84(
    run_worker: Any, workload: Any, data_key: DataKey, kind: str
) -> None:
    envelope = seal_workload(workload, data_key)
    args = {
        "garbage": ["not an envelope"],
        "truncated": [envelope.rsplit(".", 1)[0]],
        "wrong version": ["ecsw9" + envelope.removeprefix("ecsw1")],
        "no argument": [],
        "two arguments": [envelope, envelope],
    }[kind]
    run = run_worker(*args)
    refused(run, EXIT_ENVELOPE_CORRUPT, "ecs_executor version" if args else "expected one argument")


def test_a_wrapped_key_kms_cannot_read_exits_83(run_worker: Any, workload: Any, data_key: DataKey) -> None:
    envelope = seal_workload(workload, data_key)
    wrapped = parse(envelope).wrapped
    mangled = base64.urlsafe_b64encode(wrapped[:-1] + bytes([wrapped[-1] ^ 1])).decode().rstrip("=")
    refused(
        run_worker(replace_field(envelope, 3, mangled)), EXIT_CONTEXT_MISMATCH, "InvalidCiphertextException"
    )


# --- no answer ------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_kms_endpoint_exits_85(run_worker: Any, workload: Any, data_key: DataKey) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = run_worker(seal_workload(workload, data_key), env={"AWS_ENDPOINT_URL_KMS": url})
    refused(run, EXIT_KMS_UNREACHABLE, "no answer from KMS", "EndpointConnectionError", url, "AWS_REGION")


def test_a_malformed_endpoint_exits_85_naming_it(run_worker: Any, workload: Any, data_key: DataKey) -> None:
    run = run_worker(seal_workload(workload, data_key), env={"AWS_ENDPOINT_URL_KMS": "kms.internal"})
    refused(run, EXIT_KMS_UNREACHABLE, "Invalid endpoint: kms.internal")


def test_the_generic_endpoint_variable_is_honoured(
    run_worker: Any, workload: Any, data_key: DataKey, moto_url
):
    """``AWS_ENDPOINT_URL`` alone (botocore's own lookup): the worker reaches moto and exec's."""
    env = {"AWS_ENDPOINT_URL_KMS": None, "AWS_ENDPOINT_URL": moto_url}
    assert run_worker(seal_workload(workload, data_key), env=env).code == FAKE_EXIT


def test_no_region_exits_85(run_worker: Any, workload: Any, data_key: DataKey, tmp_path: Path) -> None:
    env = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_CONFIG_FILE": str(tmp_path / "none")}
    refused(run_worker(seal_workload(workload, data_key), env=env), EXIT_KMS_UNREACHABLE, "no AWS Region")
