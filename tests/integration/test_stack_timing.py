"""The local ECS endpoint's timing profile in Airflow stacks (demo, end-to-end tests): ``timing=``, else
``ECS_EXECUTOR_TEST_TIMING``, reaches the endpoint's ``--timing``; a bad value is refused up front."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from ecs_executor.demo.__main__ import main as demo_main
from ecs_executor.demo.deployment import TIMING_ENV, LocalDeployment


def test_the_environment_variable_reaches_the_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMING_ENV, "fargate")
    stack = LocalDeployment(tmp_path / "stack")
    assert stack.timing == "fargate"
    try:
        stack.start_local_ecs()
        with urllib.request.urlopen(f"{stack.ecs_url}/_local_ecs/config", timeout=10) as answer:
            knobs = json.loads(answer.read())
    finally:
        stack.stop()
    assert knobs["timing"] == "fargate" and knobs["deprovisioning_seconds"] == 2.0
    assert LocalDeployment(tmp_path / "explicit", timing="instant").timing == "instant"  # beats the variable
    monkeypatch.delenv(TIMING_ENV)
    assert LocalDeployment(tmp_path / "unset").timing is None  # the endpoint's default: instant


def test_a_bad_timing_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMING_ENV, "slow")
    message = r"timing \(or ECS_EXECUTOR_TEST_TIMING\) must be one of instant, fargate, not 'slow'"
    with pytest.raises(ValueError, match=message):
        LocalDeployment(tmp_path)
    monkeypatch.delenv(TIMING_ENV)
    with pytest.raises(ValueError, match="timing must be one of instant, fargate, not 'slow'"):
        LocalDeployment(tmp_path, timing="slow")
    with pytest.raises(SystemExit):
        demo_main(["--timing", "slow"])
