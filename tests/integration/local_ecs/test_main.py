"""``python -m ecs_executor.local_ecs``: the command line, its URL line and its knob flags."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

from tests.integration.local_ecs.helpers import (
    CLUSTER,
    CONTAINER,
    FAMILY,
    PY,
    http,
    is_dead,
    make_client,
    run,
    wait_for,
)


def test_cli_prints_url_and_exits_on_sigterm(tmp_path: Path) -> None:
    definition = {
        "family": FAMILY,
        "containerDefinitions": [
            {"name": CONTAINER, "image": "i", "memory": 64, "command": ["sh", "-c", "echo $$; exec sleep 30"]}
        ],
    }
    (tmp_path / "td.json").write_text(json.dumps(definition))
    process = subprocess.Popen(
        [
            PY,
            "-m",
            "ecs_executor.local_ecs",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--bootstrap-cluster",
            CLUSTER,
            "--bootstrap-task-definition",
            f"@{tmp_path / 'td.json'}",
            "--log-dir",
            str(tmp_path / "logs"),
            "--provisioning-seconds",
            "0",
            "--throttle",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"LOCAL_ECS_URL=(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        client = make_client(match.group(1))
        assert client.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]["revision"] == 1
        arn = run(client)
        log = tmp_path / "logs" / f"{arn.rsplit('/', 1)[1]}.log"
        pid = int(wait_for(lambda: log.exists() and log.read_text().strip()))
        assert http(match.group(1) + "/_local_ecs/config")[1]["throttle"] is True
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out == ""  # nothing after the URL line
    wait_for(lambda: is_dead(pid), timeout=10)


def test_cli_rejects_bad_knobs() -> None:
    result = subprocess.run(
        [PY, "-m", "ecs_executor.local_ecs", "--reset-rate", "7"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "reset_rate" in result.stderr


def test_cli_takes_the_new_fault_knobs(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            PY,
            "-m",
            "ecs_executor.local_ecs",
            "--port",
            "0",
            "--image-missing",
            "--capacity-shortage-kind",
            "unavailable",
            "--spot-interruption-seconds",
            "12",
            "--log-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"LOCAL_ECS_URL=(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        knobs = http(match.group(1) + "/_local_ecs/config")[1]
        assert knobs["image_missing"] is True and knobs["capacity_shortage_kind"] == "unavailable"
        assert knobs["spot_interruption_seconds"] == 12.0
        status, knobs = http(match.group(1) + "/_local_ecs/config", {"capacity_shortage_seconds": 5})
        assert status == 200 and knobs["capacity_shortage_seconds"] == 5.0
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0


def test_cli_rejects_a_bad_shortage_kind() -> None:
    result = subprocess.run(
        [PY, "-m", "ecs_executor.local_ecs", "--capacity-shortage-kind", "drought"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "capacity_shortage_kind" in result.stderr
