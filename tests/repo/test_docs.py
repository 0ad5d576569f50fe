"""Docs stay true: the generated config reference matches the model; provider metadata matches too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ecs_executor.config.settings import EcsExecutorSettings
from ecs_executor.provider import configuration_markdown, get_provider_info

ROOT = Path(__file__).resolve().parents[2]


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
    from ecs_executor.core import triage
    from ecs_executor.core.task_status import EXIT_MEANINGS

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
    from ecs_executor.request.ecs_rules import container_memory_problem, fargate_size_problem

    spec = _documented_task_definition()
    configs = _documented_executor_configs(path)
    assert configs, f"no executor_config example in {path}"
    for config in configs:
        overrides = config.get("overrides", {})
        cpu, memory = overrides.get("cpu", spec["cpu"]), overrides.get("memory", spec["memory"])
        assert fargate_size_problem(cpu, memory) is None, config
        for container in overrides.get("containerOverrides", []):
            assert container_memory_problem(memory, container) is None, config


# ---- the setup guide's names: every policy names what the guide creates ------------------------------

DOC_REGION, DOC_ACCOUNT = "eu-west-1", "111122223333"


def _shell_commands(path: str) -> list[list[str]]:
    import re
    import shlex

    commands = []
    for block in re.findall(r"```sh\n(.*?)```", (ROOT / "docs" / path).read_text(), flags=re.S):
        text = re.sub(r"\\\n\s*", " ", block).replace("||\n", "|| ")
        for line in text.splitlines():
            for part in line.split("||"):
                words = shlex.split(part.strip())
                if words[:1] == ["aws"]:
                    commands.append(words)
    return commands


def _option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def _created_by_the_guide() -> dict[str, str]:
    """ARN -> what made it: each resource the guide's commands create, or its task definition names
    (plus a sample object under the DAG prefix and a sample log stream, so wildcards have something to
    match)."""
    region, account = DOC_REGION, DOC_ACCOUNT
    created: dict[str, str] = {}
    for words in _shell_commands("setup-guide.md"):
        assert "--region" in words or words[1] in ("iam",), f"no --region: {' '.join(words)}"
        verb = tuple(words[1:3])
        if verb == ("ecs", "create-cluster"):
            created[f"arn:aws:ecs:{region}:{account}:cluster/{_option(words, '--cluster-name')}"] = "cluster"
        elif verb == ("logs", "create-log-group"):
            group = _option(words, "--log-group-name")
            created[f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:airflow/x/1"] = "log group"
        elif verb == ("iam", "create-role"):
            created[f"arn:aws:iam::{account}:role/{_option(words, '--role-name')}"] = "role"
        elif verb == ("sqs", "create-queue"):
            created[f"arn:aws:sqs:{region}:{account}:{_option(words, '--queue-name')}"] = "queue"
        elif verb == ("events", "put-rule"):
            created[f"arn:aws:events:{region}:{account}:rule/{_option(words, '--name')}"] = "rule"
        elif verb == (
            "kms",
            "create-alias",
        ):  # KMS chooses the key's id; the guide's example is the alias's target
            created[f"arn:aws:kms:{region}:{account}:key/{_option(words, '--target-key-id')}"] = "KMS key"
    spec = _documented_task_definition()
    created[f"arn:aws:ecs:{region}:{account}:task-definition/{spec['family']}:1"] = "task definition"
    # The executor registers task definitions derived from it (tasks' own image, runtime_platform, gpu).
    from ecs_executor.request.derived_definition import derived_family

    derived = derived_family(spec["family"], "0" * 64)
    created[f"arn:aws:ecs:{region}:{account}:task-definition/{derived}:1"] = "derived task definition"
    env = {e["name"]: e["value"] for e in spec["containerDefinitions"][0]["environment"]}
    bucket, _, prefix = env["S3_URL"].removeprefix("s3://").partition("/")
    created[f"arn:aws:s3:::{bucket}"] = "DAG bucket"
    created[f"arn:aws:s3:::{bucket}/{prefix}/example_dag.py"] = "a DAG"
    return created


def _json_blocks(path: str) -> list[Any]:
    import json
    import re

    text = (ROOT / "docs" / path).read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)]


def _statements(block: Any) -> list[dict[str, Any]]:
    if isinstance(block, dict) and "Statement" in block:
        return list(block["Statement"])
    return [block] if isinstance(block, dict) and "Effect" in block else []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _unmatched_names(paths: tuple[str, ...]) -> list[str]:
    from ecs_executor.check.event_wiring import arn_like, iam_glob

    created = _created_by_the_guide()
    problems = []
    for path in paths:
        for block in _json_blocks(path):
            for st in _statements(block):
                for resource in _as_list(st.get("Resource", "*")):
                    if resource != "*" and not any(iam_glob(resource, arn) for arn in created):
                        problems.append(
                            f"{path} {st.get('Sid', '')}: Resource {resource} names nothing the guide creates"
                        )
                for operator, keys in (st.get("Condition") or {}).items():
                    for key, values in keys.items():
                        for value in _as_list(values):
                            if operator.startswith("Arn") and not any(
                                arn_like(value, arn) for arn in created
                            ):
                                problems.append(
                                    f"{path} {st.get('Sid', '')}: {key} {value} names nothing created"
                                )
            if isinstance(block, dict) and "detail-type" in block:  # an event pattern
                for cluster in block["detail"]["clusterArn"]:
                    if cluster not in created:
                        problems.append(f"{path}: the pattern's cluster {cluster} is not the guide's")
    problems += _uncovered_needs(paths, created)
    spec = _documented_task_definition()
    for role in (spec["taskRoleArn"], spec["executionRoleArn"]):
        if role not in created:
            problems.append(f"worker-image.md: the task definition's role {role} is not created by the guide")
    group = spec["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"]
    if not any(f":log-group:{group}:" in arn for arn in created):
        problems.append(f"worker-image.md: the log group {group} is not created by the guide")
    for words in _shell_commands("setup-guide.md"):
        if words[1:3] == ["events", "put-targets"]:
            for arn in re.findall(r"arn:aws:sqs:[^,}\s]+", " ".join(words)):
                if arn not in created:
                    problems.append(
                        f"setup-guide.md: put-targets names {arn}, which the guide does not create"
                    )
    return problems


def _uncovered_needs(paths: tuple[str, ...], created: dict[str, str]) -> list[str]:
    """The other direction: each statement covers every resource its job needs (a wildcard that matches
    some created resource, but not the one used, is still a denial at run time)."""
    from ecs_executor.check.event_wiring import iam_glob

    spec = _documented_task_definition()
    of_kind = {kind: [arn for arn, k in created.items() if k == kind] for kind in set(created.values())}
    targets = [
        arn
        for words in _shell_commands("setup-guide.md")
        if words[1:3] == ["events", "put-targets"]
        for arn in re.findall(r"Id=scheduler-queue,Arn=([^,\s]+)", " ".join(words))
    ]
    needs = {
        "Launch": of_kind["task definition"] + of_kind["derived task definition"],
        "TagDerivedDefinitions": of_kind["derived task definition"],
        "PassTaskRoles": [spec["taskRoleArn"], spec["executionRoleArn"]],
        "WriteLogs": of_kind["log group"],
        "LiveLogsInUI": of_kind["log group"],
        "ListDagPrefix": of_kind["DAG bucket"],
        "ReadDags": of_kind["a DAG"],
        "ReadTaskEvents": targets,
        "CheckEventRule": of_kind["rule"],
        "MakeWorkloadDataKeys": of_kind["KMS key"],
        "DescribeWorkloadKey": of_kind["KMS key"],
        "OpenWorkloads": of_kind["KMS key"],
    }
    problems = []
    seen = set()
    for path in paths:
        for block in _json_blocks(path):
            for st in _statements(block):
                sid = st.get("Sid", "")
                seen.add(sid)
                resources = _as_list(st.get("Resource", "*"))
                for arn in needs.get(sid, []):
                    if not any(iam_glob(r, arn) for r in resources):
                        problems.append(f"{path} {sid}: does not cover {arn}, which the guide uses")
    problems += [f"no statement {sid} in {paths}" for sid in needs if sid not in seen]
    return problems


def test_every_policy_in_the_guides_names_what_the_guide_creates() -> None:
    """A user following the guide is not denied at run time: each policy's Resource and ARN conditions
    match a resource the guide creates (IAM's wildcard rules), and the task definition uses the guide's
    roles and log group."""
    assert _unmatched_names(("setup-guide.md", "event-tracking.md")) == []


def test_the_guides_rule_pattern_is_the_executors() -> None:
    from ecs_executor.core.state_change import rule_pattern

    for path in ("setup-guide.md", "event-tracking.md"):
        patterns = [b for b in _json_blocks(path) if isinstance(b, dict) and "detail-type" in b]
        assert patterns, path
        for pattern in patterns:
            assert pattern == rule_pattern(pattern["detail"]["clusterArn"]), path


def test_the_name_check_catches_a_policy_naming_another_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above fails on what the guide once said: PassRole for roles it never created, and
    events policies for queues named unlike the ones it made."""
    real = Path.read_text

    def older_guide(self: Path, *args: Any, **kwargs: Any) -> str:
        text = real(self, *args, **kwargs)
        if self.name == "setup-guide.md":
            text = text.replace("role/airflow-worker-task", "role/airflow-task-role")
            text = text.replace(':airflow-ecs-events-1"]', ':airflow-ecs-events-*"]')
            text = text.replace("111122223333:airflow-ecs-events-1", "111122223333:airflow-ecs-events")
            text = text.replace("--queue-name airflow-ecs-events-1", "--queue-name airflow-ecs-events")
        return text

    monkeypatch.setattr(Path, "read_text", older_guide)
    problems = _unmatched_names(("setup-guide.md",))
    assert any("role/airflow-task-role" in p for p in problems), problems
    uncovered = "ReadTaskEvents: does not cover arn:aws:sqs:eu-west-1:111122223333:airflow-ecs-events,"
    assert any(uncovered in p for p in problems), problems
