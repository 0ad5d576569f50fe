"""Stack outputs -> executor options -> ini / env text (pure; deployed stacks: test_config_from_stack)."""

from __future__ import annotations

import configparser
import shlex

import pytest

from ecs_executor.stack.options import (
    OPTION_OUTPUTS,
    StackConfigError,
    options_from_outputs,
    render,
    validation_problems,
)

POLLING = {
    "Cluster": "airflow",
    "TaskDefinition": "airflow-worker",
    "ContainerName": "airflow-worker",
    "RegionName": "eu-west-1",
    "Subnets": "subnet-0abc,subnet-0def",
    "SecurityGroups": "sg-0123",
    "AssignPublicIp": "false",
    "TrackingMode": "polling",
    "LogGroup": "/ecs/airflow-worker",  # an output that is no option: left out
}
QUEUE = "https://sqs.eu-west-1.amazonaws.com/111122223333/airflow-ecs-events-{}"
EVENTS = {
    **POLLING,
    "TrackingMode": "events",
    "EventsQueue1": QUEUE.format(1),
    "EventsQueue2": QUEUE.format(2),
}


def test_polling_leaves_tracking_at_its_default() -> None:
    options = options_from_outputs("airflow", POLLING)
    assert options == {
        "cluster": "airflow",
        "task_definition": "airflow-worker",
        "container_name": "airflow-worker",
        "region_name": "eu-west-1",
        "subnets": "subnet-0abc,subnet-0def",
        "security_groups": "sg-0123",
        "assign_public_ip": "false",
    }
    assert validation_problems(options) == []


@pytest.mark.parametrize("scheduler", [1, 2])
def test_each_scheduler_gets_its_own_queue(scheduler: int) -> None:
    options = options_from_outputs("airflow", EVENTS, scheduler)
    assert options["tracking_mode"] == "events"
    assert options["events_queue"] == QUEUE.format(scheduler)


def test_a_scheduler_without_a_queue_is_refused_with_the_queues_there_are() -> None:
    with pytest.raises(StackConfigError) as err:
        options_from_outputs("airflow", EVENTS, 3)
    assert str(err.value) == (
        "stack 'airflow' has 2 event queue(s) (EventsQueue1, EventsQueue2), so scheduler 3 has none; "
        "choose 1-2, or update the stack with a larger EventQueues (at most 5)"
    )


def test_missing_outputs_are_named_with_the_ones_found() -> None:
    outputs = {k: v for k, v in POLLING.items() if k not in ("Cluster", "Subnets")}
    with pytest.raises(StackConfigError) as err:
        options_from_outputs("other", outputs)
    message = str(err.value)
    assert message.startswith("stack 'other' has no output Cluster, Subnets (outputs found: AssignPublicIp,")
    assert "deploy/ecs-executor.yaml" in message


def test_an_unknown_tracking_mode_is_refused() -> None:
    with pytest.raises(StackConfigError, match="TrackingMode is 'sqs', expected one of polling, events"):
        options_from_outputs("airflow", {**POLLING, "TrackingMode": "sqs"})


def test_values_the_executor_would_refuse_are_reported() -> None:
    options = options_from_outputs("airflow", {**POLLING, "Subnets": "vpc-123"})
    problems = validation_problems(options)
    assert len(problems) == 1 and "subnets" in problems[0] and "vpc-123" in problems[0]


def test_ini_reads_back_as_the_same_options() -> None:
    options = options_from_outputs("airflow", EVENTS, 2)
    text = render(options, "ini", "airflow")
    assert text.startswith(
        "# [aws_ecs_executor] from CloudFormation stack airflow; Airflow also needs [core]"
    )
    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert dict(parser["aws_ecs_executor"]) == options


def test_env_reads_back_as_the_same_options_for_a_team() -> None:
    options = options_from_outputs("airflow", POLLING)
    text = render(options, "env", "airflow", team_name="teama")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    parsed = dict(shlex.split(ln)[0].split("=", 1) for ln in lines)
    assert parsed == {f"AIRFLOW__TEAMA___AWS_ECS_EXECUTOR__{k.upper()}": v for k, v in options.items()}
    assert "AIRFLOW__CORE__EXECUTOR=ecs_executor.EcsExecutor" in text.splitlines()[0]


def test_every_option_output_names_an_option_or_one_of_the_event_options() -> None:
    """The lead's event options (issue 14) may not be in the model yet; every other one must be."""
    from ecs_executor.config.settings import EcsExecutorSettings

    event_options = {"tracking_mode", "events_queue"}
    assert set(OPTION_OUTPUTS) - event_options <= set(EcsExecutorSettings.model_fields)


def test_the_setup_guides_example_is_what_the_command_prints() -> None:
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[3] / "docs" / "setup-guide.md").read_text()
    (example,) = [b for b in re.findall(r"```ini\n(.*?)```", guide, flags=re.S) if "CloudFormation" in b]
    assert example == render(options_from_outputs("airflow", POLLING), "ini", "airflow")


KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_a_stack_with_workload_encryption_sets_the_key_and_one_without_leaves_it_unset() -> None:
    assert (
        options_from_outputs("airflow", {**POLLING, "WorkloadKmsKey": KEY_ARN})["workload_kms_key"] == KEY_ARN
    )
    assert "workload_kms_key" not in options_from_outputs("airflow", POLLING)
    assert "workload_kms_key" not in options_from_outputs("airflow", {**POLLING, "WorkloadKmsKey": ""})
    text = render(options_from_outputs("airflow", {**POLLING, "WorkloadKmsKey": KEY_ARN}), "env", "airflow")
    assert f"AIRFLOW__AWS_ECS_EXECUTOR__WORKLOAD_KMS_KEY={KEY_ARN}" in text.splitlines()
