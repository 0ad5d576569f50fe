"""Docs stay true: the generated config reference matches the model; provider metadata matches too."""

from __future__ import annotations

from pathlib import Path

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
