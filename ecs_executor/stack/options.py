"""The ``[aws_ecs_executor]`` options a stack of ``deploy/ecs-executor.yaml`` fills, printed as ini or env.

Pure: the stack's outputs arrive as a mapping (``stack/command.py`` reads them from CloudFormation).
Each option the stack decides has an output of its own, named in ``OPTION_OUTPUTS``; the template's
outputs and this table are tested against each other, so a renamed output cannot drift silently.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any, Literal

from ecs_executor.config.settings import EcsExecutorConfigError, EcsExecutorSettings, settings_from_mapping
from ecs_executor.config.values import SECTION, TRACKING_MODES, env_var_name

Format = Literal["ini", "env"]

#: option -> the stack output holding its value. ``tracking_mode`` is read, then printed only for events.
OPTION_OUTPUTS: dict[str, str] = {
    "cluster": "Cluster",
    "task_definition": "TaskDefinition",
    "container_name": "ContainerName",
    "region_name": "RegionName",
    "subnets": "Subnets",
    "security_groups": "SecurityGroups",
    "assign_public_ip": "AssignPublicIp",
    "tracking_mode": "TrackingMode",
}
#: option -> the stack output holding its value, for options a stack may leave unset (no output then).
OPTIONAL_OUTPUTS: dict[str, str] = {"workload_kms_key": "WorkloadKmsKey"}
#: Event-driven tracking: one queue (and rule) per scheduler, ``EventsQueue1`` .. ``EventsQueue5``.
MAX_EVENT_QUEUES = 5
EXECUTOR_PATH = "ecs_executor.EcsExecutor"
#: The command's arguments, (flags, argparse keywords): ``python -m ecs_executor config-from-stack``
#: (stack/command.py) and ``airflow ecs-executor config-from-stack`` (cli.py) take the same ones.
ARGUMENTS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("stack",), {"help": "name or ID of a stack deployed from deploy/ecs-executor.yaml"}),
    (("--region",), {"default": None, "help": "the stack's Region (default: AWS_REGION)"}),
    (("--format",), {"choices": ("ini", "env"), "default": "ini", "help": "airflow.cfg or env vars"}),
    (
        ("--scheduler",),
        {
            "type": int,
            "default": 1,
            "help": f"with event tracking, which scheduler's queue (1-{MAX_EVENT_QUEUES}; one per scheduler)",
        },
    ),
    (("--team",), {"default": None, "help": "write the options for this team (multi-team)"}),
    (("--conn-id",), {"default": "aws_default", "help": "Airflow AWS connection to read the stack with"}),
)


class StackConfigError(Exception):
    """The stack cannot give a configuration; the message says what is wrong and what to do."""


def events_queue_output(scheduler: int) -> str:
    return f"EventsQueue{scheduler}"


def options_from_outputs(stack: str, outputs: Mapping[str, str], scheduler: int = 1) -> dict[str, str]:
    """Executor options from a stack's outputs; ``scheduler`` picks its own queue (events tracking)."""
    missing = [key for key in OPTION_OUTPUTS.values() if not outputs.get(key)]
    if missing:
        found = ", ".join(sorted(outputs)) or "none"
        raise StackConfigError(
            f"stack {stack!r} has no output {', '.join(missing)} (outputs found: {found}); was it "
            "created from deploy/ecs-executor.yaml of this version?"
        )
    options = {option: outputs[key] for option, key in OPTION_OUTPUTS.items()}
    options.update({option: outputs[key] for option, key in OPTIONAL_OUTPUTS.items() if outputs.get(key)})
    mode = options.pop("tracking_mode")
    if mode not in TRACKING_MODES:
        raise StackConfigError(
            f"stack {stack!r}: output TrackingMode is {mode!r}, expected one of {', '.join(TRACKING_MODES)}"
        )
    if mode == "events":
        queues = sorted(k for k in outputs if k.startswith("EventsQueue"))
        queue = outputs.get(events_queue_output(scheduler))
        if not queue:
            raise StackConfigError(
                f"stack {stack!r} has {len(queues)} event queue(s) ({', '.join(queues) or 'none'}), so "
                f"scheduler {scheduler} has none; choose 1-{len(queues)}, or update the stack with a "
                f"larger EventQueues (at most {MAX_EVENT_QUEUES})"
            )
        # polling is the default, so only event tracking is written out.
        options["tracking_mode"] = mode
        options["events_queue"] = queue
    return options


def validation_problems(options: Mapping[str, str], team_name: str | None = None) -> list[str]:
    """What the executor would refuse in these options (options it does not know yet are left out)."""
    known = {k: v for k, v in options.items() if k in EcsExecutorSettings.model_fields}
    try:
        settings_from_mapping(known, team_name)
    except EcsExecutorConfigError as exc:
        return list(exc.problems)
    return []


def render(options: Mapping[str, str], fmt: Format, stack: str, team_name: str | None = None) -> str:
    """The options as an airflow.cfg section or as environment variables, with a line saying where from."""
    header = f"# [{SECTION}] from CloudFormation stack {stack}; Airflow also needs"
    if fmt == "env":
        lines = [f"{header} AIRFLOW__CORE__EXECUTOR={EXECUTOR_PATH}"]
        lines += [f"{env_var_name(k, team_name)}={shlex.quote(v)}" for k, v in options.items()]
    else:
        section = f"{team_name}={SECTION}" if team_name else SECTION
        lines = [f"{header} [core] executor = {EXECUTOR_PATH}", f"[{section}]"]
        lines += [f"{k} = {v}" for k, v in options.items()]
    return "\n".join(lines) + "\n"
