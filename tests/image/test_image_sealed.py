"""A sealed workload opened inside the worker image: the command the executor sends with
``workload_kms_key`` set, run through the image's entrypoint against moto's KMS server on this host.

The decrypted command is Airflow's real task runner: with no Execution API to reach it logs the workload
it parsed (the try's names, never its token) and exits 1, which is how the test sees that it ran.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import boto3
import pytest

from tests.conftest import REGION, SECRET_TOKEN, make_workload
from tests.image.conftest import Image
from tests.support.moto_kms import kms_key_states_enforced, new_data_key, seal_workload


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def kms(moto_url: str) -> Any:
    return boto3.client("kms", endpoint_url=moto_url, region_name=REGION)


def worker_env(moto_url: str) -> dict[str, str]:
    """What the container has on ECS, KMS aside: a Region, credentials (the task role's there) and the
    Execution API's address (here a closed port, so the task runner fails at its first call)."""
    return {
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_KMS": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{closed_port()}/execution/",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "0",
    }


def test_the_image_opens_a_sealed_workload_and_runs_airflow_s_task_runner(
    default_image: Image, moto_url: str, kms: Any
) -> None:
    key = new_data_key(kms, kms.create_key()["KeyMetadata"]["KeyId"])
    task_id = f"sealed_{uuid.uuid4().hex[:8]}"
    envelope = seal_workload(make_workload(task_id, dag_id="sealed_dag"), key)
    assert SECRET_TOKEN not in envelope

    result = default_image.run("python", "-m", "ecs_executor.worker", envelope, env=worker_env(moto_url))

    output = result.stdout + result.stderr
    # Airflow's execute_workload parsed the decrypted JSON (its first log line names the try) and then
    # failed to reach the Execution API: exit 1 through entrypoint.sh and dumb-init.
    assert "Executing workload" in result.stdout, output[-3000:]
    assert f"task_id='{task_id}'" in result.stdout and "dag_id='sealed_dag'" in result.stdout
    assert "ConnectError" in output
    assert result.returncode == 1
    assert "cannot open the sealed workload" not in output
    assert SECRET_TOKEN not in output
    assert key.plaintext.hex() not in output


def test_in_the_image_a_disabled_key_exits_81_before_airflow_starts(
    default_image: Image, moto_url: str, kms: Any
) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    envelope = seal_workload(make_workload("t", dag_id="sealed_dag"), new_data_key(kms, key_id))
    kms.disable_key(KeyId=key_id)
    with kms_key_states_enforced():
        result = default_image.run("python", "-m", "ecs_executor.worker", envelope, env=worker_env(moto_url))
    assert result.returncode == 81, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("ecs_executor: cannot open the sealed workload: KMS Decrypt failed: ")
    assert "DisabledException" in result.stderr and len(result.stderr.splitlines()) == 1
