"""Docs stay true: the generated config reference matches the model; provider metadata matches too."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecs_executor.config import EcsExecutorSettings
from ecs_executor.provider import configuration_markdown, get_provider_info

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_current() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert configuration_markdown() in doc, "regenerate: python -m ecs_executor.provider"


def test_provider_metadata_lists_every_option() -> None:
    options = get_provider_info()["config"]["aws_ecs_executor"]["options"]
    assert set(options) == set(EcsExecutorSettings.model_fields)
    for name, option in options.items():
        assert option["description"], name
        assert option["type"] in ("string", "boolean", "integer", "float")
    assert options["max_run_task_attempts"]["default"] == "3"
    assert options["cluster"]["default"] is None  # required
    assert options["assign_public_ip"]["default"] is None  # so "explicitly set" can be detected


def test_provider_metadata_validates_against_airflows_schema() -> None:
    import json

    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_readme_leads_with_the_two_commands() -> None:
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    assert lines[1] == "```sh"
    assert lines[2].startswith("make demo") and lines[3].startswith("make test")


def test_troubleshooting_lists_every_reason_the_triage_knows() -> None:
    from ecs_executor import triage
    from ecs_executor.states import EXIT_MEANINGS

    doc = (ROOT / "docs" / "troubleshooting.md").read_text()
    codes = triage.THROTTLING_CODES | triage.CREDENTIAL_CODES | triage.SERVER_CODES | triage.PERMANENT_CODES
    missing = [c for c in codes if f"`{c}`" not in doc and c not in doc]
    missing += [m for m in triage._CAPACITY_MARKERS + triage._CAPACITY_ERROR_MARKERS if m not in doc]
    missing += [m for m in triage._PERMANENT_START_MARKERS if m not in doc]
    missing += [triage.SPOT_INTERRUPTION] if triage.SPOT_INTERRUPTION not in doc else []
    missing += [m for m in triage._TRANSIENT_START_MARKERS if m not in doc]
    missing += [str(code) for code in EXIT_MEANINGS if f"| {code} " not in doc and f" {code} |" not in doc]
    assert not missing, missing


def _documented_task_definition() -> dict:
    import json
    import re

    text = (ROOT / "docs" / "worker-image.md").read_text()
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
        spec = json.loads(block)
        if spec.get("family") == "airflow-worker":
            return spec
    raise AssertionError("no airflow-worker task definition in docs/worker-image.md")


def _documented_executor_configs(path: str) -> list[dict]:
    import ast
    import re

    configs = []
    for block in re.findall(r"```python\n(.*?)```", (ROOT / "docs" / path).read_text(), flags=re.S):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.keyword) and node.arg == "executor_config":
                configs.append(ast.literal_eval(node.value))
    return configs


@pytest.mark.parametrize("path", ["setup-guide.md", "configuration.md"])
def test_documented_executor_configs_fit_the_documented_task_definition(path: str) -> None:
    """ECS refuses a container asking for more memory than its task, and non-Fargate sizes; so does our
    local endpoint. The first DAG of the setup guide once did exactly that."""
    from ecs_executor.ecs_rules import container_memory_problem, fargate_size_problem

    spec = _documented_task_definition()
    configs = _documented_executor_configs(path)
    assert configs, f"no executor_config example in {path}"
    for config in configs:
        overrides = config.get("overrides", {})
        cpu, memory = overrides.get("cpu", spec["cpu"]), overrides.get("memory", spec["memory"])
        assert fargate_size_problem(cpu, memory) is None, config
        for container in overrides.get("containerOverrides", []):
            assert container_memory_problem(memory, container) is None, config
